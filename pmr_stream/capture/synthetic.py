"""The stand-in motion generator as a live source, for load tests and demos.

``synthetic:N`` publishes N streams (``<id>-0`` .. ``<id>-N-1``; one stream is just
``<id>``), each one stand-in performer (:func:`pmr_stream.synth.make_performers`)
doing actions one after another (:class:`pmr_stream.synth.SyntheticStream`), at
30 fps media time. :class:`~pmr_stream.capture.producer.Producer` paces them
(``speed`` 1 = real time, 0 = as fast as possible). Deterministic by ``seed``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence

from pmr_stream.capture.source import PersonPose, SourceFrame, StreamInfo
from pmr_stream.skeleton import FPS


def stream_ids(n_streams: int, stream: str = "syn") -> list[str]:
    """The stream ids of ``synthetic:N`` with stream id ``stream``: ``stream`` alone for one,
    ``stream-0`` .. ``stream-<N-1>`` for several."""
    return [stream] if n_streams == 1 else [f"{stream}-{k}" for k in range(n_streams)]


class SyntheticSource:
    """``n_streams`` synthetic performers, one stream each, one person per stream.

    ``actions``: action names to cycle through (default: a random sequence per stream).
    """

    live = False

    def __init__(
        self,
        n_streams: int = 1,
        stream: str = "syn",
        *,
        seed: int = 0,
        fps: float = FPS,
        actions: Sequence[str] | None = None,
        noise: bool = True,
    ) -> None:
        from pmr_stream.synth import SyntheticStream, make_performers

        if n_streams < 1:
            raise ValueError(f"n_streams must be >= 1, got {n_streams}")
        self.fps = float(fps)
        cast = make_performers(n_streams, seed)
        ids = stream_ids(n_streams, stream)
        self._gens = [
            SyntheticStream(cast[k], actions, seed=seed + k, noise=noise, fps=self.fps)
            for k in range(n_streams)
        ]
        for gen in self._gens:  # the first segments now, not all in the first frame period
            gen.prime()
        self.streams = [
            StreamInfo(sid, self.fps, "synthetic", 1,
                       {"performer": cast[k].id, "seed": seed + k, "generator": "pmr_stream.synth.SyntheticStream"})
            for k, sid in enumerate(ids)
        ]  # fmt: skip

    @property
    def drops(self) -> int:
        return 0

    def frames(self, stop: threading.Event) -> Iterator[SourceFrame]:
        i = 0
        while not stop.is_set():
            pts = i / self.fps
            for info, gen in zip(self.streams, self._gens, strict=True):
                joints = next(gen)
                yield SourceFrame(info.stream, i, pts, (PersonPose(0, joints, gen.last_confidence.copy()),))
            i += 1

    def close(self) -> None:
        pass


__all__ = ["SyntheticSource", "stream_ids"]
