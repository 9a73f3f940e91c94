"""A ZeroMQ forwarder (``XSUB`` -> ``XPUB``, :func:`zmq.proxy_steerable`) in a thread of its own.

``pmr anonymizer --workers N`` puts one in front of its workers (``XSUB`` connected to the
producers, ``XPUB`` bound on a private ``ipc://`` folder the workers subscribe to: the
producers see one subscriber, and each message crosses the network once) and one behind
them (``XSUB`` connected to the workers' ``ipc://`` publishers, ``XPUB`` bound on the
``--anon`` endpoint the sinks subscribe to). Both ``XPUB`` sides are verbose, so every
subscription, a repeated one included, reaches the publishers upstream: a producer (or a
worker) announces its streams to a new or restarted subscriber at once, as without a proxy.

The sockets take the same :class:`~pmr_stream.wire.options.SocketOptions` as the wire's
own (high-water marks, message size limit, CURVE, kernel buffers), and a proxy that carries
raw skeletons obeys the same rule: no non-loopback address without CURVE
(:func:`~pmr_stream.wire.curve.check_raw_endpoints`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from pmr_stream.wire.curve import check_raw_endpoints, setup_curve
from pmr_stream.wire.options import SocketOptions

log = logging.getLogger(__name__)


class WireProxy:
    """Forward every message from the publishers at ``upstream`` (connected) to the subscribers
    of ``downstream`` (bound), and their subscriptions back.

    Args:
        upstream: endpoints the ``XSUB`` side connects to.
        downstream: the endpoint the ``XPUB`` side binds (``tcp://...:0`` for a free port:
            :attr:`endpoint` says which).
        upstream_options, downstream_options: socket options of each side (CURVE client
            upstream, CURVE server downstream).
        carries_raw: raw skeletons pass (the non-loopback rule applies to both sides).
        name: for the thread and the log.
        start: start forwarding at once; ``False``: call :meth:`wait_subscribers` and/or
            :meth:`start` first.
    """

    def __init__(
        self,
        upstream: Sequence[str],
        downstream: str,
        upstream_options: SocketOptions | None = None,
        downstream_options: SocketOptions | None = None,
        *,
        carries_raw: bool,
        name: str = "proxy",
        start: bool = True,
    ) -> None:
        import zmq

        up_o, down_o = upstream_options or SocketOptions(), downstream_options or SocketOptions()
        if carries_raw:
            check_raw_endpoints(list(upstream), up_o, bind=False)
            check_raw_endpoints([downstream], down_o, bind=True)
        self.name = name
        self._ctx = zmq.Context()
        self._auth: list[Any] = []
        self._control_addr = f"inproc://{name}-control-{id(self):x}"
        try:
            self._front = self._socket(zmq.XSUB, up_o, bind=False)
            self._front.setsockopt(zmq.RCVHWM, up_o.hwm)
            self._front.setsockopt(zmq.MAXMSGSIZE, up_o.max_message_bytes + 128)
            self._back = self._socket(zmq.XPUB, down_o, bind=True)
            self._back.setsockopt(zmq.SNDHWM, down_o.hwm)
            self._back.setsockopt(zmq.XPUB_VERBOSE, 1)
            self._back.bind(downstream)
            #: the bound downstream endpoint
            self.endpoint: str = self._back.getsockopt_string(zmq.LAST_ENDPOINT)
            for ep in upstream:
                self._front.connect(ep)
            self._control = self._ctx.socket(zmq.PAIR)
            self._control.bind(self._control_addr)
        except zmq.ZMQError as exc:
            self._close_sockets()
            raise ValueError(f"{name}: cannot set up {list(upstream)} -> {downstream}: {exc}") from None
        except BaseException:
            self._close_sockets()
            raise
        self._peer = self._ctx.socket(zmq.PAIR)
        self._peer.connect(self._control_addr)
        self.error: str = ""
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        if start:
            self.start()

    def start(self) -> None:
        """Start forwarding (once)."""
        if not self._thread.is_alive() and self._thread.ident is None:
            self._thread.start()

    def wait_subscribers(
        self,
        n: int,
        timeout_s: float,
        stop: threading.Event | None = None,
        abort: Callable[[], bool] | None = None,
    ) -> int:
        """Before :meth:`start`: wait until ``n`` subscriptions reached the downstream side (or
        ``timeout_s`` / ``stop`` / ``abort()``); they are passed upstream, so nothing is lost. The count seen."""
        import zmq

        if self._thread.ident is not None:
            raise RuntimeError(f"{self.name}: wait_subscribers is for before start()")
        seen = 0
        deadline = time.monotonic() + timeout_s
        while seen < n and time.monotonic() < deadline and not (stop is not None and stop.is_set()):
            if abort is not None and abort():
                break
            if self._back.poll(100, zmq.POLLIN):
                msg = self._back.recv()
                self._front.send(msg)  # XSUB keeps it and sends it to every publisher it reaches
                if msg[:1] == b"\x01":
                    seen += 1
        return seen

    def _socket(self, kind: int, options: SocketOptions, *, bind: bool) -> Any:
        import zmq

        s = self._ctx.socket(kind)
        s.setsockopt(zmq.LINGER, options.linger_ms)
        s.setsockopt(zmq.RECONNECT_IVL, options.reconnect_ivl_ms)
        if options.kernel_buffer_bytes is not None:
            s.setsockopt(zmq.SNDBUF, options.kernel_buffer_bytes)
            s.setsockopt(zmq.RCVBUF, options.kernel_buffer_bytes)
        if options.curve is not None:
            auth = setup_curve(s, self._ctx, options.curve, bind=bind)
            if auth is not None:
                self._auth.append(auth)
        return s

    def _run(self) -> None:
        import zmq

        try:
            zmq.proxy_steerable(self._front, self._back, None, self._control)
        except zmq.ZMQError as exc:  # pragma: no cover - a closed context while stopping
            if exc.errno != zmq.ETERM:
                self.error = str(exc)
                log.error("%s stopped: %s", self.name, exc)

    @property
    def alive(self) -> bool:
        """Whether the forwarding thread runs."""
        return self._thread.is_alive()

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop forwarding and close every socket."""
        if self._thread.is_alive():
            self._peer.send(b"TERMINATE")
            self._thread.join(timeout_s)
        self._peer.close(linger=0)
        self._close_sockets()

    def _close_sockets(self) -> None:
        for attr in ("_front", "_back", "_control"):
            s = getattr(self, attr, None)
            if s is not None:
                s.close(linger=0)
        for auth in self._auth:
            auth.stop()
        self._ctx.term()

    def __enter__(self) -> WireProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["WireProxy"]
