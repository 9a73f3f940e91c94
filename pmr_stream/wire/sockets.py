"""ZeroMQ sockets for the wire: publishers, subscribers, Ctrl-C handling.

* :class:`Publisher` is an ``XPUB`` socket (a ``PUB`` that also sees subscriptions, so
  a producer can announce its streams the moment somebody subscribes, and can wait
  for its first subscriber). It binds by default.
* :class:`SubscriberSocket` is a ``SUB`` socket that connects by default, with a
  socket monitor so that dropped connections are counted.
* :class:`SocketOptions` sets the high-water mark (messages queued per peer before
  ZeroMQ drops, default 1000 = 33 s of one 30 fps stream), ``ZMQ_MAXMSGSIZE``
  (larger messages are refused by ZeroMQ before they are allocated; it drops the
  connection, counts as a disconnect, and reconnects), optional ``ZMQ_CONFLATE``
  (a viewer that wants only the newest frame) and optional CurveZMQ
  (:class:`~pmr_stream.wire.curve.CurveOptions`: keys, flags and the raw-skeleton rule live
  in :mod:`pmr_stream.wire.curve`). The binding side is the CURVE server, the connecting
  side the client.
* Raw skeletons identify people: a socket that carries them (a :class:`Publisher`
  unless ``carries_raw=False``; a subscriber whose topics include ``raw/``) refuses to
  bind or connect to a non-loopback address without CURVE, unless
  ``SocketOptions(insecure=True)`` (``--insecure``); see
  :func:`~pmr_stream.wire.curve.check_raw_endpoints`.
* A failed CURVE handshake (no CURVE on one side, a wrong server key, a client key the
  server does not admit) is counted and logged as such, from the socket monitor's
  ``HANDSHAKE_FAILED_*`` events; it is not taken for a cut connection.

zmq is imported inside the functions, so importing this module does not need pyzmq.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Self

from pmr_stream.wire.curve import check_raw_endpoints, handshake_detail, setup_curve
from pmr_stream.wire.options import SocketOptions
from pmr_stream.wire.schema import RAW, Message, pack, subscription

log = logging.getLogger(__name__)

#: Default messages queued per peer (send and receive side).
#: Monitor events counted by :class:`SubscriberSocket` (name -> zmq attribute).
_EVENTS: Final[tuple[str, ...]] = (
    "EVENT_CONNECTED", "EVENT_DISCONNECTED", "EVENT_CONNECT_RETRIED", "EVENT_HANDSHAKE_SUCCEEDED",
    "EVENT_HANDSHAKE_FAILED_NO_DETAIL", "EVENT_HANDSHAKE_FAILED_PROTOCOL", "EVENT_HANDSHAKE_FAILED_AUTH",
)  # fmt: skip
#: Handshake events, also watched by a CURVE :class:`Publisher`.
_HANDSHAKE_EVENTS: Final[tuple[str, ...]] = (
    "EVENT_HANDSHAKE_SUCCEEDED", "EVENT_HANDSHAKE_FAILED_NO_DETAIL", "EVENT_HANDSHAKE_FAILED_PROTOCOL",
    "EVENT_HANDSHAKE_FAILED_AUTH",
)  # fmt: skip
#: After a failed handshake a connecting socket waits this long before it tries again,
#: doubling up to the second value, seconds (a wrong key does not fix itself 10 times a second).
HANDSHAKE_RETRY_S: Final[tuple[float, float]] = (0.5, 10.0)


def _event_names(zmq: Any, events: Sequence[str]) -> dict[int, str]:
    return {getattr(zmq, e): e[6:].lower() for e in events if hasattr(zmq, e)}


def _subscribes_raw(topic: str) -> bool:
    """Whether a subscription to ``topic`` receives raw skeletons (``raw/...``, ``""``, ``"r"``, ...)."""
    sub, raw = subscription(topic), f"{RAW}/".encode()
    return raw.startswith(sub) or sub.startswith(raw)


@dataclass
class TransportCounters:
    """What the socket monitor saw.

    ``cut``: connections ZeroMQ closed itself because a peer broke the protocol, in
    practice a message over ``max_message_bytes`` (refused before it was allocated).
    ZeroMQ does not reconnect after that; :class:`SubscriberSocket` does, so one bad
    message costs the messages in flight, not the publisher.
    ``handshake_failures``: failed (CURVE) handshakes: one side without CURVE, a wrong
    server key, a client key the server does not admit. They are not cuts; a connecting
    socket retries after :data:`HANDSHAKE_RETRY_S`.
    """

    connects: int = 0
    disconnects: int = 0
    cut: int = 0
    reconnects: int = 0
    handshakes: int = 0
    handshake_failures: int = 0
    last_event: str = ""
    by_event: dict[str, int] = field(default_factory=dict)


class _WireSocket:
    """A socket in a context of its own (so a CURVE authenticator belongs to one socket)."""

    def __init__(
        self,
        socket_type: int,
        endpoints: Sequence[str] | str,
        options: SocketOptions,
        bind: bool,
        carries_raw: bool,
    ) -> None:
        import zmq

        eps = [endpoints] if isinstance(endpoints, str) else list(endpoints)
        self.options = options
        self.bind = bind
        #: raw skeletons pass this socket (the non-loopback rule of :func:`~pmr_stream.wire.curve.check_raw_endpoints` applies)
        self.carries_raw = carries_raw
        if carries_raw:
            check_raw_endpoints(eps, options, bind=bind)
        self.transport = TransportCounters()
        #: called with ``(endpoint, why)`` after each failed handshake (a CURVE Publisher: from its monitor thread)
        self.on_handshake_failed: Callable[[str, str], None] | None = None
        #: the last failed handshake, as logged
        self.last_handshake_error = ""
        self._handshake_failed_at: dict[str, int] = {}  # endpoint -> failed handshakes
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
                self._auth = setup_curve(self.socket, self._ctx, options.curve, bind=bind)
            for ep in eps:
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

    def _handshake_event(self, name: str, endpoint: str, value: int) -> bool:
        """Count (and log) a ``handshake_*`` monitor event; ``True`` if it is a failure."""
        t = self.transport
        if name == "handshake_succeeded":
            t.handshakes += 1
            return False
        t.handshake_failures += 1
        n = self._handshake_failed_at[endpoint] = self._handshake_failed_at.get(endpoint, 0) + 1
        detail = handshake_detail(name, value, has_curve=self.options.curve is not None, bind=self.bind)
        where = f"a client of {endpoint}" if self.bind else endpoint
        self.last_handshake_error = f"{where}: CURVE handshake failed: {detail}"
        if n & (n - 1) == 0:  # the first, then at powers of two
            log.warning("%s (%d so far)", self.last_handshake_error, n)
        if self.on_handshake_failed is not None:
            self.on_handshake_failed(endpoint, detail)
        return True

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

    ``carries_raw`` (default ``True``, fail closed): the publisher may send ``raw/``
    topics, so it is refused on a non-loopback address without CURVE
    (:func:`~pmr_stream.wire.curve.check_raw_endpoints`). A publisher declared ``carries_raw=False`` (the
    anonymizer's ``anon/``) may use any address and refuses to send a ``raw/`` topic.
    With CURVE, a thread watches the socket monitor and counts (and logs) failed
    handshakes in :attr:`transport`.
    """

    def __init__(
        self,
        endpoints: Sequence[str] | str,
        options: SocketOptions | None = None,
        *,
        bind: bool = True,
        carries_raw: bool = True,
    ) -> None:
        import zmq

        self._watcher: threading.Thread | None = None
        self._watch_stop = threading.Event()
        super().__init__(zmq.XPUB, endpoints, options or SocketOptions(), bind, carries_raw)
        self.subscribers = 0  # subscribe messages seen (XPUB_VERBOSE: one per subscriber and topic)
        self.sent = 0
        self.sent_bytes = 0

    def _configure(self, zmq: Any) -> None:
        self.socket.setsockopt(zmq.SNDHWM, self.options.hwm)
        self.socket.setsockopt(zmq.XPUB_VERBOSE, 1)
        if self.options.curve is not None:
            self._start_watcher(zmq)

    def _start_watcher(self, zmq: Any) -> None:
        """Drain the monitor in a thread: a monitor nobody reads blocks the socket once it is full."""
        from zmq.utils.monitor import recv_monitor_message

        names = _event_names(zmq, _HANDSHAKE_EVENTS)
        mask = 0
        for e in _HANDSHAKE_EVENTS:
            mask |= getattr(zmq, e, 0)
        monitor = self.socket.get_monitor_socket(mask)

        def watch() -> None:
            try:
                while not self._watch_stop.is_set():
                    if not monitor.poll(100):
                        continue
                    while True:
                        try:
                            ev = recv_monitor_message(monitor, zmq.NOBLOCK)
                        except zmq.Again:
                            break
                        name = names.get(ev["event"])
                        if name is not None:
                            self._handshake_event(
                                name, ev.get("endpoint", b"").decode(errors="replace"), ev["value"]
                            )
            except zmq.ZMQError:  # pragma: no cover - the context is going away
                pass
            finally:
                monitor.close(linger=0)

        self._watcher = threading.Thread(target=watch, name="pmr-publisher-monitor", daemon=True)
        self._watcher.start()

    def _close_extra(self) -> None:
        if self._watcher is not None:
            self._watch_stop.set()
            with contextlib.suppress(Exception):
                self.socket.disable_monitor()
            self._watcher.join()
            self._watcher = None

    def send(self, msg: Message) -> int:
        """Publish ``msg`` on its topic; returns the bytes sent."""
        return self.send_raw(pack(msg, self.options.max_message_bytes))

    def send_raw(self, data: bytes) -> int:
        """Publish an already packed frame (``topic \\0 payload``) as it is."""
        if not self.carries_raw and data[:4] == b"raw/":
            raise ValueError("this publisher was declared carries_raw=False: it does not send raw/ topics")
        self.socket.send(data, copy=len(data) < 65536)
        self.sent += 1
        self.sent_bytes += len(data)
        return len(data)

    def events(self) -> TransportCounters:
        """The handshake counters (kept up to date by the monitor thread, with CURVE)."""
        return self.transport

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


class SubscriberSocket(_WireSocket):
    """A ``SUB`` socket subscribed to topic prefixes (see :func:`~pmr_stream.wire.schema.subscription`).

    It carries raw skeletons (:func:`~pmr_stream.wire.curve.check_raw_endpoints` applies) when a topic
    includes ``raw/`` (``raw/``, ``raw/<stream>``, ``""``).
    """

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
        self._cut_pending: dict[str, float] = {}  # endpoint -> when to call it cut
        self._retry_due: dict[str, float] = {}  # endpoint -> when to try again after a failed handshake
        self._retry_wait: dict[str, float] = {}  # endpoint -> the next wait after a failed handshake, s
        self._next_event_check = 0.0
        #: called with the endpoint when a connection was cut (see :class:`TransportCounters`)
        self.on_cut: Callable[[str], None] | None = None
        carries_raw = any(_subscribes_raw(t) for t in self._topics)
        super().__init__(zmq.SUB, endpoints, options or SocketOptions(), bind, carries_raw)
        self._poller = zmq.Poller()
        self._poller.register(self.socket, zmq.POLLIN)
        if self._monitor is not None:
            self._poller.register(self._monitor, zmq.POLLIN)
        self._event_names = _event_names(zmq, _EVENTS)

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
                if not self.bind and endpoint not in self._retry_due:
                    # A peer that closed is retried at once (CONNECT_RETRIED follows); a cut is not.
                    self._cut_pending[endpoint] = time.monotonic() + max(
                        0.25, 3 * self.options.reconnect_ivl_ms / 1000
                    )
            elif name == "connect_retried":
                self._cut_pending.pop(endpoint, None)
            elif name.startswith("handshake"):
                if self._handshake_event(name, endpoint, int(ev.get("value", 0))):
                    self._hold_off(endpoint)
                else:
                    self._retry_wait.pop(endpoint, None)
        self._revive()

    def _hold_off(self, endpoint: str) -> None:
        """After a failed handshake: not a cut; disconnect and try again after a growing wait."""
        import zmq

        self._cut_pending.pop(endpoint, None)
        if self.bind or endpoint not in self.endpoints or endpoint in self._retry_due:
            return
        wait = self._retry_wait.get(endpoint, HANDSHAKE_RETRY_S[0])
        self._retry_wait[endpoint] = min(2 * wait, HANDSHAKE_RETRY_S[1])
        self._retry_due[endpoint] = time.monotonic() + wait
        # Stop ZeroMQ's own retries (every reconnect_ivl_ms); linger 0: the session holds only our
        # subscriptions, and waiting to deliver them would keep it reconnecting.
        self.socket.setsockopt(zmq.LINGER, 0)
        with contextlib.suppress(zmq.ZMQError):
            self.socket.disconnect(endpoint)
        self.socket.setsockopt(zmq.LINGER, self.options.linger_ms)

    def _revive(self) -> None:
        """Reconnect endpoints whose connection ZeroMQ cut without retrying, or whose handshake failed."""
        if not self._cut_pending and not self._retry_due:
            return
        import zmq

        now = time.monotonic()
        for ep, due in list(self._retry_due.items()):
            if now >= due:
                del self._retry_due[ep]
                with contextlib.suppress(zmq.ZMQError):
                    self.socket.disconnect(ep)
                self.socket.connect(ep)
                self.transport.reconnects += 1
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


def restore_ctrl_c() -> None:
    """Make Ctrl-C (SIGINT) raise ``KeyboardInterrupt`` even when the process started with it
    ignored (a non-interactive shell starts ``cmd &`` jobs so, and children inherit it): every
    command documents Ctrl-C as "stop cleanly" and the pipeline stops its processes with it."""
    if (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    ):
        signal.signal(signal.SIGINT, signal.default_int_handler)


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
    "HANDSHAKE_RETRY_S", "SocketOptions", "Publisher", "SubscriberSocket", "TransportCounters",
    "restore_ctrl_c", "stop_on_signals",
]  # fmt: skip
