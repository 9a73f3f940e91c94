"""Headless rendering of skeleton sequences (stick figures) with OpenCV, and writing them
to MP4/GIF/PNG. Everything here works without a display.

Used by ``pmr visualize`` and ``pmr compare``, ``pmr stream``'s side-by-side video and the
streaming viewer (:mod:`pmr_stream.sinks.viewer`).

* :mod:`~pmr_stream.render.options`: :class:`RenderOptions`, colours, sizes in metres.
* :mod:`~pmr_stream.render.camera`: the orthographic :class:`Camera` fitted to a clip.
* :mod:`~pmr_stream.render.draw`: frames, clips, two clips side by side.
* :mod:`~pmr_stream.render.video`: :func:`write_video`, :func:`contact_sheet`.
* :mod:`~pmr_stream.render.compare`: :func:`compare_recordings`, two files to one video.

Conventions:

* Joints are metres in the Kinect camera convention of :mod:`pmr_stream.skeleton`
  (``+x`` the person's right for a person facing the camera, ``+y`` up, ``+z``
  away from the camera). Non-finite coordinates mark missing joints.
* Images are RGB ``uint8`` arrays ``(H, W, 3)``; clips of images are
  ``(T, H, W, 3)``. Conversion to BGR happens only inside :func:`write_video`.
* The projection is orthographic. At ``azimuth_deg = 0`` the view is the one the
  Kinect had: ``+x`` is screen-right (as in Kinect's mirrored colour image) and
  ``+y`` is screen-up. One :class:`Camera` is fitted to a whole clip, so a person
  walking across the room moves across the picture.
* Bones are coloured by side: joints whose name contains "left" (any case) are
  the left side (blue), "right" the right side (red/orange), the rest the centre
  (dark grey). Later persons get other shades (:func:`person_colors`).
"""

from __future__ import annotations

from pmr_stream.render.camera import Camera
from pmr_stream.render.compare import DEFAULT_FPS, WrittenVideo, compare_recordings, select_persons
from pmr_stream.render.draw import compare_clips, iter_compare_frames, iter_frames, render_clip, render_frame
from pmr_stream.render.options import (
    CENTER_COLOR,
    FLOOR_CELL_M,
    FLOOR_PAD_M,
    HEAD_RADIUS_M,
    LEFT_COLOR,
    MIN_EXTENT_M,
    MISSING_COLOR,
    PERSON_PALETTES,
    RIGHT_COLOR,
    Color,
    ImageArray,
    RenderOptions,
    joint_sides,
    person_colors,
)
from pmr_stream.render.video import VIDEO_EXTENSIONS, contact_sheet, write_video

__all__ = [
    "RenderOptions", "Camera", "render_frame", "render_clip", "iter_frames", "compare_clips",
    "iter_compare_frames", "write_video", "contact_sheet", "compare_recordings", "select_persons",
    "WrittenVideo", "person_colors", "joint_sides", "Color", "ImageArray",
    "LEFT_COLOR", "RIGHT_COLOR", "CENTER_COLOR", "MISSING_COLOR", "PERSON_PALETTES", "VIDEO_EXTENSIONS",
    "HEAD_RADIUS_M", "MIN_EXTENT_M", "FLOOR_CELL_M", "FLOOR_PAD_M", "DEFAULT_FPS",
]  # fmt: skip
