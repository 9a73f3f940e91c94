"""Flags and output helpers shared by the ``pmr`` command groups."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the socket and drawing stacks are imported lazily by the commands that need them
    from pmr_stream.render import RenderOptions
    from pmr_stream.wire.sockets import SocketOptions

#: The recording formats a file command reads and writes (pmr_stream.formats.io).
FORMAT_CHOICES = ("skeleton", "npz", "sgn", "stgcn")


def add_render_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("rendering")
    g.add_argument("--width", type=int, default=640, help="frame width in pixels (default 640)")
    g.add_argument("--height", type=int, default=480, help="frame height in pixels (default 480)")
    g.add_argument("--azimuth", type=float, default=0.0, help="view turned about the vertical axis, degrees")
    g.add_argument("--elevation", type=float, default=10.0, help="view elevation, degrees (default 10)")
    g.add_argument(
        "--fps", type=float, default=None, help="output frame rate (default: the recording's, else 30)"
    )
    g.add_argument("--show-confidence", action="store_true", help="draw joints by their confidence")


def render_options(args: argparse.Namespace, title: str | None = None) -> RenderOptions:
    from pmr_stream.render import RenderOptions

    return RenderOptions(
        width=args.width,
        height=args.height,
        azimuth_deg=args.azimuth,
        elevation_deg=args.elevation,
        show_confidence=args.show_confidence,
        title=title,
    )


def add_socket_flags(p: argparse.ArgumentParser, *, publisher: bool) -> None:
    from pmr_stream.wire.curve import add_curve_arguments

    g = p.add_argument_group("socket")
    if publisher:
        g.add_argument(
            "--endpoint",
            default="tcp://127.0.0.1:5555",
            help="ZeroMQ endpoint to publish on (default tcp://127.0.0.1:5555; port * picks a free one)",
        )
        g.add_argument("--connect", action="store_true", help="connect to the endpoint instead of binding it")
    else:
        g.add_argument(
            "--endpoint",
            action="append",
            required=True,
            help="publisher endpoint to subscribe to (repeat for several)",
        )
        g.add_argument("--bind", action="store_true", help="bind the endpoint instead of connecting to it")
        g.add_argument(
            "--topic",
            action="append",
            default=None,
            help="topic prefix: raw/ (default), anon/, raw/<stream> for exactly one stream",
        )
    g.add_argument(
        "--hwm", type=int, default=1000, help="messages queued per peer before ZeroMQ drops (default 1000)"
    )
    g.add_argument(
        "--max-message-bytes", type=int, default=1 << 20, help="largest message accepted (default 1 MiB)"
    )
    g.add_argument(
        "--kernel-buffer",
        type=int,
        default=None,
        metavar="BYTES",
        help="TCP send/receive buffer per connection (default: the OS's auto-tuning); small values make "
        "a peer that stops reading lose messages (counted) instead of receiving them seconds late",
    )
    add_curve_arguments(
        p
    )  # --curve-secret, --curve-server-key, --curve-clients, --curve-allow-any, --insecure


def socket_options(args: argparse.Namespace, conflate: bool = False) -> SocketOptions:
    """The socket options of a one-socket command (produce, record, probe, view)."""
    from pmr_stream.wire.curve import curve_from_args, insecure_from_args
    from pmr_stream.wire.sockets import SocketOptions

    bind = not args.connect if hasattr(args, "connect") else bool(args.bind)
    return SocketOptions(hwm=args.hwm, max_message_bytes=args.max_message_bytes, conflate=conflate,
                         curve=curve_from_args(args, bind=bind), insecure=insecure_from_args(args),
                         kernel_buffer_bytes=args.kernel_buffer)  # fmt: skip


def link(options: SocketOptions) -> str:
    """`` (CurveZMQ)`` or `` (clear text)``: what a command's ready line says about a socket."""
    return " (CurveZMQ)" if options.curve is not None else " (clear text)"


def print_json_line(prefix: str, d: dict[str, Any]) -> None:
    print(f"{prefix} {json.dumps(d, default=str)}", flush=True)
