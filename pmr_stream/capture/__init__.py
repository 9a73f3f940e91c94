"""Capture: skeleton sources (Kinect replay, video/webcam through MediaPipe, synthetic)."""
