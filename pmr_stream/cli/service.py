"""Service commands: ``pmr anonymizer`` (the streaming service) and ``pmr stream`` (the demo)."""

from __future__ import annotations

import argparse
from typing import Any

from pmr_stream.backends.options import add_backend_arguments, backend_kwargs
from pmr_stream.cli.common import print_json_line
from pmr_stream.wire.options import add_anonymizer_socket_arguments, anonymizer_socket_options, link


def cmd_anonymizer(args: argparse.Namespace) -> int:
    if args.workers > 1:
        return cmd_anonymizer_shards(args)
    if args.workers < 1:
        raise SystemExit(f"pmr anonymizer: --workers must be >= 1, got {args.workers}")
    from pmr_stream.anonymizer.options import ServiceOptions
    from pmr_stream.anonymizer.service import serve
    from pmr_stream.backends import get_backend
    from pmr_stream.wire.privacy import stream_ids_from_args
    from pmr_stream.wire.sockets import stop_on_signals

    raw_sockets, anon_sockets = anonymizer_socket_options(
        args, args.raw
    )  # bad flags fail before the backend loads
    ids = stream_ids_from_args(args, create=True)  # the deployment's key (made on first use)
    opts = ServiceOptions.from_args(args, stream_key=ids.key, public_stream_ids=ids.public)
    backend = get_backend(
        args.backend, **backend_kwargs(args, max_batch=max(args.max_batch, 1))
    )  # the dummy's privacy code is computed here, once
    backend.warmup((1, min(8, args.max_batch)))
    model_id = backend.source.model_id
    import gc

    gc.collect()
    gc.freeze()  # the backend and its libraries live as long as the process: keep them out of full GC passes
    with stop_on_signals() as stop:
        final = serve(
            args.raw, args.anon, backend, model_id, opts, anon_sockets, raw_socket_options=raw_sockets, stop=stop,
            duration_s=args.duration, until_end=args.until_end, wait_subscribers=args.wait_subscribers,
            wait_timeout_s=args.wait_timeout, report=lambda d: print_json_line("stats", d),
            ready=lambda ep: print(f"anonymizer: {backend.name} on {backend.device} ({model_id}, privacy "
                                   f"{backend.source.privacy or 'n/a: no dial'}), policy "
                                   f"{opts.policy.name}; raw/ from {', '.join(args.raw)}{link(raw_sockets)}, anon/ on {ep}"
                                   f"{link(anon_sockets)} "
                                   f"(stream ids: pseudonyms keyed by {ids.key_path})", flush=True),
            on_metrics=lambda url: print(f"anonymizer: statistics on {url}/metrics (Prometheus) and {url}/stats.json",
                                         flush=True),
        )  # fmt: skip
    print(f"anonymizer stopped: {final['published_frames']} of {final['frames_in']} frames published, "
          f"failed {final['failed']}", flush=True)  # fmt: skip
    return 0


def _worker_flags(p: argparse.ArgumentParser) -> None:
    from pmr_stream.anonymizer.options import add_service_arguments
    from pmr_stream.wire.privacy import add_stream_id_arguments

    add_backend_arguments(p)
    add_service_arguments(p)
    add_stream_id_arguments(p)
    p.add_argument("--duration", type=float, default=None)


def cmd_anonymizer_shards(args: argparse.Namespace) -> int:
    """``pmr anonymizer --workers N``: the supervisor of :mod:`pmr_stream.anonymizer.shards`."""
    from pathlib import Path

    from pmr_stream.anonymizer.options import ServiceOptions
    from pmr_stream.anonymizer.shards import ShardPlan, ShardSupervisor, WorkerFailed
    from pmr_stream.flags import forward_argv
    from pmr_stream.wire.privacy import stream_ids_from_args
    from pmr_stream.wire.sockets import stop_on_signals

    if args.shard:
        raise SystemExit("pmr anonymizer: --shard is set by --workers for its workers; give one of them")
    raw_sockets, anon_sockets = anonymizer_socket_options(args, args.raw)
    ids = stream_ids_from_args(args, create=True)  # made here once, so that every worker reads the same key
    ServiceOptions.from_args(args, stream_key=ids.key, public_stream_ids=ids.public)  # bad flags fail here
    argv = forward_argv(
        _worker_flags, args, skip=("stats_json", "metrics_port", "shard", "report", "stream_key", "workers")
    )
    if ids.key_path is not None:
        argv += ["--stream-key", str(ids.key_path)]
    plan = ShardPlan(
        workers=args.workers, raw=list(args.raw), anon=args.anon, raw_options=raw_sockets,
        anon_options=anon_sockets, worker_argv=argv, report_s=args.report,
        stats_json=Path(args.stats_json) if args.stats_json else None, metrics_port=args.metrics_port,
        until_end=args.until_end, wait_subscribers=args.wait_subscribers, wait_timeout_s=args.wait_timeout,
    )  # fmt: skip
    sup = ShardSupervisor(plan)
    with stop_on_signals() as stop:
        try:
            ep = sup.start(stop=stop)
            print(f"anonymizer: {args.workers} workers ({args.backend}, shards by stream id), raw/ from "
                  f"{', '.join(args.raw)}{link(raw_sockets)}, anon/ on {ep}{link(anon_sockets)} "
                  f"(stream ids: pseudonyms keyed by {ids.key_path})", flush=True)  # fmt: skip
            final = sup.run(stop, args.duration)
        except WorkerFailed as exc:
            sup.close()
            raise SystemExit(f"pmr anonymizer: error: {exc}") from None
        except BaseException:
            sup.close()
            raise
    print(f"anonymizer stopped: {final['published_frames']} of {final['frames_in']} frames published, "
          f"failed {final['failed']}, {final['workers']} workers, {final['restarts']} restarts", flush=True)  # fmt: skip
    return 0


def cmd_stream(args: argparse.Namespace) -> int:
    from pmr_stream.demo import run_pipeline

    return run_pipeline(args)


def register(sub: Any) -> None:
    """Add the service commands to the ``pmr`` subparsers."""
    from pmr_stream.anonymizer.options import add_service_arguments
    from pmr_stream.demo import add_stream_arguments
    from pmr_stream.wire.privacy import add_stream_id_arguments

    p = sub.add_parser("anonymizer", help="the streaming anonymizer service: raw/ in, anon/ out")
    p.add_argument(
        "--raw", action="append", required=True, help="producer endpoint to subscribe to (repeatable)"
    )
    p.add_argument("--anon", default="tcp://127.0.0.1:5556", help="endpoint to publish anon/ on (bound)")
    add_backend_arguments(p)
    add_service_arguments(p)
    add_stream_id_arguments(p)
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    p.add_argument("--until-end", action="store_true", help="stop when every stream seen has ended")
    p.add_argument(
        "--wait-subscribers", type=int, default=0, help="wait for this many anon/ subscribers first"
    )
    p.add_argument("--wait-timeout", type=float, default=60.0, help="longest wait for them, seconds")
    add_anonymizer_socket_arguments(p)
    p.set_defaults(func=cmd_anonymizer)

    p = sub.add_parser(
        "stream", help="producer -> anonymizer -> recorder on loopback, then a side-by-side video"
    )
    add_stream_arguments(p)
    p.set_defaults(func=cmd_stream)
