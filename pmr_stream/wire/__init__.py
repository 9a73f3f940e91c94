"""The wire: the message schema (msgpack, versioned) and ZeroMQ PUB/SUB helpers.

``capture/`` (producers) and ``sinks/`` (recorder, probe, viewers) talk only through
this package. :mod:`.schema` (the messages and their encoding) and :mod:`.checks` (the
field rules, :class:`WireError`) need only msgpack and numpy; :mod:`.curve` (CurveZMQ keys,
flags, the raw-skeleton rule), :mod:`.sockets` and :mod:`.subscriber` import pyzmq when a
socket is made.
"""

from __future__ import annotations

from pmr_stream.wire.checks import REASONS, WireError
from pmr_stream.wire.curve import CurveOptions, generate_keypair, load_key_file
from pmr_stream.wire.schema import (
    ANON,
    MAX_MESSAGE_BYTES,
    RAW,
    SCHEMA_VERSION,
    FrameGap,
    FrameMessage,
    Message,
    StreamEnd,
    StreamStart,
    decode,
    encode,
    pack,
    subscription,
    topic_for,
    topic_of,
    unpack,
)
from pmr_stream.wire.sockets import Publisher, SocketOptions, SubscriberSocket, stop_on_signals
from pmr_stream.wire.subscriber import STREAM_REASONS, Received, StreamState, Subscriber, SubscriberOptions

__all__ = [
    "SCHEMA_VERSION", "MAX_MESSAGE_BYTES", "RAW", "ANON", "REASONS", "STREAM_REASONS",
    "WireError", "FrameMessage", "FrameGap", "StreamStart", "StreamEnd", "Message",
    "encode", "decode", "pack", "unpack", "topic_for", "topic_of", "subscription",
    "CurveOptions", "SocketOptions", "Publisher", "SubscriberSocket", "generate_keypair", "load_key_file",
    "stop_on_signals", "Subscriber", "SubscriberOptions", "Received", "StreamState",
]  # fmt: skip
