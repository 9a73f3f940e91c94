"""Output sinks: headless rendering of skeleton clips, video/GIF/contact-sheet writing."""

from __future__ import annotations

from pmr_stream.sinks.render import (
    Camera,
    RenderOptions,
    compare_clips,
    contact_sheet,
    iter_compare_frames,
    iter_frames,
    render_clip,
    render_frame,
    write_video,
)

__all__ = [
    "Camera", "RenderOptions", "compare_clips", "contact_sheet", "iter_compare_frames",
    "iter_frames", "render_clip", "render_frame", "write_video",
]  # fmt: skip
