"""SSH detection: sticky buffers (``detect-ssh-proto.c``, ``detect-ssh-software.c``,
``detect-ssh-hassh*.c``) and the older keywords ``ssh.protoversion`` /
``ssh.softwareversion`` (``detect-ssh-proto-version.c``, ``detect-ssh-software-version.c``).

``ssh.proto`` / ``ssh.software`` are both-direction buffers: the client's banner to the server,
the server's to the client. ``ssh.hassh`` / ``ssh.hassh.string`` are the client's (to server),
``ssh.hassh.server`` / ``ssh.hassh.server.string`` the server's (to client). The hassh buffers
are lowercase (Suricata lowercases their contents; here an uppercase pattern is a rule error).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ruleengine.applayer.base import BufferDirection, BufferSpec, TxKeyword, TxMatchContext
from ruleengine.applayer.ssh.parser import SshSide, SshTransaction

_TS = BufferDirection.TO_SERVER
_TC = BufferDirection.TO_CLIENT
_BOTH = BufferDirection.BOTH


def _tx(obj: Any) -> SshTransaction | None:
    return obj if isinstance(obj, SshTransaction) else None


def _field(side_of: str, attr: str) -> Any:
    def get(obj: Any) -> bytes | None:
        tx = _tx(obj)
        if tx is None:
            return None
        value: bytes = getattr(getattr(tx, side_of), attr)
        return value or None
    return get


BUFFERS: tuple[BufferSpec, ...] = (
    BufferSpec("ssh.proto", aliases=("ssh_proto",), direction=_BOTH,
               getter=_field("client", "protover"),
               getter_toclient=_field("server", "protover")),
    BufferSpec("ssh.software", aliases=("ssh_software",), direction=_BOTH,
               getter=_field("client", "swver"),
               getter_toclient=_field("server", "swver")),
    BufferSpec("ssh.hassh", aliases=("ssh-hassh",), direction=_TS, lowercase_only=True,
               getter=_field("client", "hassh")),
    BufferSpec("ssh.hassh.string", aliases=("ssh-hassh-string",), direction=_TS,
               getter=_field("client", "hassh_string")),
    BufferSpec("ssh.hassh.server", aliases=("ssh-hassh-server",), direction=_TC,
               lowercase_only=True, getter=_field("server", "hassh")),
    BufferSpec("ssh.hassh.server.string", aliases=("ssh-hassh-server-string",), direction=_TC,
               getter=_field("server", "hassh_string")),
)


def _side(tx: SshTransaction, ctx: TxMatchContext) -> SshSide:
    return tx.client if ctx.to_server else tx.server


def _value(tx: SshTransaction, ctx: TxMatchContext, attr: str) -> bytes | None:
    """The field of the inspected direction, or None while its banner may still come."""
    side = _side(tx, ctx)
    value: bytes = getattr(side, attr)
    if value:
        return value
    return None


def _pending(tx: SshTransaction, ctx: TxMatchContext) -> bool:
    side = _side(tx, ctx)
    return not side.banner_done and not side.closed and not side.failed


def _match_value(obj: Any, ctx: TxMatchContext, attr: str,
                 test: Callable[[bytes], bool]) -> bool | None:
    """``test`` on the inspected side's banner field ``attr``; None while it may come."""
    tx = _tx(obj)
    if tx is None:
        return False
    value = _value(tx, ctx, attr)
    if value is None:
        return None if _pending(tx, ctx) else False
    return test(value)


# -- ssh.protoversion ------------------------------------------------------------------------
_PROTO_RE = re.compile(r'^\s*"?\s*([0-9]+(?:[.\-0-9]+)?|2_compat)\s*"?\s*$')


@dataclass(frozen=True)
class ProtoVersion:
    version: bytes  # empty with compat
    compat2: bool = False

    def matches(self, proto: bytes) -> bool:
        if self.compat2:
            return proto[:1] == b"2" or proto[:4] == b"1.99"
        return proto == self.version


def parse_protoversion(value: str | None) -> ProtoVersion:
    """``DetectSshVersionParse``: a version (``1.99``, ``2.0``...) or ``2_compat``."""
    m = _PROTO_RE.match(value or "")
    if m is None:
        raise ValueError(f"invalid ssh.protoversion option {value!r} "
                         "(a version like 2.0, or 2_compat)")
    if m.group(1) == "2_compat":
        return ProtoVersion(b"", compat2=True)
    return ProtoVersion(m.group(1).encode())


def match_protoversion(arg: ProtoVersion, obj: Any, ctx: TxMatchContext) -> bool | None:
    """Exact match of the inspected side's protocol version; ``2_compat``: it starts with
    ``2`` or is ``1.99``."""
    return _match_value(obj, ctx, "protover", arg.matches)


# -- ssh.softwareversion ---------------------------------------------------------------------
_SOFTWARE_RE = re.compile(r'^\s*"?\s*?([0-9a-zA-Z:.\-_+\s]+)\s*"?\s*$')


def parse_softwareversion(value: str | None) -> bytes:
    """``DetectSshSoftwareVersionParse``: letters, digits, ``:.-_+`` and blanks."""
    m = _SOFTWARE_RE.match(value or "")
    if m is None:
        raise ValueError(f"invalid ssh.softwareversion option {value!r}")
    return m.group(1).encode()


def match_softwareversion(arg: bytes, obj: Any, ctx: TxMatchContext) -> bool | None:
    """Suricata compares the whole software version (``b_len == len`` and memcmp)."""
    return _match_value(obj, ctx, "swver", lambda software: software == arg)


KEYWORDS: tuple[TxKeyword, ...] = (
    TxKeyword("ssh.protoversion", parse_protoversion, match_protoversion, direction=_BOTH,
              doc="match the SSH protocol version (exact, or 2_compat: 2.x and 1.99)"),
    TxKeyword("ssh.softwareversion", parse_softwareversion, match_softwareversion,
              direction=_BOTH, doc="match the SSH software version string (exact)"),
)
