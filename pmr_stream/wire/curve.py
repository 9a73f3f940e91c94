"""CurveZMQ for the wire: key files, the command-line flags, and the rule for raw skeletons.

* Keys live in files written by :func:`generate_keypair` (``NAME.key`` public,
  ``NAME.key_secret`` secret, mode 0600; the ZeroMQ certificate format) and are read by
  :func:`load_key_file`. The binding side of a socket is the CURVE server, the connecting
  side the client; a server admits only clients whose public ``.key`` files lie in
  ``authorized_keys_dir`` (:class:`CurveOptions`).
* :func:`add_curve_arguments` / :func:`curve_from_args` / :func:`insecure_from_args` are the
  one declaration of the command-line flags (optionally prefixed, e.g. ``--raw-curve-*``).
* Raw skeletons identify people: a socket that carries them refuses to bind or connect to
  a non-loopback address without CURVE unless ``insecure`` (``--insecure``):
  :func:`check_raw_endpoints`, :func:`is_local_endpoint`.
* :func:`setup_curve` applies :class:`CurveOptions` to a pyzmq socket (starting the ZAP
  authenticator of a server); :func:`handshake_detail` says in words why a handshake failed.

The sockets themselves are in :mod:`pmr_stream.wire.sockets`. zmq is imported inside the
functions, so importing this module does not need pyzmq.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

log = logging.getLogger(__name__)

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


def _flag(prefix: str, name: str) -> str:
    return f"--{prefix}{name}"


def _dest(prefix: str, name: str) -> str:
    return f"{prefix}{name}".replace("-", "_")


def add_curve_arguments(
    parser: argparse.ArgumentParser, prefix: str = "", *, role: str = "", what: str = "", raw: bool = True
) -> None:
    """Add the CurveZMQ flags of one socket (the one declaration of :class:`CurveOptions` on a command line).

    Flags: ``--{prefix}curve-secret FILE``, ``--{prefix}curve-server-key FILE`` (connecting
    side), ``--{prefix}curve-clients DIR`` and ``--{prefix}curve-allow-any`` (binding side),
    and, for a socket that may carry raw skeletons (``raw=True``), ``--{prefix}insecure``.
    Read them back with :func:`curve_from_args` and :func:`insecure_from_args`.

    Args:
        prefix: e.g. ``"raw-"`` / ``"anon-"`` for a command with two sockets; ``""`` otherwise.
        role: ``"client"`` (the socket always connects), ``"server"`` (always binds), or
            ``""`` (either: ``--connect`` / ``--bind``); only the flags of that role are added.
        what: the socket's name in the group title (e.g. ``"the raw/ subscriber"``).
        raw: the socket may carry raw skeletons (adds ``--{prefix}insecure``).
    """
    if role not in ("", "client", "server"):
        raise ValueError(f"role must be '', 'client' or 'server', got {role!r}")
    title = (
        f"CurveZMQ of {what}"
        if what
        else "CurveZMQ (encryption and authentication; make keys with `pmr keys`)"
    )
    g = parser.add_argument_group(title)
    g.add_argument(
        _flag(prefix, "curve-secret"), default=None, metavar="FILE", help="this side's .key_secret file"
    )
    if role != "server":
        g.add_argument(_flag(prefix, "curve-server-key"), default=None, metavar="FILE",
                       help="the binding side's public .key (on the connecting side)")  # fmt: skip
    if role != "client":
        g.add_argument(
            _flag(prefix, "curve-clients"),
            default=None,
            metavar="DIR",
            help="folder of public .key files of admitted clients (on the binding side)",
        )
        g.add_argument(_flag(prefix, "curve-allow-any"), action="store_true",
                       help="binding side: encrypt but admit any client key")  # fmt: skip
    if raw:
        g.add_argument(_flag(prefix, "insecure"), action="store_true",
                       help="allow raw skeletons in clear text to or from a non-loopback address (without it "
                            "such a socket is refused: raw skeletons identify people; trusted networks only)")  # fmt: skip


def curve_from_args(
    args: argparse.Namespace, prefix: str = "", *, bind: bool | None = None
) -> CurveOptions | None:
    """The :class:`CurveOptions` given by the flags of :func:`add_curve_arguments` (``None``: no CURVE).

    With ``bind`` known, flags of the other side are refused, and a missing server key
    (connecting) or client folder (binding) is named with its flag, in one line
    (``ValueError``).
    """
    secret = getattr(args, _dest(prefix, "curve_secret"), None)
    server_key = getattr(args, _dest(prefix, "curve_server_key"), None)
    clients = getattr(args, _dest(prefix, "curve_clients"), None)
    allow_any = bool(getattr(args, _dest(prefix, "curve_allow_any"), False))
    f = lambda name: _flag(prefix, name)  # noqa: E731
    if not secret:
        if server_key or clients or allow_any:
            given = (
                f("curve-server-key")
                if server_key
                else f("curve-clients")
                if clients
                else f("curve-allow-any")
            )
            raise ValueError(f"{given} needs {f('curve-secret')} (this side's .key_secret file)")
        return None
    if bind is True:
        if server_key:
            raise ValueError(f"{f('curve-server-key')} is for the connecting side; this socket binds (it is the "
                             f"CURVE server: give {f('curve-clients')} DIR or {f('curve-allow-any')})")  # fmt: skip
        if not clients and not allow_any:
            raise ValueError(f"{f('curve-secret')} on a binding socket (the CURVE server) needs "
                             f"{f('curve-clients')} DIR (admitted clients' public .key files) or {f('curve-allow-any')}")  # fmt: skip
    elif bind is False:
        if clients or allow_any:
            given = f("curve-clients") if clients else f("curve-allow-any")
            raise ValueError(f"{given} is for the binding side; this socket connects (it is the CURVE client: "
                             f"give {f('curve-server-key')} FILE)")  # fmt: skip
        if not server_key:
            raise ValueError(f"{f('curve-secret')} on a connecting socket (the CURVE client) needs "
                             f"{f('curve-server-key')} FILE (the binding side's public .key)")  # fmt: skip
    return CurveOptions(
        secret_key_file=Path(secret),
        server_key_file=Path(server_key) if server_key else None,
        authorized_keys_dir=Path(clients) if clients else None,
        allow_any_client=allow_any,
    )


def insecure_from_args(args: argparse.Namespace, prefix: str = "") -> bool:
    """``--{prefix}insecure`` of :func:`add_curve_arguments` (``False`` where the command has none)."""
    return bool(getattr(args, _dest(prefix, "insecure"), False))


#: ZeroMQ transports (``ipc``/``inproc`` stay on the host; the others may cross a network).
_TRANSPORTS: Final[frozenset[str]] = frozenset(
    {"tcp", "ipc", "inproc", "ws", "wss", "udp", "pgm", "epgm", "norm", "tipc", "vmci"}
)


def is_local_endpoint(endpoint: str) -> bool:
    """Whether a ZeroMQ endpoint stays on this host.

    Local: ``ipc://``, ``inproc://``, and ``tcp``/``ws``/``wss``/``udp`` to ``127.0.0.0/8``,
    ``::1`` or ``localhost``. Everything else is not: ``*``, ``0.0.0.0``, ``[::]``, a LAN
    address, a host or interface name, multicast transports (``pgm``, ``epgm``, ...).
    ``tcp://source;destination`` is judged by its destination.
    """
    transport, sep, rest = endpoint.partition("://")
    transport = transport.lower()
    if not sep:
        return False
    if transport in ("ipc", "inproc"):
        return True
    if transport not in ("tcp", "ws", "wss", "udp"):
        return False
    rest = rest.rsplit(";", 1)[-1].split("/", 1)[0]
    host = rest[: rest.rfind(":")] if rest.rfind(":") > rest.rfind("]") else rest
    host = host.strip().strip("[]").lower()
    if host == "localhost":
        return True
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(addr, "ipv4_mapped", None)
    return bool((mapped or addr).is_loopback)


class InsecureEndpointError(ValueError):
    """A socket carrying raw skeletons was asked to use a non-loopback address without CURVE."""


class RawSocketSettings(Protocol):
    """What :func:`check_raw_endpoints` reads of a socket's options (a :class:`~pmr_stream.wire.sockets.SocketOptions`)."""

    @property
    def curve(self) -> CurveOptions | None: ...

    @property
    def insecure(self) -> bool: ...


def check_raw_endpoints(
    endpoints: Sequence[str] | str, options: RawSocketSettings, *, bind: bool, flag_prefix: str = ""
) -> None:
    """Refuse a socket that carries raw skeletons on a non-loopback address without CURVE.

    Raw skeletons identify people, so they leave the host only encrypted and
    authenticated, whichever side binds. ``options.insecure`` allows it (with a warning).
    Raises :class:`InsecureEndpointError` (one line, naming the endpoint and the flags
    ``--{flag_prefix}curve-*`` / ``--{flag_prefix}insecure``).
    """
    if options.curve is not None:
        return
    remote = [
        ep for ep in ([endpoints] if isinstance(endpoints, str) else endpoints) if not is_local_endpoint(ep)
    ]
    if not remote:
        return
    verb = "bind" if bind else "connect to"
    if options.insecure:
        log.warning("raw skeletons in clear text: %s %s without CURVE (insecure)", verb, ", ".join(remote))
        return
    for ep in remote:
        transport = ep.partition("://")[0].lower()
        if (
            transport not in _TRANSPORTS
        ):  # neither known local nor a known network: say so, not "not loopback"
            raise ValueError(
                f"cannot {'bind' if bind else 'connect'} {ep}: unknown ZeroMQ transport {transport!r}"
            )
    p = flag_prefix
    keys = f"--{p}curve-clients DIR or --{p}curve-allow-any" if bind else f"--{p}curve-server-key FILE"
    raise InsecureEndpointError(
        f"refusing to {verb} {remote[0]} without CURVE: this socket carries raw skeletons, which identify people, "
        f"and {remote[0]} is not a loopback address; encrypt it (--{p}curve-secret FILE with {keys}) or, on a "
        f"trusted network, pass --{p}insecure"
    )


# ----------------------------------------------------------------------------- sockets


def setup_curve(socket: Any, ctx: Any, curve: CurveOptions, *, bind: bool) -> Any:
    """Make pyzmq ``socket`` (of context ``ctx``) a CURVE server (``bind``) or client.

    A server gets a ZAP authenticator in ``ctx`` admitting the public ``.key`` files of
    ``curve.authorized_keys_dir`` (or any client with ``allow_any_client``); it is
    returned, started (stop it after closing the socket). A client gets the server's
    public key; ``None`` is returned. Raises ``ValueError`` / ``FileNotFoundError`` naming
    the missing or broken key, ``RuntimeError`` when libzmq has no CURVE.
    """
    import zmq

    if not zmq.has("curve"):  # pragma: no cover - depends on libzmq build
        raise RuntimeError("this libzmq was built without CURVE support")
    public, secret = load_key_file(curve.secret_key_file, secret=True)
    socket.curve_secretkey = secret
    socket.curve_publickey = public
    if bind:  # server
        from zmq.auth import CURVE_ALLOW_ANY
        from zmq.auth.thread import ThreadAuthenticator

        if curve.authorized_keys_dir is None and not curve.allow_any_client:
            raise ValueError(
                "a CURVE server needs authorized_keys_dir (clients' public .key files) "
                "or allow_any_client=True"
            )
        kd = None if curve.authorized_keys_dir is None else Path(curve.authorized_keys_dir)
        if kd is not None:
            if not kd.is_dir():
                raise FileNotFoundError(f"authorized keys folder not found: {kd}")
            n = len(list(kd.glob("*.key")))
            if n == 0 and not curve.allow_any_client:
                raise ValueError(f"authorized keys folder {kd} holds no public .key files")
            for k in kd.glob("*.key"):
                load_key_file(k)  # a clear error for a broken file, not a silent skip
        auth = ThreadAuthenticator(ctx, log=logging.getLogger(__name__ + ".zap"))
        auth.start()
        try:
            auth.configure_curve(domain="*", location=str(kd) if kd is not None else CURVE_ALLOW_ANY)
        except BaseException:
            auth.stop()
            raise
        socket.curve_server = True
        return auth
    else:  # client
        if curve.server_key_file is None:
            raise ValueError("a CURVE client needs server_key_file (the server's public .key)")
        server_public, _ = load_key_file(curve.server_key_file)
        socket.curve_serverkey = server_public
    return None


def handshake_detail(name: str, value: int, *, has_curve: bool, bind: bool) -> str:
    """Why a handshake failed, in words, from the monitor event's ``name`` (``handshake_failed_*``)
    and ``value``, as seen by a socket with (``has_curve``) or without CURVE keys that binds
    (``bind``) or connects."""
    import zmq

    mine = "this side uses CURVE" if has_curve else "this side has no CURVE keys"
    if name == "handshake_failed_auth":
        return (f"the server refused the client's key (ZAP status {value}): the client's public .key must lie "
                "in the server's folder of admitted clients")  # fmt: skip
    if name == "handshake_failed_protocol":
        if value == getattr(zmq, "PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH", -1):
            return f"one side uses CURVE and the other does not ({mine})"
        if value == getattr(zmq, "PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC", -1):
            return "the keys do not match (a client given another server's public key?)"
        return f"protocol error 0x{value:x} ({mine})"
    why = os.strerror(value) if value > 0 else "no detail"
    if bind:
        return f"a client closed the connection during the handshake ({why})"
    return (
        f"the server closed the connection during the handshake ({why}; is this client's server key right?)"
    )


__all__ = [
    "generate_keypair", "load_key_file", "CurveOptions", "add_curve_arguments", "curve_from_args",
    "insecure_from_args", "is_local_endpoint", "check_raw_endpoints", "InsecureEndpointError",
    "RawSocketSettings", "setup_curve", "handshake_detail",
]  # fmt: skip
