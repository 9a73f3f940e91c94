"""ZeroMQ sockets for the wire: publishers, subscribers, CurveZMQ keys, Ctrl-C handling.

* :class:`Publisher` is an ``XPUB`` socket (a ``PUB`` that also sees subscriptions, so
  a producer can announce its streams the moment somebody subscribes, and can wait
  for its first subscriber). It binds by default.
* :class:`SubscriberSocket` is a ``SUB`` socket that connects by default, with a
  socket monitor so that dropped connections are counted.
* :class:`SocketOptions` sets the high-water mark (messages queued per peer before
  ZeroMQ drops, default 1000 = 33 s of one 30 fps stream), ``ZMQ_MAXMSGSIZE``
  (larger messages are refused by ZeroMQ before they are allocated; it drops the
  connection, counts as a disconnect, and reconnects), optional ``ZMQ_CONFLATE``
  (a viewer that wants only the newest frame) and optional CurveZMQ.
* CurveZMQ: the binding side is the CURVE server, the connecting side the client.
  Keys live in files written by :func:`generate_keypair` (``NAME.key`` public,
  ``NAME.key_secret`` secret, mode 0600; the ZeroMQ certificate format). A server
  admits only clients whose public ``.key`` files lie in ``authorized_keys_dir``.

zmq is imported inside the functions, so importing this module does not need pyzmq.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Self

from pmr_stream.wire.schema import MAX_MESSAGE_BYTES, Message, pack, subscription

log = logging.getLogger(__name__)

#: Default messages queued per peer (send and receive side).
DEFAULT_HWM: Final[int] = 1000
_Z85_KEY: Final[re.Pattern[bytes]] = re.compile(rb"[0-9a-zA-Z.\-:+=^!/*?&<>()\[\]{}@%$#]{40}")


# ----------------------------------------------------------------------------- keys


def generate_keypair(directory: str | os.PathLike[str], name: str) -> tuple[Path, Path]:
    """Write a new CurveZMQ key pair: ``directory/NAME.key`` and ``directory/NAME.key_secret``.

    The public file may be handed to peers (a server's to its clients, a client's into
    the server's authorized-keys directory); the secret file is created with mode 0600.
    Existing files are never overwritten (``FileExistsError``).

    Returns:
        ``(public_path, secret_path)``.
    """
    import zmq

    if not re.fullmatch(r"[A-Za-z0-9_.\-]{1,64}", name) or name.startswith("."):
        raise ValueError(f"key name {name!r} must be 1-64 characters of [A-Za-z0-9_.-]")
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    public, secret = zmq.curve_keypair()
    pub_path, sec_path = d / f"{name}.key", d / f"{name}.key_secret"
    for p in (pub_path, sec_path):
        if p.exists():
            raise FileExistsError(f"{p} exists; remove it or choose another key name")
    banner = "#   ZeroMQ CURVE {} certificate, written by pmr-stream (pmr keys)\n"
    body = 'metadata\ncurve\n    public-key = "{}"\n'.format(public.decode("ascii"))
    with open(pub_path, "x", encoding="ascii") as fh:
        fh.write(banner.format("Public") + body)
    fd = os.open(sec_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(banner.format("**Secret**") + "#   Do not give this file to anybody.\n")
        fh.write(body + '    secret-key = "{}"\n'.format(secret.decode("ascii")))
    log.info("wrote CURVE key pair %s, %s", pub_path, sec_path)
    return pub_path, sec_path


def load_key_file(path: str | os.PathLike[str], *, secret: bool = False) -> tuple[bytes, bytes | None]:
    """Read a key file written by :func:`generate_keypair` (or by pyzmq / zauth).

    Returns ``(public_key, secret_key or None)``, Z85 bytes. With ``secret=True`` the
    file must hold the secret key. Raises ``FileNotFoundError`` / ``ValueError`` naming
    the file and what is wrong.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"CURVE key file not found: {p}")
    keys: dict[bytes, bytes] = {}
    with open(p, "rb") as fh:
        for n, raw in enumerate(fh, 1):
            line = raw.strip()
            if line.startswith(b"#") or b"=" not in line:
                continue
            k, _, v = line.partition(b"=")
            k, v = k.strip(), v.strip().strip(b"'\"")
            if k in (b"public-key", b"secret-key"):
                if not _Z85_KEY.fullmatch(v):
                    raise ValueError(f"{p}:{n}: {k.decode()} is not a 40-character Z85 CURVE key")
                keys[k] = v
    if b"public-key" not in keys:
        raise ValueError(f"{p}: no public-key found (not a CURVE key file)")
    if secret and b"secret-key" not in keys:
        raise ValueError(f"{p}: no secret-key found; pass the .key_secret file, not the public .key")
    return keys[b"public-key"], keys.get(b"secret-key")


@dataclass(frozen=True)
class CurveOptions:
    """CurveZMQ encryption and authentication.

    Attributes:
        secret_key_file: this socket's own ``.key_secret`` file.
        server_key_file: the server's public ``.key`` (needed on the connecting side).
        authorized_keys_dir: folder of the public ``.key`` files of clients a server
            admits (needed on the binding side, unless ``allow_any_client``).
        allow_any_client: a server encrypts but admits any client key (no authentication).
    """

    secret_key_file: Path
    server_key_file: Path | None = None
    authorized_keys_dir: Path | None = None
    allow_any_client: bool = False


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

    def __post_init__(self) -> None:
        if self.kernel_buffer_bytes is not None and self.kernel_buffer_bytes < 1024:
            raise ValueError(f"kernel_buffer_bytes must be >= 1024 (or None), got {self.kernel_buffer_bytes}")
        if self.hwm < 1:
            raise ValueError(f"hwm must be >= 1, got {self.hwm}")
        if not 1024 <= self.max_message_bytes <= (1 << 30):
            raise ValueError(f"max_message_bytes must be in [1 KiB, 1 GiB], got {self.max_message_bytes}")
        if self.linger_ms < 0 or self.reconnect_ivl_ms < 1:
            raise ValueError("linger_ms must be >= 0 and reconnect_ivl_ms >= 1")


class _WireSocket:
    """A socket in a context of its own (so a CURVE authenticator belongs to one socket)."""

    def __init__(
        self, socket_type: int, endpoints: Sequence[str] | str, options: SocketOptions, bind: bool
    ) -> None:
        import zmq

        self.options = options
        self.bind = bind
        self._ctx = zmq.Context()
        self._auth: Any = None
        self.socket: Any = self._ctx.socket(socket_type)
        self.socket.setsockopt(zmq.LINGER, options.linger_ms)
        self.socket.setsockopt(zmq.RECONNECT_IVL, options.reconnect_ivl_ms)
        self.socket.setsockopt(zmq.MAXMSGSIZE, options.max_message_bytes + 128)  # + topic
        if options.kernel_buffer_bytes is not None:
            self.socket.setsockopt(zmq.SNDBUF, options.kernel_buffer_bytes)
            self.socket.setsockopt(zmq.RCVBUF, options.kernel_buffer_bytes)
        self.endpoints: list[str] = []
        self._closed = False
        try:
            self._configure(zmq)
            if options.curve is not None:
                self._setup_curve(zmq, options.curve)
            for ep in [endpoints] if isinstance(endpoints, str) else list(endpoints):
                if bind:
                    self.socket.bind(ep)
                    self.endpoints.append(self.socket.getsockopt_string(zmq.LAST_ENDPOINT))
                else:
                    self.socket.connect(ep)
                    self.endpoints.append(ep)
        except zmq.ZMQError as exc:
            self.close(linger_ms=0)
            raise ValueError(f"cannot {'bind' if bind else 'connect'} {endpoints}: {exc}") from None
        except BaseException:
            self.close(linger_ms=0)
            raise

    def _configure(self, zmq: Any) -> None:  # pragma: no cover - overridden
        pass

    def _setup_curve(self, zmq: Any, curve: CurveOptions) -> None:
        if not zmq.has("curve"):  # pragma: no cover - depends on libzmq build
            raise RuntimeError("this libzmq was built without CURVE support")
        public, secret = load_key_file(curve.secret_key_file, secret=True)
        self.socket.curve_secretkey = secret
        self.socket.curve_publickey = public
        if self.bind:  # server
            from zmq.auth.thread import ThreadAuthenticator

            if curve.authorized_keys_dir is None and not curve.allow_any_client:
                raise ValueError(
                    "a CURVE server needs authorized_keys_dir (clients' public .key files) "
                    "or allow_any_client=True"
                )
            self._auth = ThreadAuthenticator(self._ctx, log=logging.getLogger(__name__ + ".zap"))
            self._auth.start()
            if curve.authorized_keys_dir is not None:
                kd = Path(curve.authorized_keys_dir)
                if not kd.is_dir():
                    raise FileNotFoundError(f"authorized keys folder not found: {kd}")
                n = len(list(kd.glob("*.key")))
                if n == 0 and not curve.allow_any_client:
                    raise ValueError(f"authorized keys folder {kd} holds no public .key files")
                for k in kd.glob("*.key"):
                    load_key_file(k)  # a clear error for a broken file, not a silent skip
                self._auth.configure_curve(domain="*", location=str(kd))
            else:
                self._auth.configure_curve(domain="*", location=zmq.auth.CURVE_ALLOW_ANY)
            self.socket.curve_server = True
        else:  # client
            if curve.server_key_file is None:
                raise ValueError("a CURVE client needs server_key_file (the server's public .key)")
            server_public, _ = load_key_file(curve.server_key_file)
            self.socket.curve_serverkey = server_public

    def close(self, linger_ms: int | None = None) -> None:
        """Close the socket (waiting up to ``linger_ms`` to flush) and its context."""
        if self._closed:
            return
        self._closed = True
        self._close_extra()
        self.socket.close(linger=self.options.linger_ms if linger_ms is None else linger_ms)
        if self._auth is not None:
            self._auth.stop()
        self._ctx.term()

    def _close_extra(self) -> None:
        pass

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def endpoint(self) -> str:
        """The first endpoint (for ``tcp://...:*`` the port actually bound)."""
        return self.endpoints[0]


class Publisher(_WireSocket):
    """An ``XPUB`` socket that publishes wire messages.

    ``send`` never blocks: past the high-water mark ZeroMQ drops messages for that
    subscriber (PUB semantics). Subscriptions arriving are collected by
    :meth:`poll_subscriptions`.
    """

    def __init__(
        self, endpoints: Sequence[str] | str, options: SocketOptions | None = None, *, bind: bool = True
    ) -> None:
        import zmq

        super().__init__(zmq.XPUB, endpoints, options or SocketOptions(), bind)
        self.subscribers = 0  # subscribe messages seen (XPUB_VERBOSE: one per subscriber and topic)
        self.sent = 0
        self.sent_bytes = 0

    def _configure(self, zmq: Any) -> None:
        self.socket.setsockopt(zmq.SNDHWM, self.options.hwm)
        self.socket.setsockopt(zmq.XPUB_VERBOSE, 1)

    def send(self, msg: Message) -> int:
        """Publish ``msg`` on its topic; returns the bytes sent."""
        return self.send_raw(pack(msg, self.options.max_message_bytes))

    def send_raw(self, data: bytes) -> int:
        """Publish an already packed frame (``topic \\0 payload``) as it is."""
        self.socket.send(data, copy=len(data) < 65536)
        self.sent += 1
        self.sent_bytes += len(data)
        return len(data)

    def poll_subscriptions(self, timeout_ms: int = 0) -> list[bytes]:
        """Topics newly subscribed to since the last call (unsubscriptions are skipped)."""
        import zmq

        out: list[bytes] = []
        if timeout_ms > 0 and not self.socket.poll(timeout_ms, zmq.POLLIN):
            return out
        while True:
            try:
                data = self.socket.recv(zmq.NOBLOCK)
            except zmq.Again:
                return out
            if data[:1] == b"\x01":
                self.subscribers += 1
                out.append(data[1:])
                log.debug("subscription to %r on %s", data[1:], self.endpoints)

    def wait_for_subscribers(
        self, n: int = 1, timeout_s: float = 10.0, stop: threading.Event | None = None
    ) -> bool:
        """Block until ``n`` subscriptions arrived (or ``timeout_s``/``stop``); ``True`` if they did."""
        deadline = time.monotonic() + timeout_s
        while self.subscribers < n:
            left = deadline - time.monotonic()
            if left <= 0 or (stop is not None and stop.is_set()):
                return False
            self.poll_subscriptions(timeout_ms=max(1, min(100, int(left * 1000))))
        return True


#: Monitor events counted by :class:`SubscriberSocket` (name -> zmq attribute).
_EVENTS: Final[tuple[str, ...]] = (
    "EVENT_CONNECTED", "EVENT_DISCONNECTED", "EVENT_CONNECT_RETRIED", "EVENT_HANDSHAKE_SUCCEEDED",
    "EVENT_HANDSHAKE_FAILED_NO_DETAIL", "EVENT_HANDSHAKE_FAILED_PROTOCOL", "EVENT_HANDSHAKE_FAILED_AUTH",
)  # fmt: skip


@dataclass
class TransportCounters:
    """What the socket monitor saw.

    ``cut``: connections ZeroMQ closed itself because a peer broke the protocol, in
    practice a message over ``max_message_bytes`` (refused before it was allocated).
    ZeroMQ does not reconnect after that; :class:`SubscriberSocket` does, so one bad
    message costs the messages in flight, not the publisher.
    """

    connects: int = 0
    disconnects: int = 0
    cut: int = 0
    reconnects: int = 0
    handshakes: int = 0
    handshake_failures: int = 0
    last_event: str = ""
    by_event: dict[str, int] = field(default_factory=dict)


class SubscriberSocket(_WireSocket):
    """A ``SUB`` socket subscribed to topic prefixes (see :func:`~pmr_stream.wire.schema.subscription`)."""

    def __init__(
        self,
        endpoints: Sequence[str] | str,
        topics: Sequence[str] = ("raw/",),
        options: SocketOptions | None = None,
        *,
        bind: bool = False,
    ) -> None:
        import zmq

        self._topics = list(topics)
        self._monitor: Any = None
        self.transport = TransportCounters()
        self._cut_pending: dict[str, float] = {}  # endpoint -> when to call it cut
        self._next_event_check = 0.0
        #: called with the endpoint when a connection was cut (see :class:`TransportCounters`)
        self.on_cut: Callable[[str], None] | None = None
        super().__init__(zmq.SUB, endpoints, options or SocketOptions(), bind)
        self._poller = zmq.Poller()
        self._poller.register(self.socket, zmq.POLLIN)
        if self._monitor is not None:
            self._poller.register(self._monitor, zmq.POLLIN)
        self._event_names = {getattr(zmq, e): e[6:].lower() for e in _EVENTS if hasattr(zmq, e)}

    def _configure(self, zmq: Any) -> None:
        if self.options.conflate:
            self.socket.setsockopt(zmq.CONFLATE, 1)
        else:
            self.socket.setsockopt(zmq.RCVHWM, self.options.hwm)
        for t in self._topics:
            self.socket.setsockopt(zmq.SUBSCRIBE, subscription(t))
        mask = 0
        for e in _EVENTS:
            mask |= getattr(zmq, e, 0)
        self._monitor = self.socket.get_monitor_socket(mask)

    def _drain_events(self) -> None:
        import zmq
        from zmq.utils.monitor import recv_monitor_message

        while self._monitor is not None:
            try:
                ev = recv_monitor_message(self._monitor, zmq.NOBLOCK)
            except zmq.Again:
                return
            name = self._event_names.get(ev["event"], str(ev["event"]))
            endpoint = ev.get("endpoint", b"").decode(errors="replace")
            t = self.transport
            t.by_event[name] = t.by_event.get(name, 0) + 1
            t.last_event = name
            if name == "connected":
                t.connects += 1
            elif name == "disconnected":
                t.disconnects += 1
                log.info("connection %s lost", endpoint)
                if not self.bind:
                    # A peer that closed is retried at once (CONNECT_RETRIED follows); a cut is not.
                    self._cut_pending[endpoint] = time.monotonic() + max(
                        0.25, 3 * self.options.reconnect_ivl_ms / 1000
                    )
            elif name == "connect_retried":
                self._cut_pending.pop(endpoint, None)
            elif name == "handshake_succeeded":
                t.handshakes += 1
            elif name.startswith("handshake_failed"):
                t.handshake_failures += 1
                log.warning("handshake with %s failed (%s)", endpoint, name)
        self._revive()

    def _revive(self) -> None:
        """Reconnect endpoints whose connection ZeroMQ cut without retrying."""
        if not self._cut_pending:
            return
        import zmq

        now = time.monotonic()
        for ep, due in list(self._cut_pending.items()):
            if now < due:
                continue
            del self._cut_pending[ep]
            self.transport.cut += 1
            log.warning(
                "ZeroMQ cut the connection to %s (a message over %d bytes, or a protocol error); reconnecting",
                ep, self.options.max_message_bytes,
            )  # fmt: skip
            if self.on_cut is not None:
                self.on_cut(ep)
            if ep in self.endpoints:
                with contextlib.suppress(zmq.ZMQError):
                    self.socket.disconnect(ep)
                self.socket.connect(ep)
                self.transport.reconnects += 1

    def recv(self, timeout_ms: int = 100) -> bytes | None:
        """The next frame, or ``None`` after ``timeout_ms`` (``0``: do not wait)."""
        import zmq

        now = time.monotonic()
        if now >= self._next_event_check:  # also while messages keep coming without a pause
            self._next_event_check = now + 0.05
            self._drain_events()
        try:
            data: bytes = self.socket.recv(zmq.NOBLOCK)
            return data
        except zmq.Again:
            pass
        deadline = time.monotonic() + timeout_ms / 1000.0
        while True:
            left = max(0, int((deadline - time.monotonic()) * 1000))
            ready = dict(self._poller.poll(left))
            if self._monitor is not None and self._monitor in ready:
                self._drain_events()
            else:
                self._revive()
            if self.socket in ready:
                try:
                    data = self.socket.recv(zmq.NOBLOCK)
                    return data
                except zmq.Again:  # pragma: no cover - raced
                    pass
            if left <= 0:
                return None

    def events(self) -> TransportCounters:
        """Process pending monitor events and return the counters."""
        self._drain_events()
        return self.transport

    def _close_extra(self) -> None:
        if self._monitor is not None:
            with contextlib.suppress(Exception):
                self.socket.disable_monitor()
            self._monitor.close(linger=0)
            self._monitor = None


# ----------------------------------------------------------------------------- Ctrl-C


@contextlib.contextmanager
def stop_on_signals(signals: Sequence[int] = (signal.SIGINT, signal.SIGTERM)) -> Iterator[threading.Event]:
    """Turn Ctrl-C (and SIGTERM) into a ``threading.Event`` instead of ``KeyboardInterrupt``.

    Loops check the event between messages, so they stop at a clean point, finish what
    they hold and close their sockets. Outside the main thread no handler can be
    installed; the event is still returned (set it yourself). A second Ctrl-C while
    stopping raises ``KeyboardInterrupt`` as usual.
    """
    stop = threading.Event()
    previous: dict[int, Any] = {}

    def handler(signum: int, frame: object) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        log.info("signal %d: stopping", signum)
        stop.set()

    if threading.current_thread() is threading.main_thread():
        for s in signals:
            previous[s] = signal.signal(s, handler)
    try:
        yield stop
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


__all__ = [
    "DEFAULT_HWM", "generate_keypair", "load_key_file", "CurveOptions", "SocketOptions",
    "Publisher", "SubscriberSocket", "TransportCounters", "stop_on_signals",
]  # fmt: skip
