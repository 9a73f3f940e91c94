"""Options of the streaming anonymizer: :class:`ServiceOptions` and its command-line flags.

:func:`add_service_arguments` declares the service's flags (``--policy``, ``--max-batch``,
``--max-wait-ms``, ``--max-gap``, ``--idle``, the limits, ``--report``, ``--stats-json``,
``--bones``, ``--engine-thread``, ``--metrics-port``, ``--metrics-host``) once, with the
dataclass's defaults; :meth:`ServiceOptions.from_args` reads them back. :data:`BONES` are the
choices of ``--bones`` wherever a command offers it.
"""

from __future__ import annotations

import argparse
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from pmr_stream.anonymizer.window import POLICY_HELP, WindowPolicy
from pmr_stream.wire.checks import MAX_METADATA_BYTES
from pmr_stream.wire.privacy import StreamIds
from pmr_stream.wire.shard import parse_shard

#: How output bones are sized: the dummy's lengths, or whatever the network gave (``--bones``).
BONES: Final[tuple[str, ...]] = ("dummy", "model")
#: The one default of the bone step, for the service, ``pmr anonymize`` and
#: :class:`pmr_stream.offline.AnonymizeOptions` alike.
DEFAULT_BONES: Final[str] = "dummy"
#: Help of ``--bones`` on the service's commands.
BONES_HELP: Final[str] = (
    "dummy (default): set every output bone to the dummy's length; model: the network's output as is"
)


@dataclass(frozen=True)
class ServiceOptions:
    """Options of :class:`AnonymizerService`.

    Attributes:
        policy: window policy (``last`` or ``delay:N``, see :mod:`pmr_stream.anonymizer.window`).
        max_batch: most windows per engine call.
        max_wait_ms: longest a due window waits for others to join its batch. The service
            waits only while frames arrive faster than one per ``max_wait_ms`` (measured
            rate), so at low rates nothing waits.
        max_gap: missing frames of a person bridged by interpolation; longer gaps reset it.
        idle_s: persons and streams not heard of for this long are evicted (the subscriber
            forgets such streams too; ended streams after ``min(idle_s, 1)`` seconds).
        max_metadata_bytes: largest stream-start metadata accepted, bytes msgpack-encoded;
            a larger start is refused (``refused["metadata_too_large"]``).
        max_streams: streams tracked at once; the start of one more is refused
            (``too_many_streams``) unless an ended one can be forgotten.
        max_persons_per_stream, max_persons: persons with a window buffer at once, per stream
            and in all; frames of a new person beyond them are refused
            (``too_many_persons_in_stream``, ``too_many_persons``) and not published.
        report_s: seconds between stats lines (0: none).
        stats_json: also write the stats to this file at each report and at the end.
        metrics_port: serve ``/metrics`` (Prometheus text) and ``/stats.json`` over HTTP on
            this port (0: a free port; ``None``: no endpoint), refreshed every second.
        metrics_host: the address the endpoint binds (default loopback only).
        bones: ``"dummy"`` (default): every output frame's bones are set to the dummy's
            median lengths by forward kinematics (directions kept), so no residual of the
            person's build survives the network's imperfect retargeting; ``"model"``: the
            network's output as it is (:data:`BONES`).
        engine_thread: run the engine in its own thread while the loop keeps receiving and
            publishing.
        stream_key: secret of the ``anon/`` stream-id pseudonyms (:mod:`pmr_stream.wire.privacy`,
            at least 16 bytes; ``pmr anonymizer`` reads the deployment's key file). ``None``: a
            random key for this service only (pseudonyms then change when it restarts).
        public_stream_ids: raw stream ids the operator declared harmless: they go to ``anon/``
            unchanged.
        shard: ``(index, count)``: serve only the streams whose topic hashes to ``index`` of
            ``count`` shards (:mod:`pmr_stream.wire.shard`; ``pmr anonymizer --workers N`` sets it
            for its workers, and shards on several hosts can set it by hand). ``None``: all.
    """

    policy: WindowPolicy = field(default_factory=WindowPolicy)
    max_batch: int = 128
    max_wait_ms: float = 5.0
    max_gap: int = 10
    idle_s: float = 5.0
    max_metadata_bytes: int = MAX_METADATA_BYTES
    max_streams: int = 1024
    max_persons_per_stream: int = 64
    max_persons: int = 4096
    report_s: float = 5.0
    stats_json: Path | None = None
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
    bones: str = DEFAULT_BONES
    engine_thread: bool = False
    stream_key: bytes | None = field(default=None, repr=False)
    public_stream_ids: frozenset[str] = frozenset()
    shard: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if self.shard is not None:
            parse_shard(f"{self.shard[0]}/{self.shard[1]}")  # raises, naming it, when out of range
        if self.bones not in BONES:
            raise ValueError(f"bones must be one of {', '.join(BONES)}, got {self.bones!r}")
        if self.max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {self.max_batch}")
        if self.max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must be >= 0, got {self.max_wait_ms}")
        if min(self.max_metadata_bytes, self.max_streams, self.max_persons_per_stream, self.max_persons) < 1:
            raise ValueError(
                "max_metadata_bytes, max_streams, max_persons_per_stream and max_persons must be >= 1"
            )
        key = self.stream_key if self.stream_key is not None else bytes(16)
        StreamIds(key, self.public_stream_ids)  # checks the key's length and the ids
        object.__setattr__(self, "public_stream_ids", frozenset(self.public_stream_ids))

    @classmethod
    def from_args(cls, args: argparse.Namespace, **extra: Any) -> ServiceOptions:
        """The options given by the flags of :func:`add_service_arguments`.

        ``extra``: further fields (or overrides), e.g. ``stream_key`` and ``public_stream_ids``
        from :func:`~pmr_stream.wire.privacy.stream_ids_from_args`. Raises ``ValueError`` for a
        bad ``--policy`` or an option out of range.
        """
        fields: dict[str, Any] = {
            "policy": WindowPolicy.parse(args.policy), "max_batch": args.max_batch,
            "max_wait_ms": args.max_wait_ms, "max_gap": args.max_gap, "idle_s": args.idle,
            "report_s": args.report, "max_metadata_bytes": args.max_metadata_bytes,
            "max_streams": args.max_streams, "max_persons_per_stream": args.max_persons_per_stream,
            "max_persons": args.max_persons, "stats_json": Path(args.stats_json) if args.stats_json else None,
            "metrics_port": args.metrics_port, "metrics_host": args.metrics_host, "bones": args.bones,
            "engine_thread": args.engine_thread,
            "shard": parse_shard(args.shard) if getattr(args, "shard", None) else None,
        }  # fmt: skip
        fields.update(extra)
        return cls(**fields)


class _Without:
    """A parser that leaves out some flags (a launcher sets those itself)."""

    def __init__(
        self, parser: argparse.ArgumentParser | argparse._ArgumentGroup, skip: Collection[str]
    ) -> None:
        self.parser, self.skip = parser, set(skip)

    def add_argument(self, *flags: str, **kwargs: Any) -> None:
        if flags[0] not in self.skip:
            self.parser.add_argument(*flags, **kwargs)


def add_service_arguments(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup, skip: Collection[str] = ()
) -> None:
    """Add the flags of :class:`ServiceOptions` (read them back with :meth:`ServiceOptions.from_args`);
    ``skip``: flags (e.g. ``"--stats-json"``) a launcher passes on itself.

    Flags and defaults: ``--policy last``, ``--max-batch 128``, ``--max-wait-ms 5``,
    ``--max-gap 10``, ``--idle 5`` (s), ``--max-metadata-bytes 16384``, ``--max-streams 1024``,
    ``--max-persons-per-stream 64``, ``--max-persons 4096``, ``--report 5`` (s, 0: none),
    ``--stats-json FILE``, ``--bones {dummy,model}``, ``--engine-thread``,
    ``--metrics-port PORT`` (none), ``--metrics-host 127.0.0.1``. The stream-id flags
    (:func:`~pmr_stream.wire.privacy.add_stream_id_arguments`) are not among them.
    """
    d = _DEFAULTS
    p = _Without(parser, skip)
    p.add_argument("--policy", default=d.policy.name, help=f"window policy: {POLICY_HELP}; default last")
    p.add_argument(
        "--max-batch",
        type=int,
        default=d.max_batch,
        help=f"most windows per engine call (default {d.max_batch})",
    )
    p.add_argument(
        "--max-wait-ms",
        type=float,
        default=d.max_wait_ms,
        help="longest wait for a batch to fill, only while frames arrive faster than one per that time "
        f"(default {d.max_wait_ms:g} ms)",
    )
    p.add_argument("--max-gap", type=int, default=d.max_gap,
                   help=f"missing frames interpolated; longer gaps reset (default {d.max_gap})")  # fmt: skip
    p.add_argument(
        "--idle", type=float, default=d.idle_s, help="evict persons/streams unseen this long, seconds"
    )
    p.add_argument(
        "--max-metadata-bytes",
        type=int,
        default=d.max_metadata_bytes,
        metavar="BYTES",
        help=f"refuse stream starts whose metadata is larger, msgpack-encoded (default {d.max_metadata_bytes})",
    )
    p.add_argument("--max-streams", type=int, default=d.max_streams,
                   help=f"streams tracked at once; more are refused (default {d.max_streams})")  # fmt: skip
    p.add_argument("--max-persons-per-stream", type=int, default=d.max_persons_per_stream,
                   help=f"persons held per stream; frames of more are refused (default {d.max_persons_per_stream})")  # fmt: skip
    p.add_argument("--max-persons", type=int, default=d.max_persons,
                   help=f"persons held in all; more are refused (default {d.max_persons})")  # fmt: skip
    p.add_argument("--report", type=float, default=d.report_s, help="seconds between stats lines (0: none)")
    p.add_argument("--stats-json", default=None, metavar="FILE", help="also write the stats to FILE")
    p.add_argument("--bones", choices=BONES, default=d.bones, help=BONES_HELP)
    p.add_argument("--engine-thread", action="store_true",
                   help="run the engine in its own thread while the loop keeps receiving and publishing")  # fmt: skip
    p.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        metavar="PORT",
        help="serve /metrics (Prometheus text) and /stats.json over HTTP on PORT (0: any free port)",
    )
    p.add_argument(
        "--metrics-host", default=d.metrics_host, help="address the metrics endpoint binds (default loopback)"
    )
    p.add_argument("--workers", type=int, default=1, metavar="N",
                   help="run N service processes behind the same endpoints, each serving the streams that "
                        "hash to it (a dead one is restarted); default 1: one process serves")  # fmt: skip
    p.add_argument("--shard", default=None, metavar="I/N",
                   help="serve only the streams of shard I of N (a stable hash of the stream id); "
                        "--workers sets it for its workers; shards on several hosts set it by hand")  # fmt: skip


#: The defaults the flags show.
_DEFAULTS: Final[ServiceOptions] = ServiceOptions()

__all__ = ["BONES", "BONES_HELP", "DEFAULT_BONES", "ServiceOptions", "add_service_arguments"]
