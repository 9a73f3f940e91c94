"""What the files of an anonymized dataset are called: names that keep what researchers need and
carry nobody's identity.

Policy ``pseudonym`` (the default), with the deployment's stream-id key
(:func:`~pmr_stream.wire.privacy.load_stream_key`, the key of the ``anon/`` stream pseudonyms):

* an NTU name ``SsssCcccPpppRrrrAaaa`` keeps setup, camera, replication and action, and its
  performer ``Pppp`` becomes ``p`` + 8 hex digits of a keyed HMAC of the performer number
  (:data:`PERFORMER_TOKEN_HEX`): ``S001C001P001R001A001.skeleton`` ->
  ``S001C001p1f0c83a2R001A001.skeleton``. Every file of one performer gets the same token (a
  cross-subject split stays possible), and without the key nobody can tell which performer a
  token stands for or test guesses. The lower-case ``p`` keeps NTU name parsers from reading the
  token as a performer number. NTU-120 names (setups up to 32, performers up to 106, actions up
  to 120) have the same form.
* any other file name becomes ``f`` + 16 hex digits of a keyed HMAC of its path relative to the
  input root (the suffix kept), e.g. ``alice_walk.npz`` -> ``f3a9c0d2e41b7c685.npz``.
* each folder name becomes ``d`` + 10 hex digits of a keyed HMAC of the folder's relative path:
  folders are often named for people (``subject07/``, ``alice/``) and a tool cannot tell. With
  ``keep_dirs`` (``--keep-dir-names``) they are copied: the operator's statement that they name
  nobody (``train/``, ``S001/``).

Policy ``keep`` (``--names keep``) copies every name unchanged: an explicit opt-in.

The mapping is a function of the key and the input's relative path only, so a rerun maps every
input to the same output (that is what resume relies on); two inputs that would get one output
name, or two performers one token, are refused before any work (:func:`output_names`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Final, Literal

from pmr_stream.formats.ntu_dataset import parse_ntu_name
from pmr_stream.wire.privacy import keyed_token

NamePolicy = Literal["pseudonym", "keep"]
#: The values of ``--names``.
NAME_POLICIES: Final[tuple[str, ...]] = ("pseudonym", "keep")
#: Hex digits of a performer token (``p`` + these: 32 bits), of another file's and a folder's token.
PERFORMER_TOKEN_HEX: Final[int] = 8
FILE_TOKEN_HEX: Final[int] = 16
DIR_TOKEN_HEX: Final[int] = 10
#: HMAC domains: each kind of name apart from the others and from the stream pseudonyms.
PERFORMER_DOMAIN: Final[str] = "pmr-dataset-performer"
FILE_DOMAIN: Final[str] = "pmr-dataset-file"
DIR_DOMAIN: Final[str] = "pmr-dataset-dir"


@dataclass(frozen=True)
class NameOptions:
    """How output names are made (see the module doc). ``key``: the deployment's secret (unused
    with ``policy="keep"``)."""

    policy: NamePolicy = "pseudonym"
    key: bytes = b""
    keep_dirs: bool = False

    def __post_init__(self) -> None:
        if self.policy not in NAME_POLICIES:
            raise ValueError(f"names must be one of {', '.join(NAME_POLICIES)}, got {self.policy!r}")
        if self.policy == "pseudonym" and len(self.key) < 16:
            raise ValueError("pseudonym names need the deployment key (at least 16 bytes)")

    def __repr__(self) -> str:  # never the key
        return f"NameOptions(policy={self.policy!r}, keep_dirs={self.keep_dirs})"


def performer_token(key: bytes, performer: int) -> str:
    """``p`` + :data:`PERFORMER_TOKEN_HEX` hex digits: the keyed token of NTU performer ``performer``."""
    return "p" + keyed_token(key, PERFORMER_DOMAIN, str(int(performer)), PERFORMER_TOKEN_HEX)


def file_name(rel: str, suffix: str, opts: NameOptions) -> str:
    """The output file name (no folder) for the input at relative path ``rel`` (POSIX), with ``suffix``."""
    path = PurePosixPath(rel)
    if opts.policy == "keep":
        return path.stem + suffix
    try:
        n = parse_ntu_name(path.name)
    except ValueError:
        return "f" + keyed_token(opts.key, FILE_DOMAIN, rel, FILE_TOKEN_HEX) + suffix
    token = performer_token(opts.key, n.performer)
    return f"S{n.setup:03d}C{n.camera:03d}{token}R{n.replication:03d}A{n.action:03d}{suffix}"


def dir_names(rel: str, opts: NameOptions) -> list[str]:
    """The output folder names for the folders of the relative input path ``rel`` (POSIX)."""
    parts = PurePosixPath(rel).parts[:-1]
    if opts.policy == "keep" or opts.keep_dirs:
        return list(parts)
    return ["d" + keyed_token(opts.key, DIR_DOMAIN, "/".join(parts[: i + 1]), DIR_TOKEN_HEX)
            for i in range(len(parts))]  # fmt: skip


def output_name(rel: str, suffix: str, opts: NameOptions) -> str:
    """The output's path relative to the output folder (POSIX) for the input at ``rel``."""
    return "/".join([*dir_names(rel, opts), file_name(rel, suffix, opts)])


def output_names(items: Sequence[tuple[str, str]], opts: NameOptions) -> list[str]:
    """:func:`output_name` of each ``(rel, suffix)``, checked to be distinct (case-insensitively:
    some filesystems are) within the run.

    Raises:
        ValueError: two inputs would get one output name (the message names both inputs' relative
            paths: it goes to the console, not into the output).
    """
    out = [output_name(rel, suffix, opts) for rel, suffix in items]
    if opts.policy == "pseudonym":
        _check_performer_tokens([rel for rel, _ in items], opts.key)
    seen: dict[str, str] = {}
    for (rel, _), name in zip(items, out, strict=True):
        other = seen.setdefault(name.lower(), rel)
        if other != rel:
            raise ValueError(f"inputs {other} and {rel} would both be written as {name}; "
                             "anonymize them in separate runs (or into separate folders)")  # fmt: skip
    return out


def _check_performer_tokens(rels: Sequence[str], key: bytes) -> None:
    """Two performers of the run must not share a token (32 bits: improbable, but checked)."""
    owner: dict[str, int] = {}
    for rel in rels:
        try:
            performer = parse_ntu_name(PurePosixPath(rel).name).performer
        except ValueError:
            continue
        token = performer_token(key, performer)
        if owner.setdefault(token, performer) != performer:
            raise ValueError(f"performers {owner[token]} and {performer} get the same token {token} with this "
                             "key; use another key (--stream-key) for this dataset")  # fmt: skip


__all__ = [
    "NamePolicy", "NAME_POLICIES", "NameOptions", "PERFORMER_TOKEN_HEX", "FILE_TOKEN_HEX", "DIR_TOKEN_HEX",
    "performer_token", "file_name", "dir_names", "output_name", "output_names",
]  # fmt: skip
