"""The camera images behind a ``video:FILE`` stream, for overlays: frame ``i`` of the file, and its pinhole.

Images never travel on the wire (a face identifies far better than a skeleton; ``anon/`` carries
only what :mod:`pmr_stream.wire.privacy` allows), so an overlay reads the same video file the producer
read, by the messages' frame numbers (``FrameMessage.frame`` is the index of the frame in the file).
A webcam's images exist only inside the producer: no overlay for ``webcam:`` streams.

The producer placed each person with a pinhole camera of ``horizontal_fov_deg``
(:func:`pmr_stream.capture.mediapipe_map.estimate_root_position`: focal length
``(width / 2) / tan(fov / 2)`` pixels, principal point at the image centre, Kinect camera axes:
x to the image's left, y up, z forward: a joint at ``(x, y, z)`` lands on pixel
``(W / 2 - f x / z, H / 2 - f y / z)``). :class:`VideoFrames` describes that camera, so a viewer
projects the 3D joints onto the image the same way.

cv2 is imported when a file is opened.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt


def focal_length_px(width: int, horizontal_fov_deg: float) -> float:
    """Focal length in pixels of a pinhole camera ``width`` pixels wide with that horizontal field of view."""
    return (width / 2.0) / math.tan(math.radians(horizontal_fov_deg) / 2.0)


class VideoFrames:
    """Frame ``i`` of a video file, read forward (seeking only when asked for an earlier one).

    ``mirrored``: the producer undid a mirrored image (``--mirrored``): the frames are flipped
    left/right so that they match the skeletons. A context manager.
    """

    def __init__(
        self, path: str | os.PathLike[str], horizontal_fov_deg: float = 70.0, mirrored: bool = False
    ) -> None:
        import cv2

        self.path = Path(path)
        if not self.path.is_file():
            raise ValueError(f"--overlay-video {self.path}: no such file")
        if not 1.0 <= horizontal_fov_deg <= 179.0:
            raise ValueError(f"--overlay-fov must be between 1 and 179 degrees, got {horizontal_fov_deg}")
        self._cap: Any = cv2.VideoCapture(str(self.path))
        if not self._cap.isOpened():
            raise ValueError(f"--overlay-video {self.path}: OpenCV cannot read it as a video")
        self.width = int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        self.height = int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        self.horizontal_fov_deg = horizontal_fov_deg
        self.mirrored = mirrored
        self.focal_px = focal_length_px(self.width, horizontal_fov_deg)
        self._next = 0  # index of the frame the next read returns

    def frame(self, index: int) -> npt.NDArray[np.uint8] | None:
        """Frame ``index`` as ``(H, W, 3)`` BGR (OpenCV's order), or ``None`` past the end."""
        import cv2

        if index < self._next:
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, index)
            self._next = index
        while self._next < index:
            if not self._cap.grab():
                return None
            self._next += 1
        ok, bgr = self._cap.read()
        if not ok:
            return None
        self._next += 1
        return cv2.flip(bgr, 1) if self.mirrored else bgr

    def jpeg(self, index: int, quality: int = 85) -> bytes | None:
        """Frame ``index`` JPEG-encoded (what an overlay stores), or ``None`` past the end."""
        import cv2

        bgr = self.frame(index)
        if bgr is None:
            return None
        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
        return bytes(buf.tobytes()) if ok else None

    def close(self) -> None:
        self._cap.release()

    def __enter__(self) -> VideoFrames:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["VideoFrames", "focal_length_px"]
