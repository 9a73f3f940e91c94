"""Capture: skeleton sources (recording replay, video/webcam through MediaPipe, synthetic) and the
producer that publishes any of them on ``raw/``."""
