"""The ``pmr`` command: parses flags and calls the library.

Subcommands import what they need lazily, so ``pmr --help`` is instant and the
runtime does not need the training stack.

    pmr visualize --input S001C001P001R001A001.skeleton --output clip.mp4
    pmr compare --original a.npz --anonymized b.npz --output side_by_side.mp4
    pmr convert --input clip.skeleton --output clip.npz
    pmr make-dataset --output data/standin.npz
    pmr produce --source kinect:S001C001P001R001A001.skeleton --endpoint tcp://127.0.0.1:5555
    pmr record --endpoint tcp://127.0.0.1:5555 --topic raw/ --output out.npz
    pmr probe --endpoint tcp://127.0.0.1:5555
    pmr keys --output keys --name producer
    pmr export --format onnx --output engines/build/ --precision fp32
    pmr bench --backend onnxruntime torch --batch-sizes 1,8,64,256 --json out/bench.json
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points

from pmr_stream import __version__
from pmr_stream.cli import files, service, stream

log = logging.getLogger("pmr_stream.cli")

#: Entry-point group through which other packages add commands: each entry names a function
#: ``register(subparsers)``. Training, evaluation, export and the benchmarks plug in this way
#: (setup.cfg), so the library never imports them.
PLUGIN_GROUP = "pmr_stream.commands"


def _add_plugins(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    for ep in sorted(entry_points(group=PLUGIN_GROUP), key=lambda e: e.name):
        try:
            register: Callable[[object], None] = ep.load()
            register(sub)
        except Exception as exc:  # a broken plugin must not take the other commands with it
            log.warning("pmr: commands of %s not loaded (%s: %s)", ep.value, type(exc).__name__, exc)


def build_parser() -> argparse.ArgumentParser:
    """The ``pmr`` parser: the library's command groups, then the installed plugins' commands."""
    parser = argparse.ArgumentParser(
        prog="pmr", description="pmr-stream: anonymize skeleton motion with PMR."
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    parser.add_argument("--version", action="version", version=f"pmr-stream {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    files.register(sub)
    stream.register(sub)
    service.register(sub)
    _add_plugins(sub)
    return parser


#: only once their module is loaded, so the CLI imports nothing for them).
_ENVIRONMENT_ERRORS: tuple[tuple[str, str], ...] = (
    ("pmr_stream.backends.base", "BackendUnavailable"),
    ("pmr_stream.backends.artifacts.onnx_export", "ExportError"),
    ("pmr_stream.backends.artifacts.tensorrt_build", "EngineBuildError"),
    ("pmr_stream.backends.artifacts.tensorrt_build", "EngineMismatch"),
    ("pmr_stream.sinks.rerun", "RerunUnavailable"),
)


def _one_line(exc: BaseException) -> str | None:
    """The one-line message of an error caused by the input or the host, or None for a bug."""
    if isinstance(exc, KeyError):
        return str(exc.args[0]) if exc.args else "missing key"
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        # e.g. IsADirectoryError: "[Errno 21] Is a directory: 'x'" -> "x: Is a directory"
        return f"{exc.filename}: {exc.strerror}" + (f" -> {exc.filename2}" if exc.filename2 else "")
    if isinstance(exc, (ValueError, OSError)):
        return str(exc) or type(exc).__name__
    for module, name in _ENVIRONMENT_ERRORS:
        cls = getattr(sys.modules.get(module), name, None)
        if isinstance(cls, type) and isinstance(exc, cls):
            return str(exc)
    return None


def _device_problem(args: argparse.Namespace) -> str | None:
    """Why ``--device cuda[:N]`` cannot work on this host (before any command starts), or None."""
    device = getattr(args, "device", None)
    if not isinstance(device, str) or not device.startswith("cuda"):
        return None
    import torch

    if not torch.cuda.is_available():
        build = "a CPU-only build" if torch.version.cuda is None else f"built for CUDA {torch.version.cuda}"
        return f"--device {device}: torch {torch.__version__} sees no CUDA device ({build})"
    index = device.partition(":")[2]
    if index.isdigit() and int(index) >= torch.cuda.device_count():
        return f"--device {device}: torch sees {torch.cuda.device_count()} CUDA device(s) (cuda:0..)"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``pmr`` command. Bad input or a host that cannot do what was asked (a file
    missing or a directory, a port in use, no CUDA, a backend not installed) ends with one
    line ``pmr COMMAND: error: ...`` on stderr and exit status 2, no traceback (``-vv``
    logs the traceback too)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    from pmr_stream.wire.sockets import restore_ctrl_c

    restore_ctrl_c()
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        problem = _device_problem(args)
        if problem is not None:
            raise ValueError(problem)
        return func(args)
    except Exception as exc:
        msg = _one_line(exc)
        if msg is None:
            raise  # a bug: the traceback is what is needed
        log.debug("pmr %s failed", args.command, exc_info=True)
        print(f"pmr {args.command}: error: {msg}", file=sys.stderr, flush=True)
        return 2


__all__ = ["main", "build_parser"]
