"""The service's batched hot path publishes what the one-window-at-a-time definitions give (issue 16).

A recorded clip (the demo clip) is split into several streams, one with a short gap, and fed
through the real :class:`Subscriber` and :class:`AnonymizerService` with a real publisher on
loopback; every published frame must equal, within 1e-6 m, the frame computed one window at a
time from the definitions: the buffer padded with the first frame and bridged linearly over the
gap, :func:`center_windows`, the engine, the last frame put back, :func:`retarget_bones` to the
dummy's bones. The packed encoder and the decoder's fast path give the same bytes and messages
as the message objects do.
"""

from __future__ import annotations

import numpy as np

from pmr_stream.anonymizer.options import ServiceOptions
from pmr_stream.anonymizer.service import AnonymizerService
from pmr_stream.assets import DEMO_CLIP
from pmr_stream.formats.io import load_recording
from pmr_stream.skeleton import T, center_windows, median_bone_lengths, retarget_bones
from pmr_stream.wire.privacy import StreamIds, anon_frame, pack_anon_frame
from pmr_stream.wire.schema import FrameMessage, from_dict, pack, to_dict
from pmr_stream.wire.sockets import Publisher
from pmr_stream.wire.subscriber import Subscriber
from tests.service.cheap_service import CheapBackend
from tests.service.conftest import end_msg, frame_msg, start_msg
from tests.waiting import wait_until

KEY = b"k" * 32


def _reference(
    frames: list[int], joints: np.ndarray, backend: CheapBackend, bones: np.ndarray
) -> dict[int, np.ndarray]:
    """Output joints per frame number, one window at a time (the definitions, no batching)."""
    out: dict[int, np.ndarray] = {}
    buf: np.ndarray | None = None
    last = -1
    for f, x in zip(frames, joints, strict=True):
        if buf is None:
            buf = np.repeat(x[None], T, axis=0)
        else:
            prev, step = buf[-1], f - last
            fill = [prev + (x - prev) * (i / step) for i in range(1, step)]
            buf = np.concatenate([buf, *(g[None] for g in fill), x[None]])[-T:]
        last = f
        window, origin = center_windows(buf)
        y = backend.anonymize(window[None])[0]
        out[f] = retarget_bones((y[-1] + origin.reshape(3))[None], bones)[0]
    return out


def test_batched_service_output_equals_the_one_window_definitions() -> None:
    clip = load_recording(DEMO_CLIP).joints[:90, 0].astype(np.float32)
    streams = {f"cam{k}": list(range(90)) for k in range(4)}
    streams["cam3"] = [f for f in range(90) if not 40 <= f < 43]  # a 3-frame gap: bridged, not published
    backend = CheapBackend()
    bones = median_bone_lengths(backend.source.dummy_window)
    with Publisher("tcp://127.0.0.1:*", carries_raw=False) as pub, \
            Subscriber(pub.endpoint, ["anon/"]) as sink, Subscriber(["tcp://127.0.0.1:9"], ["raw/"]) as raw:  # fmt: skip
        assert wait_until(lambda: pub.poll_subscriptions() != [] or pub.subscribers > 0, 10)
        svc = AnonymizerService(
            backend, "m", raw, pub, ServiceOptions(report_s=0, stream_key=KEY, max_batch=3)
        )
        msgs = [[pack(start_msg(s, 0)) for s in streams]]
        seqs = dict.fromkeys(streams, 1)
        for f in range(90):
            instant = []
            for s, fs in streams.items():
                if f in fs:
                    instant.append(pack(frame_msg(s, seqs[s], f, clip[f] + np.float32(0.1 * int(s[-1])))))
                    seqs[s] += 1
            msgs.append(instant)
        msgs.append([pack(end_msg(s, seqs[s], len(fs))) for s, fs in streams.items()])
        for instant in msgs:  # the order of AnonymizerService.step with an instant queued at once
            for data in instant:
                r = raw.handle(data)
                assert r is not None, raw.last_error
                svc.take(r)
                if len(svc.due) >= svc.options.max_batch:
                    svc._run_due()
                    svc._publish_ready()
            svc._run_due()
            svc._publish_ready()
        got: dict[tuple[str, int], FrameMessage] = {}
        n = sum(len(fs) for fs in streams.values())

        def take_all() -> bool:
            while (r := sink.receive(0)) is not None:
                if isinstance(r.message, FrameMessage):
                    got[(r.message.stream, r.message.frame)] = r.message
            return len(got) >= n

        assert wait_until(take_all, 20), f"{len(got)} of {n} frames"
    ids = StreamIds(KEY)
    worst = 0.0
    for s, fs in streams.items():
        k = int(s[-1])
        ref = _reference(fs, clip[fs] + np.float32(0.1 * k), backend, bones)
        for f in fs:
            m = got[(ids.anon(s), f)]
            worst = max(worst, float(np.abs(m.joints - ref[f]).max()))
    assert worst <= 1e-6, worst
    assert svc.stats.published_frames == n and not svc.stats.failed


def test_packed_encoder_and_fast_decoder_match_the_messages() -> None:
    rng = np.random.default_rng(0)
    for i in range(20):
        src = frame_msg("cam1", i + 1, i, rng.normal(0, 1, (25, 3)).astype(np.float32))
        joints = rng.normal(0, 1, (25, 3)).astype(np.float32)
        msg = anon_frame(src, stream="s-0123456789abcdef", seq=i, person=i % 3, joints=joints, model_id="m")
        data = pack_anon_frame(
            src, stream="s-0123456789abcdef", seq=i, person=i % 3, joints=joints, model_id="m"
        )
        assert data == pack(msg)  # byte for byte
        back = from_dict(to_dict(src))  # the decoder's fast path
        assert back == src and vars(back).keys() == vars(src).keys() and back.joints.flags.writeable
