"""Which shard serves a stream: a stable hash of its topic.

``pmr anonymizer --workers N`` runs N service processes behind one pair of endpoints; each
receives every ``raw/`` message (ZeroMQ's publish/subscribe fans out) and keeps only the
streams whose topic hashes to its index, so a stream is always served by the same worker
and its windows stay in one place. The hash is BLAKE2b of the topic bytes (not Python's
``hash``, which changes per process), so every worker, and a restarted one, agrees.
Only the topic before the ``\\0`` is read: another shard's frames cost a ``find`` and a
dictionary lookup, never a decode.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

#: distinct topics remembered per filter before the cache is cleared (bounds memory)
_CACHE_TOPICS = 65536


def shard_of(topic: str | bytes, count: int) -> int:
    """The shard index in ``[0, count)`` of a topic (``raw/<stream>``)."""
    if count < 1:
        raise ValueError(f"shard count must be >= 1, got {count}")
    b = topic.encode("ascii", "replace") if isinstance(topic, str) else topic
    return int.from_bytes(hashlib.blake2b(b, digest_size=8).digest(), "big") % count


def parse_shard(spec: str) -> tuple[int, int]:
    """``"I/N"`` -> ``(I, N)`` with ``0 <= I < N``; ``ValueError`` naming the spec otherwise."""
    index, sep, count = spec.partition("/")
    try:
        i, n = int(index), int(count)
    except ValueError:
        i = n = -1
    if not sep or n < 1 or not 0 <= i < n:
        raise ValueError(f"shard {spec!r}: expected I/N with 0 <= I < N, e.g. 0/2")
    return i, n


@dataclass
class ShardFilter:
    """Accepts the frames of the streams of shard ``index`` of ``count``."""

    index: int
    count: int
    #: frames of other shards' streams skipped
    skipped: int = 0
    _mine: dict[bytes, bool] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ValueError(f"shard {self.index}/{self.count}: expected 0 <= index < count")

    def accepts(self, data: bytes) -> bool:
        """Whether the frame ``data`` (``topic \\0 payload``) belongs to this shard. A frame
        without a topic is accepted, so that the subscriber drops it and says why."""
        end = data.find(b"\0", 0, 80)
        if end <= 0:
            return True
        topic = data[:end]
        mine = self._mine.get(topic)
        if mine is None:
            if len(self._mine) >= _CACHE_TOPICS:
                self._mine.clear()
            mine = self._mine[topic] = shard_of(topic, self.count) == self.index
        if not mine:
            self.skipped += 1
        return mine


__all__ = ["ShardFilter", "parse_shard", "shard_of"]
