"""Socket options (:class:`SocketOptions`, CurveZMQ included) and their command-line flags.

:func:`add_socket_arguments` declares the flags of every one-socket command (``produce``,
``record``, ``probe``, ``view``) once; :func:`socket_options_from_args` reads them back. The
CURVE flags come from :func:`pmr_stream.wire.curve.add_curve_arguments`. Nothing here imports zmq.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from pmr_stream.wire.curve import (
    CurveOptions,
    add_curve_arguments,
    check_raw_endpoints,
    curve_from_args,
    insecure_from_args,
)
from pmr_stream.wire.schema import MAX_MESSAGE_BYTES

DEFAULT_HWM: Final[int] = 1000


@dataclass(frozen=True)
class SocketOptions:
    """Options of :class:`Publisher` and :class:`SubscriberSocket`.

    Attributes:
        hwm: messages queued per peer before ZeroMQ drops (``ZMQ_SNDHWM`` / ``ZMQ_RCVHWM``).
        max_message_bytes: ``ZMQ_MAXMSGSIZE`` of receiving sockets, and the largest payload
            the schema accepts.
        conflate: keep only the newest message (subscribers; viewers). Drops are then silent.
        linger_ms: how long closing waits to flush queued messages.
        reconnect_ivl_ms: reconnection interval of connecting sockets.
        curve: CurveZMQ settings, or ``None`` for clear text (loopback only!).
        insecure: let a socket that carries raw skeletons use a non-loopback address
            without CURVE (refused otherwise, :class:`~pmr_stream.wire.curve.InsecureEndpointError`). A warning is
            logged each time it is used.
        kernel_buffer_bytes: ``SO_SNDBUF`` / ``SO_RCVBUF`` of the socket's TCP connections
            (``ZMQ_SNDBUF`` / ``ZMQ_RCVBUF``); ``None`` leaves the OS's auto-tuning, which
            may hold megabytes for a peer that stopped reading. A small value makes such a
            peer reach ``hwm`` soon, so its messages are dropped (and counted as missing
            by the subscriber) instead of arriving seconds late.
    """

    hwm: int = DEFAULT_HWM
    max_message_bytes: int = MAX_MESSAGE_BYTES
    conflate: bool = False
    linger_ms: int = 500
    reconnect_ivl_ms: int = 100
    curve: CurveOptions | None = None
    kernel_buffer_bytes: int | None = None
    insecure: bool = False

    def __post_init__(self) -> None:
        if self.kernel_buffer_bytes is not None and self.kernel_buffer_bytes < 1024:
            raise ValueError(f"kernel_buffer_bytes must be >= 1024 (or None), got {self.kernel_buffer_bytes}")
        if self.hwm < 1:
            raise ValueError(f"hwm must be >= 1, got {self.hwm}")
        if not 1024 <= self.max_message_bytes <= (1 << 30):
            raise ValueError(f"max_message_bytes must be in [1 KiB, 1 GiB], got {self.max_message_bytes}")
        if self.linger_ms < 0 or self.reconnect_ivl_ms < 1:
            raise ValueError("linger_ms must be >= 0 and reconnect_ivl_ms >= 1")


def add_socket_arguments(p: argparse.ArgumentParser, *, publisher: bool, default_topic: str = "raw/") -> None:
    """The flags of a one-socket command (produce, record, probe, view): endpoint, HWM, sizes, CURVE.
    ``default_topic``: what a subscriber subscribes to without ``--topic`` (said in the help)."""
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
            help=f"topic prefix, repeatable (default {default_topic}): "
            + (
                "anon/, or anon/<stream> for one stream"
                if default_topic.startswith("anon/")
                else "raw/, anon/, or raw/<stream> for exactly one stream"
            ),  # fmt: skip
        )
    _add_transport_arguments(g)
    g.add_argument(
        "--max-message-bytes",
        type=int,
        default=MAX_MESSAGE_BYTES,
        help=f"largest message accepted (default {MAX_MESSAGE_BYTES >> 20} MiB)",
    )
    add_curve_arguments(
        p
    )  # --curve-secret, --curve-server-key, --curve-clients, --curve-allow-any, --insecure


def _add_transport_arguments(g: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    g.add_argument(
        "--hwm",
        type=int,
        default=DEFAULT_HWM,
        help=f"messages queued per peer before ZeroMQ drops (default {DEFAULT_HWM})",
    )
    g.add_argument(
        "--kernel-buffer",
        type=int,
        default=None,
        metavar="BYTES",
        help="TCP send/receive buffer per connection (default: the OS's auto-tuning); small values make "
        "a peer that stops reading lose messages (counted) instead of receiving them seconds late",
    )


def socket_options_from_args(args: argparse.Namespace, conflate: bool = False) -> SocketOptions:
    """The socket options of a one-socket command (produce, record, probe, view)."""
    bind = not args.connect if hasattr(args, "connect") else bool(args.bind)
    return SocketOptions(hwm=args.hwm, max_message_bytes=args.max_message_bytes, conflate=conflate,
                         curve=curve_from_args(args, bind=bind), insecure=insecure_from_args(args),
                         kernel_buffer_bytes=args.kernel_buffer)  # fmt: skip


def add_anonymizer_socket_arguments(p: argparse.ArgumentParser) -> None:
    """The anonymizer's two sockets: ``--hwm``, ``--kernel-buffer`` and CURVE for each side
    (``--raw-curve-*``: the raw/ subscriber, a client of the producers; ``--anon-curve-*``: the
    anon/ publisher, the server of the sinks)."""
    g = p.add_argument_group("sockets")
    _add_transport_arguments(g)
    add_curve_arguments(p, "raw-", role="client", what="the raw/ subscriber (a client of the producers)")
    add_curve_arguments(
        p, "anon-", role="server", what="the anon/ publisher (the server of the sinks)", raw=False
    )


def anonymizer_socket_options(
    args: argparse.Namespace, raw_endpoints: Sequence[str]
) -> tuple[SocketOptions, SocketOptions]:
    """``(raw_side, anon_side)`` from :func:`add_anonymizer_socket_arguments`'s flags. The raw side's
    non-loopback rule is checked here (before a backend loads): raw skeletons never leave a host
    in clear text unless ``--raw-insecure`` says so."""
    raw = SocketOptions(
        hwm=args.hwm,
        kernel_buffer_bytes=args.kernel_buffer,
        curve=curve_from_args(args, "raw-", bind=False),
        insecure=insecure_from_args(args, "raw-"),
    )
    anon = SocketOptions(
        hwm=args.hwm, kernel_buffer_bytes=args.kernel_buffer, curve=curve_from_args(args, "anon-", bind=True)
    )
    check_raw_endpoints(raw_endpoints, raw, bind=False, flag_prefix="raw-")
    return raw, anon


def link(options: SocketOptions) -> str:
    """`` (CurveZMQ)`` or `` (clear text)``: what a command's ready line says about a socket."""
    return " (CurveZMQ)" if options.curve is not None else " (clear text)"


__all__ = [
    "DEFAULT_HWM", "SocketOptions", "add_socket_arguments", "socket_options_from_args",
    "add_anonymizer_socket_arguments", "anonymizer_socket_options", "link",
]  # fmt: skip
