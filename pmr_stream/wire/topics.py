"""Which topics a publisher carries, for a subscriber that hears nothing on its own.

``pmr probe --topic raw/cam9`` against a producer of ``raw/cam1`` used to wait in silence: a
ZeroMQ subscriber never sees messages of topics it did not subscribe to. :class:`SilenceHint`
watches a :class:`~pmr_stream.wire.subscriber.Subscriber`; when nothing at all has arrived after
``after_s`` seconds it listens to everything for a moment on a socket of its own and says which
topics are there. Only topic names are read; payloads are dropped unparsed.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence

from pmr_stream.wire.options import SocketOptions


def topics_present(
    endpoints: Sequence[str], options: SocketOptions, *, bind: bool = False, listen_s: float = 1.0
) -> Counter[str]:
    """Messages per topic heard on ``endpoints`` during ``listen_s`` seconds (any topic)."""
    from pmr_stream.wire.sockets import SubscriberSocket

    seen: Counter[str] = Counter()
    with SubscriberSocket(list(endpoints), [""], options, bind=bind) as sock:
        t_end = time.monotonic() + listen_s
        while (left := t_end - time.monotonic()) > 0:
            data = sock.recv(int(left * 1000))
            if data is not None:
                seen[data.split(b"\0", 1)[0].decode("ascii", "replace")] += 1
    return seen


class SilenceHint:
    """After ``after_s`` s with nothing received by ``received()``, report what the endpoints carry.

    ``say`` gets one line, e.g. ``nothing on raw/cam9 after 3 s; topics on tcp://...: raw/cam1 (30
    messages)``, or that nothing at all is published there. Runs in a daemon thread; :meth:`close`
    (or leaving the ``with`` block) stops it.
    """

    def __init__(
        self,
        received: Callable[[], int],
        endpoints: Sequence[str],
        topics: Sequence[str],
        options: SocketOptions,
        say: Callable[[str], None],
        *,
        bind: bool = False,
        after_s: float = 3.0,
        listen_s: float = 1.0,
    ) -> None:
        self._received, self._say = received, say
        self._endpoints, self._topics, self._options, self._bind = (
            list(endpoints),
            list(topics),
            options,
            bind,
        )
        self._after_s, self._listen_s = after_s, listen_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="silence-hint", daemon=True)

    def __enter__(self) -> SilenceHint:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(self._listen_s + 5)

    def _watch(self) -> None:
        if self._after_s <= 0 or self._stop.wait(self._after_s) or self._received() > 0:
            return
        with contextlib.suppress(Exception):  # a hint must never break the command it helps
            seen = topics_present(self._endpoints, self._options, bind=self._bind, listen_s=self._listen_s)
            if self._stop.is_set() or self._received() > 0:
                return
            where = ", ".join(self._endpoints)
            wanted = ", ".join(self._topics)
            if seen:
                present = ", ".join(f"{t} ({n} messages)" for t, n in seen.most_common(10))
                self._say(f"nothing on {wanted} after {self._after_s:g} s; topics on {where}: {present}")
            else:
                self._say(
                    f"nothing on {wanted} after {self._after_s:g} s; nothing at all is published on {where}"
                )


__all__ = ["SilenceHint", "topics_present"]
