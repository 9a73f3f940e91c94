"""The MediaPipe Pose 33 -> NTU-25 map: which landmarks make each Kinect joint.

Pure numpy (no MediaPipe needed): :func:`mediapipe_to_ntu` maps world or image
landmarks to NTU-25 joints and confidences, :func:`estimate_root_position` places
the hip centre in the camera frame. :mod:`pmr_stream.capture.pose` runs MediaPipe
and calls them.
"""

from __future__ import annotations

from typing import Final, Literal

import numpy as np
import numpy.typing as npt

from pmr_stream.skeleton import MEDIAPIPE33, MP_JOINT_NAMES, NTU_JOINT_NAMES, J

#: How each NTU-25 joint is made from MediaPipe's 33 landmarks: a weighted sum of
#: landmarks (weights sum to 1). Joints MediaPipe lacks are derived:
#:
#: ========================  ==============================================
#: NTU joint                 from MediaPipe landmarks
#: ========================  ==============================================
#: SpineBase                 mid-hip (mean of left_hip, right_hip)
#: SpineShoulder             mid-shoulder
#: SpineMid                  0.57 of the way from mid-hip to mid-shoulder
#: Neck                      0.35 of the way from mid-shoulder to mid-ear
#: Head                      mid-ear moved 10 % of the way towards the nose
#: Shoulder                  the shoulder landmark pulled 14 % towards mid-shoulder
#: Elbow/Wrist               the landmark of the same name
#: Hand                      mean of wrist, index and pinky knuckles
#: HandTip                   mean of index and pinky knuckles
#: Thumb                     thumb
#: Hip                       the hip landmark pulled 46 % towards mid-hip
#: Knee/Ankle                the landmark of the same name
#: Foot                      foot_index (the toes)
#: ========================  ==============================================
#:
#: Kinect v2 places its hip and shoulder joints closer to the body's midline than
#: MediaPipe's landmarks (hip width 0.12 m vs 0.22 m, shoulder width 0.27 m vs
#: 0.31 m on the same person). The fractions above were fitted on the real NTU
#: take S001C001P001R001A001, whose RGB video and Kinect skeleton show the same
#: movement (tests/capture/test_mediapipe_map.py checks the agreement).
_MP = {n: i for i, n in enumerate(MP_JOINT_NAMES)}


def _mid(a: str, b: str, wa: float = 0.5) -> dict[int, float]:
    return {_MP[a]: wa, _MP[b]: 1.0 - wa}


def _lerp(a: dict[int, float], b: dict[int, float], t: float) -> dict[int, float]:
    out: dict[int, float] = {}
    for k, v in a.items():
        out[k] = out.get(k, 0.0) + (1.0 - t) * v
    for k, v in b.items():
        out[k] = out.get(k, 0.0) + t * v
    return out


_MID_HIP = _mid("left_hip", "right_hip")
_MID_SHOULDER = _mid("left_shoulder", "right_shoulder")
_MID_EAR = _mid("left_ear", "right_ear")


def _side(side: str) -> dict[str, dict[int, float]]:
    s = side

    o = "right" if side == "left" else "left"

    def one(n: str) -> dict[int, float]:
        return {_MP[f"{s}_{n}"]: 1.0}

    def inward(n: str, pull: float) -> dict[int, float]:
        # landmark moved `pull` of the way towards the midpoint of the pair
        return {_MP[f"{s}_{n}"]: 1.0 - pull / 2.0, _MP[f"{o}_{n}"]: pull / 2.0}

    return {
        "Shoulder": inward("shoulder", 0.14),
        "Elbow": one("elbow"),
        "Wrist": one("wrist"),
        "Hand": {_MP[f"{s}_wrist"]: 1 / 3, _MP[f"{s}_index"]: 1 / 3, _MP[f"{s}_pinky"]: 1 / 3},
        "HandTip": {_MP[f"{s}_index"]: 0.5, _MP[f"{s}_pinky"]: 0.5},
        "Thumb": one("thumb"),
        "Hip": inward("hip", 0.46),
        "Knee": one("knee"),
        "Ankle": one("ankle"),
        "Foot": one("foot_index"),
    }


def _build_mp_to_ntu() -> npt.NDArray[np.float64]:
    recipe: dict[str, dict[int, float]] = {
        "SpineBase": _MID_HIP,
        "SpineShoulder": _MID_SHOULDER,
        "SpineMid": _lerp(_MID_HIP, _MID_SHOULDER, 0.57),
        "Neck": _lerp(_MID_SHOULDER, _MID_EAR, 0.35),
        "Head": _lerp(_MID_EAR, {_MP["nose"]: 1.0}, 0.10),
    }
    for side, suffix in (("left", "Left"), ("right", "Right")):
        for part, weights in _side(side).items():
            recipe[part + suffix] = weights
    w = np.zeros((J, len(MP_JOINT_NAMES)))
    for j, name in enumerate(NTU_JOINT_NAMES):
        for k, v in recipe[name].items():
            w[j, k] = v
    return w


#: (25, 33) matrix: NTU joint j = sum_k MP_TO_NTU[j, k] * landmark k.
MP_TO_NTU: Final[npt.NDArray[np.float64]] = _build_mp_to_ntu()
assert np.allclose(MP_TO_NTU.sum(axis=1), 1.0)

#: MediaPipe world landmarks (x image-right, y down, z away; metres, hip-centred)
#: into the Kinect convention for an un-mirrored image: image-right is the
#: sensor's right, i.e. Kinect's -x. A 180 degree turn about z (a proper rotation).
_MP_WORLD_TO_KINECT: Final = np.array([-1.0, -1.0, 1.0])


def mediapipe_to_ntu(
    landmarks: npt.ArrayLike,
    visibility: npt.ArrayLike | None = None,
    *,
    kind: Literal["world", "image"] = "world",
    mirrored: bool = False,
    origin: npt.ArrayLike | None = None,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Map MediaPipe Pose landmarks to the NTU-25 skeleton.

    Args:
        landmarks: ``(..., 33, 3)``. For ``kind="world"``: MediaPipe's world
            landmarks (metres, origin between the hips, x image-right, y down,
            z away from the camera). For ``kind="image"``: normalised image
            landmarks (x, y in [0, 1] of the image width/height, z relative depth).
        visibility: ``(..., 33)`` MediaPipe visibility in [0, 1], or ``None`` (all 1).
        kind: which landmark set ``landmarks`` is.
        mirrored: the image MediaPipe saw was mirrored (Kinect's colour stream,
            selfie-view webcams). MediaPipe then labels the person's right side
            "left"; the map swaps the labels back and undoes the mirroring.
        origin: ``(..., 3)`` metres, where to put the hip centre in the camera
            frame (world landmarks only); see :func:`estimate_root_position`.
            ``None`` leaves the skeleton hip-centred.

    Returns:
        ``(joints, confidence)``. For ``"world"``: ``(..., 25, 3)`` metres in the
        Kinect camera convention. For ``"image"``: ``(..., 25, 3)`` in the input's
        normalised image coordinates (x right, y down, no axis change, only
        labels are swapped when ``mirrored``). Confidence ``(..., 25)`` is the
        smallest visibility of the landmarks a joint is made from.
    """
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape[-2:] != (33, 3):
        raise ValueError(f"landmarks must have shape (..., 33, 3), got {lm.shape}")
    if not np.all(np.isfinite(lm)):
        raise ValueError("landmarks contain NaN or infinite values")
    vis = np.ones(lm.shape[:-1]) if visibility is None else np.asarray(visibility, dtype=np.float64)
    if vis.shape != lm.shape[:-1]:
        raise ValueError(f"visibility must have shape {lm.shape[:-1]}, got {vis.shape}")
    if mirrored:
        perm = list(MEDIAPIPE33.mirror_permutation)
        lm = lm[..., perm, :]
        vis = vis[..., perm]
    joints = np.einsum("jk,...kc->...jc", MP_TO_NTU, lm)
    used = MP_TO_NTU > 0  # (25, 33)
    conf = np.where(used, vis[..., None, :], np.inf).min(axis=-1)
    if kind == "world":
        joints = joints * (_MP_WORLD_TO_KINECT * np.array([-1.0 if mirrored else 1.0, 1.0, 1.0]))
        if origin is not None:
            joints = joints + np.asarray(origin, dtype=np.float64)[..., None, :]
    elif kind != "image":
        raise ValueError(f"kind must be 'world' or 'image', got {kind!r}")
    return joints.astype(np.float32), np.clip(conf, 0.0, 1.0).astype(np.float32)


def estimate_root_position(
    world: npt.ArrayLike,
    image: npt.ArrayLike,
    image_size: tuple[int, int],
    horizontal_fov_deg: float = 70.0,
) -> npt.NDArray[np.float64]:
    """Estimate where the hip centre stands in the camera frame (metres).

    A pinhole camera with the given horizontal field of view (Kinect v2 colour:
    about 84 degrees; typical webcams 60-78) is assumed. Depth comes from the
    ratio of the skeleton's metric extent (world landmarks) to its extent in
    pixels (image landmarks); x and y from the hip centre's pixel position.

    Args:
        world: ``(..., 33, 3)`` MediaPipe world landmarks (metres).
        image: ``(..., 33, 3)`` normalised image landmarks of the same frames.
        image_size: ``(width, height)`` in pixels.

    Returns:
        ``(..., 3)`` hip centre in the Kinect convention (for an un-mirrored image).
    """
    w_lm = np.asarray(world, dtype=np.float64)
    i_lm = np.asarray(image, dtype=np.float64)
    width, height = image_size
    f = (width / 2.0) / np.tan(np.radians(horizontal_fov_deg) / 2.0)
    px = i_lm[..., :2] * np.array([width, height], dtype=np.float64)
    body = [11, 12, 23, 24, 25, 26, 27, 28]
    wc = w_lm[..., body, :2] - w_lm[..., body, :2].mean(axis=-2, keepdims=True)
    pc = px[..., body, :] - px[..., body, :].mean(axis=-2, keepdims=True)
    metric = np.sqrt((wc**2).sum(axis=(-1, -2)))
    pixels = np.sqrt((pc**2).sum(axis=(-1, -2)))
    depth = f * metric / np.maximum(pixels, 1e-6)
    hip_px = px[..., [23, 24], :].mean(axis=-2)
    x = (hip_px[..., 0] - width / 2.0) * depth / f
    y = (hip_px[..., 1] - height / 2.0) * depth / f
    return np.stack([-x, -y, depth], axis=-1)


__all__ = ["MP_TO_NTU", "mediapipe_to_ntu", "estimate_root_position"]
