"""Drawing stick figures: one frame, a whole clip, two clips side by side (RGB uint8 images).

Joints are metres in the Kinect camera convention of :mod:`pmr_stream.skeleton`
(``+x`` the person's right for a person facing the camera, ``+y`` up, ``+z`` away from
the camera). Images are ``(H, W, 3)``; clips of images ``(T, H, W, 3)``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import replace

import numpy as np
import numpy.typing as npt

from pmr_stream.render.camera import Camera
from pmr_stream.render.clip import as_clip, valid_points
from pmr_stream.render.options import (
    MISSING_COLOR,
    Color,
    ImageArray,
    RenderOptions,
    head_index,
    head_radius_px,
    joint_sides,
    mix,
    person_colors,
    text_color,
)
from pmr_stream.render.primitives import circle, dashed_line, line, put_text, text_height

log = logging.getLogger(__name__)


def _draw_person(
    img: ImageArray,
    px: npt.NDArray[np.float64],
    depth: npt.NDArray[np.float64],
    valid: npt.NDArray[np.bool_],
    conf: npt.NDArray[np.float64] | None,
    person: int,
    camera: Camera,
    options: RenderOptions,
) -> None:
    """Draw one person: ``px`` ``(J, 2)`` pixels, ``depth`` ``(J,)``, ``valid`` ``(J,)``, ``conf`` ``(J,)``."""
    layout = options.layout
    bg = options.background
    palette = person_colors(person)
    sides = joint_sides(layout)
    head = head_index(layout)
    use_conf = options.show_confidence and conf is not None
    if use_conf and conf is not None:
        c = np.clip(np.nan_to_num(conf, nan=0.0), 0.0, 1.0)
    else:
        c = np.ones(len(px))
    missing = c <= 0.0

    def fade(color: Color, conf_value: float) -> Color:
        return color if conf_value >= 1.0 else mix(color, bg, 0.3 + 0.7 * conf_value)

    # Bones, far to near.
    bones = [(ch, pa) for ch, pa in layout.bones if valid[ch] and valid[pa]]
    bones.sort(key=lambda b: -(depth[b[0]] + depth[b[1]]))
    lw = options.line_width
    for ch, pa in bones:
        side = sides[ch]
        if missing[ch] or missing[pa]:
            dashed_line(img, px[pa], px[ch], MISSING_COLOR, max(1, lw - 1))
        else:
            line(img, px[pa], px[ch], fade(palette[side], min(c[ch], c[pa])), lw)

    # Head: a ring around the head joint so the figure reads as a person.
    if head is not None and valid[head]:
        r = head_radius_px(camera.scale, options)
        if missing[head]:
            circle(img, px[head], r, MISSING_COLOR, max(1, lw - 1))
        else:
            col = fade(palette[2], c[head])
            circle(img, px[head], r, mix(col, bg, 0.18), -1)
            circle(img, px[head], r, col, max(1, lw - 1))

    # Joint dots.
    if options.joint_radius > 0:
        for j in np.flatnonzero(valid):
            if j == head:
                continue
            if missing[j]:
                circle(img, px[j], options.joint_radius + 1, MISSING_COLOR, 1)
                continue
            radius = options.joint_radius * (0.5 + 0.5 * c[j]) if use_conf else options.joint_radius
            circle(img, px[j], max(1.0, radius), fade(palette[sides[j]], c[j]), -1)


def render_frame(
    joints: npt.ArrayLike,
    camera: Camera,
    options: RenderOptions | None = None,
    confidence: npt.ArrayLike | None = None,
    present: npt.ArrayLike | None = None,
    frame_index: int | None = None,
) -> ImageArray:
    """Draw one frame.

    Args:
        joints: ``(P, J, 3)`` or ``(J, 3)`` metres; non-finite joints are not drawn
            (nor their bones).
        camera: the clip's camera (:meth:`Camera.fit`); its size must match ``options``.
        options: drawing options (default: ``RenderOptions`` of the camera's size).
        confidence: ``(P, J)`` or ``(J,)`` in [0, 1]; used with ``options.show_confidence``.
        present: ``(P,)`` booleans (or one boolean for ``(J, 3)``); absent persons
            are not drawn. All-zero or all-non-finite persons are never drawn.
        frame_index: written in the corner when ``options.show_frame_index``.

    Returns:
        ``(H, W, 3)`` uint8 RGB image.
    """
    opts = options if options is not None else RenderOptions(width=camera.width, height=camera.height)
    if (opts.width, opts.height) != (camera.width, camera.height):
        raise ValueError(
            f"camera is {camera.width}x{camera.height} but options ask for {opts.width}x{opts.height}; fit the camera with the same options"
        )
    x = np.asarray(joints, dtype=np.float64)
    nj = opts.layout.num_joints
    if x.ndim not in (2, 3) or x.shape[-2:] != (nj, 3):
        raise ValueError(f"joints: expected shape ({nj}, 3) or (P, {nj}, 3), got {x.shape}")
    if present is not None:
        present = np.asarray(present)
        if x.ndim == 2 and present.ndim == 0:
            present = present[None]
    clip, conf, pres = as_clip(
        x[None],
        opts.layout,
        None if confidence is None else np.asarray(confidence)[None],
        None if present is None else present[None],
        "render_frame",
    )
    return _render(clip[0], conf[0] if conf is not None else None, pres[0], camera, opts, frame_index)


def _render(
    x: npt.NDArray[np.float64],
    conf: npt.NDArray[np.float64] | None,
    pres: npt.NDArray[np.bool_],
    camera: Camera,
    opts: RenderOptions,
    frame_index: int | None,
) -> ImageArray:
    """Draw validated ``x`` ``(P, J, 3)``, ``conf`` ``(P, J)`` or None, ``pres`` ``(P,)``."""
    img = camera.background(opts)
    finite = np.asarray(np.isfinite(x).all(axis=-1), dtype=bool)
    xs = np.where(finite[..., None], x, 0.0)
    px = camera.project(xs)
    depth = camera.depth(xs)
    persons = [p for p in range(x.shape[0]) if pres[p]]
    # Farther persons first, so the nearer one is drawn on top.
    persons.sort(key=lambda p: -float(depth[p][finite[p]].mean()))
    for p in persons:
        _draw_person(img, px[p], depth[p], finite[p], None if conf is None else conf[p], p, camera, opts)
    tc = text_color(opts.background)
    th = text_height(opts.height, opts.width)
    if opts.title:
        put_text(img, opts.title, (opts.width // 2, th), tc, anchor="center")
    if opts.show_frame_index and frame_index is not None:
        put_text(img, f"frame {frame_index}", (6, opts.height - 8), tc)
    return img


def iter_frames(
    joints: npt.ArrayLike,
    options: RenderOptions | None = None,
    confidence: npt.ArrayLike | None = None,
    present: npt.ArrayLike | None = None,
    camera: Camera | None = None,
) -> Iterator[ImageArray]:
    """Render a clip frame by frame (for long clips).

    Args:
        joints: ``(T, J, 3)`` or ``(T, P, J, 3)`` metres.
        options: drawing options (default :class:`RenderOptions`).
        confidence: ``(T, J)`` or ``(T, P, J)``.
        present: ``(T,)`` or ``(T, P)`` booleans.
        camera: a camera to use instead of fitting one to this clip.

    Returns:
        An iterator of ``(H, W, 3)`` uint8 RGB frames. Shapes are checked when
        this function is called, not when iteration starts.
    """
    opts = options if options is not None else RenderOptions()
    x, conf, pres = as_clip(joints, opts.layout, confidence, present)
    cam = camera if camera is not None else Camera.fit(x, pres, opts)
    if (cam.width, cam.height) != (opts.width, opts.height):
        raise ValueError(f"camera is {cam.width}x{cam.height} but options ask for {opts.width}x{opts.height}")
    return _iter(x, conf, pres, cam, opts)


def _iter(
    x: npt.NDArray[np.float64],
    conf: npt.NDArray[np.float64] | None,
    pres: npt.NDArray[np.bool_],
    cam: Camera,
    opts: RenderOptions,
) -> Iterator[ImageArray]:
    for t in range(x.shape[0]):
        yield _render(x[t], None if conf is None else conf[t], pres[t], cam, opts, t)


def render_clip(
    joints: npt.ArrayLike,
    options: RenderOptions | None = None,
    confidence: npt.ArrayLike | None = None,
    present: npt.ArrayLike | None = None,
    camera: Camera | None = None,
) -> ImageArray:
    """Render a whole clip ``(T, J, 3)`` or ``(T, P, J, 3)`` into ``(T, H, W, 3)`` uint8 RGB.

    See :func:`iter_frames` for the arguments; the camera is fixed for the clip.
    """
    opts = options if options is not None else RenderOptions()
    frames = list(iter_frames(joints, opts, confidence, present, camera))
    if not frames:
        return np.zeros((0, opts.height, opts.width, 3), dtype=np.uint8)
    return np.stack(frames)


def iter_compare_frames(
    a: npt.ArrayLike,
    b: npt.ArrayLike,
    labels: tuple[str, str] = ("original", "anonymized"),
    options: RenderOptions | None = None,
    shared_camera: bool = True,
    confidence_a: npt.ArrayLike | None = None,
    confidence_b: npt.ArrayLike | None = None,
    present_a: npt.ArrayLike | None = None,
    present_b: npt.ArrayLike | None = None,
) -> Iterator[ImageArray]:
    """Side-by-side frames ``(H, 2W, 3)`` of two clips; see :func:`compare_clips`."""
    opts = options if options is not None else RenderOptions()
    if len(labels) != 2:
        raise ValueError(f"labels must be two strings, got {labels!r}")
    xa, ca, pa = as_clip(a, opts.layout, confidence_a, present_a, "clip a")
    xb, cb, pb = as_clip(b, opts.layout, confidence_b, present_b, "clip b")
    n = min(xa.shape[0], xb.shape[0])
    if xa.shape[0] != xb.shape[0]:
        log.warning(
            "compare_clips: clips differ in length (%d vs %d frames); using the first %d",
            xa.shape[0],
            xb.shape[0],
            n,
        )
    xa, pa, xb, pb = xa[:n], pa[:n], xb[:n], pb[:n]
    ca = None if ca is None else ca[:n]
    cb = None if cb is None else cb[:n]
    if shared_camera:
        pts_a, heads_a = valid_points(xa, pa, opts.layout)
        pts_b, heads_b = valid_points(xb, pb, opts.layout)
        # Fit with the panels' titles so the labels get their room.
        fit_opts = replace(opts, title=opts.title or labels[0] or labels[1] or None)
        cam_a = cam_b = Camera.fit_points(
            np.concatenate([pts_a, pts_b]), np.concatenate([heads_a, heads_b]), options=fit_opts
        )
    else:
        cam_a = Camera.fit(xa, pa, replace(opts, title=opts.title or labels[0] or None))
        cam_b = Camera.fit(xb, pb, replace(opts, title=opts.title or labels[1] or None))

    def titled(label: str) -> RenderOptions:
        return replace(opts, title=f"{opts.title} | {label}" if opts.title else label)

    oa, ob = titled(labels[0]), titled(labels[1])
    sep = mix((150, 150, 150), opts.background, 1.0)

    def gen() -> Iterator[ImageArray]:
        for t in range(n):
            left = _render(xa[t], None if ca is None else ca[t], pa[t], cam_a, oa, t)
            right = _render(xb[t], None if cb is None else cb[t], pb[t], cam_b, ob, t)
            right[:, 0] = sep
            yield np.concatenate([left, right], axis=1)

    return gen()


def compare_clips(
    a: npt.ArrayLike,
    b: npt.ArrayLike,
    labels: tuple[str, str] = ("original", "anonymized"),
    options: RenderOptions | None = None,
    shared_camera: bool = True,
    confidence_a: npt.ArrayLike | None = None,
    confidence_b: npt.ArrayLike | None = None,
    present_a: npt.ArrayLike | None = None,
    present_b: npt.ArrayLike | None = None,
) -> ImageArray:
    """Render two clips side by side, each panel titled with its label.

    Args:
        a, b: ``(T, J, 3)`` or ``(T, P, J, 3)`` metres (e.g. original and anonymized).
            If their lengths differ the shorter length is used and a warning logged.
        labels: panel titles (left, right).
        options: per-panel options; each panel is ``options.width`` wide.
        shared_camera: fit one camera on both clips so sizes are comparable;
            otherwise each panel fits its own.
        confidence_a, confidence_b, present_a, present_b: as in :func:`iter_frames`.

    Returns:
        ``(T, H, 2W, 3)`` uint8 RGB.
    """
    opts = options if options is not None else RenderOptions()
    frames = list(
        iter_compare_frames(
            a, b, labels, opts, shared_camera, confidence_a, confidence_b, present_a, present_b
        )
    )
    if not frames:
        return np.zeros((0, opts.height, 2 * opts.width, 3), dtype=np.uint8)
    return np.stack(frames)


__all__ = ["render_frame", "iter_frames", "render_clip", "iter_compare_frames", "compare_clips"]
