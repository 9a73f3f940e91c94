"""``pmr anonymize`` over a dataset: folders, globs or several files into an output folder that
mirrors the input tree (the handler; the parser is ``pmr anonymize``'s, in :mod:`pmr_stream.cli.files`)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from pmr_stream.dataset.names import NAME_POLICIES


def add_dataset_arguments(p: argparse.ArgumentParser) -> None:
    """The flags only a dataset run uses (``--names``, ``--keep-dir-names``, ``--stream-key``,
    ``--workers``, ``--batch-size``, ``--quiet``)."""
    from pmr_stream.wire.privacy import KEY_ENV

    g = p.add_argument_group("datasets (several inputs, a folder or a glob; --output is then a folder)")
    g.add_argument("--names", choices=NAME_POLICIES, default="pseudonym",
                   help="pseudonym (default): NTU names keep setup, camera, replication and action, the "
                   "performer becomes a keyed token (p + 8 hex); other names a keyed token (f + 16 hex); "
                   "keep: copy names unchanged (and name the inputs in the manifest)")  # fmt: skip
    g.add_argument("--keep-dir-names", action="store_true",
                   help="copy folder names unchanged (default: a keyed token each, d + 10 hex): say so "
                   "only when no folder is named for a person")  # fmt: skip
    g.add_argument("--stream-key", default=None, metavar="FILE",
                   help=f"the deployment key the name tokens are made with (the stream pseudonyms' key; "
                   f"default ${KEY_ENV}, else ~/.config/pmr-stream/stream_key, created mode 0600 when missing)")  # fmt: skip
    g.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1),
                   help="processes that read and write files (default 2, 1 on a 1-core host; 1: all in this "
                   "process); the engine runs in this one, on windows batched across files")  # fmt: skip
    g.add_argument("--batch-size", type=int, default=256, help="windows per engine call (default 256)")
    g.add_argument("--quiet", action="store_true", help="no progress bar")


def cmd_anonymize_dataset(args: argparse.Namespace) -> int:
    """Anonymize every file ``--input`` names into the folder ``--output``; exit 1 if any failed."""
    from pmr_stream.dataset.inputs import find_inputs
    from pmr_stream.dataset.names import NameOptions
    from pmr_stream.dataset.run import DatasetOptions, Engine, plan_jobs, run_dataset
    from pmr_stream.offline import AnonymizeOptions

    out = Path(args.output)
    if out.exists() and not out.is_dir():
        raise ValueError(f"output {out}: is a file; a dataset run writes into a folder")
    AnonymizeOptions(mode=args.mode, stride=args.stride)  # a bad --mode or --stride fails before any work
    for item in args.input:
        if os.path.isdir(item) and os.path.realpath(item) == os.path.realpath(out):
            raise ValueError(f"output {out}: is the input folder {item}; write into another folder")
    inputs = find_inputs(args.input, exclude=out)
    key = b""
    if args.names == "pseudonym":
        from pmr_stream.wire.privacy import load_stream_key

        key = load_stream_key(args.stream_key)
    names = NameOptions(policy=args.names, key=key, keep_dirs=args.keep_dir_names)
    base = DatasetOptions(output=str(out), names=names, input_format=args.format,
                          output_format=args.output_format, overwrite=args.overwrite, workers=args.workers,
                          batch_size=args.batch_size, progress=not args.quiet)  # fmt: skip
    jobs = plan_jobs(inputs, base)  # names checked distinct before anything is written
    settings: dict[str, Any] = {"names": args.names, "keep_dir_names": bool(args.keep_dir_names),
                                "mode": args.mode, "bones": args.bones}  # fmt: skip

    def engine() -> Engine:
        from dataclasses import replace

        from pmr_stream.offline import default_window_fn

        # engine threads sleep between calls (spin=False): the reading and writing get the cores
        # meanwhile (measured: less CPU and faster, with and without --workers, on 2 cores)
        backend, model_id = default_window_fn(args.model_path, args.dummy, device=args.device, privacy=args.privacy,
                                              backend=args.backend or "auto", spin=False)  # fmt: skip
        opts = AnonymizeOptions(mode=args.mode, stride=args.stride, bones=args.bones)
        opts = replace(opts, bone_lengths=opts.lengths_for(backend))  # the dummy's (None: --bones model)
        return Engine(backend.anonymize, model_id, opts,
                      {"model_id": model_id, "backend": backend.name, "privacy": backend.source.privacy})  # fmt: skip

    try:
        report = run_dataset(jobs, base, engine, settings)
    except KeyboardInterrupt:
        print(f"pmr anonymize: interrupted; what was finished is in {out} (and its manifest.json): run the "
              "same command again to do the rest", file=sys.stderr)  # fmt: skip
        return 130
    done = sum(e.status == "done" for e in report.entries)
    skipped = sum(e.status == "skipped" for e in report.entries)
    rate = report.frames / report.seconds if report.seconds > 0 else 0.0
    print(f"anonymized {done} file(s), {report.frames} frames into {out} in {report.seconds:.1f} s "
          f"({rate:.0f} frames/s); {skipped} skipped (done before), {report.failed} failed; "
          f"manifest {report.manifest}")  # fmt: skip
    for line in report.failures:
        print(line, file=sys.stderr)
    return 1 if report.failed else 0


__all__ = ["add_dataset_arguments", "cmd_anonymize_dataset"]
