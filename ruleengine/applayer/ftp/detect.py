"""FTP detection: ``ftpbounce`` (``detect-ftpbounce.c``) and Suricata 8's FTP buffers and
keywords (``detect-ftp-command.c``, ``-command-data.c``, ``-completion-code.c``, ``-reply.c``,
``-dynamic-port.c``, ``-mode.c``, ``-reply-received.c``).

As in Suricata 8 none of them matches a transaction without a known command (the server's
greeting, unsolicited replies). ``ftp.completion_code`` / ``ftp.reply`` are one buffer per
reply line (``SCFTPParseResponseLine``): a line ``ddd text`` gives code ``ddd`` and reply
``text``; any other line (``ddd-text`` continuations included) an empty code and the whole
line as reply.
"""

from __future__ import annotations

from typing import Any

from ruleengine.applayer.base import BufferDirection, BufferSpec, TxKeyword, TxMatchContext
from ruleengine.applayer.dns.detect import UintMatch, parse_uint
from ruleengine.applayer.ftp.parser import FtpTransaction

_TS = BufferDirection.TO_SERVER
_TC = BufferDirection.TO_CLIENT


def _tx(obj: Any) -> FtpTransaction | None:
    if isinstance(obj, FtpTransaction) and obj.known:
        return obj
    return None


def get_command(obj: Any) -> bytes | None:
    tx = _tx(obj)
    return tx.command.encode() if tx is not None and tx.command else None


def command_data(tx: FtpTransaction) -> bytes | None:
    """What follows ``COMMAND `` on the line (as EVE's ``command_data``)."""
    if tx.command is None or len(tx.request) <= len(tx.command):
        return None
    return tx.request[len(tx.command) + 1 :] or None


def get_command_data(obj: Any) -> bytes | None:
    tx = _tx(obj)
    return command_data(tx) if tx is not None else None


def split_reply(line: bytes) -> tuple[bytes, bytes] | None:
    """``parse_response_line``: (code, text); the code only for ``ddd<space>...``."""
    text = line.rstrip()
    if not text:
        return None
    head, sep, rest = text.partition(b" ")
    if sep and len(head) == 3 and head.isdigit():
        return head, rest
    return b"", text


def _reply_parts(obj: Any, index: int) -> list[bytes] | None:
    tx = _tx(obj)
    if tx is None or not tx.replies:
        return None
    parts = [split_reply(r.line) for r in tx.replies]
    return [p[index] for p in parts if p is not None] or None


def get_completion_codes(obj: Any) -> list[bytes] | None:
    return _reply_parts(obj, 0)


def get_replies(obj: Any) -> list[bytes] | None:
    return _reply_parts(obj, 1)


BUFFERS: tuple[BufferSpec, ...] = (
    BufferSpec("ftp.command", direction=_TS, getter=get_command),
    BufferSpec("ftp.command_data", direction=_TS, getter=get_command_data),
    BufferSpec("ftp.completion_code", direction=_TC, multi=True, getter=get_completion_codes),
    BufferSpec("ftp.reply", direction=_TC, multi=True, getter=get_replies),
)


# -- ftpbounce --------------------------------------------------------------------------------
def bounce_ip(payload: bytes) -> int | None:
    """``DetectFtpbounceMatchArgs``' reading of ``PORT h1,h2,h3,h4,...``: the address as a
    big-endian 32-bit number, or None when it is not in that form. Kept as Suricata wrote it:
    an octet may be 256, an octet of four digits is no address, blanks may precede a comma."""
    n = len(payload)
    if n <= 7:  # "payload_len < 7", then "offset + 7 >= payload_len" (offset 0)
        return None
    i = 0
    while i < n and not payload[i : i + 1].isdigit():
        i += 1
    octet = digits = count = 0
    ip = 0
    while i < n and digits < 4:
        c = payload[i]
        if 0x30 <= c <= 0x39:
            octet = octet * 10 + (c - 0x30)
            digits += 1
        else:
            if octet > 256:
                return None
            while i < n and payload[i] in b" \t\r\n\x0b\x0c":
                i += 1
            if i < n and payload[i] == 0x2C:
                count += 1
                digits = 0
                ip = ((ip << 8) + octet) & 0xFFFFFFFF
                octet = 0
            else:
                return None
            if count == 4:
                return ip
        i += 1
    return None


def parse_ftpbounce(value: str | None) -> None:
    if value is not None and value.strip():
        raise ValueError("ftpbounce takes no value")


def match_ftpbounce(arg: None, obj: Any, ctx: TxMatchContext) -> bool | None:
    """A PORT command whose address is not the client's (the side that opened the flow;
    Suricata compares with the first 32 bits of the flow's source address)."""
    tx = _tx(obj)
    if tx is None or tx.command != "PORT" or len(ctx.client_ip) < 4:
        return False
    ip = bounce_ip(tx.request)
    if ip is None:
        return False
    return ip != int.from_bytes(ctx.client_ip[:4], "big")


# -- ftp.dynamic_port / ftp.mode / ftp.reply_received -----------------------------------------
def parse_dynamic_port(value: str | None) -> UintMatch:
    return parse_uint(value, 16)


def match_dynamic_port(arg: UintMatch, obj: Any, ctx: TxMatchContext) -> bool | None:
    tx = _tx(obj)
    if tx is None:
        return False
    if not tx.dyn_port and not tx.response_complete:
        return None  # the reply that sets it may still come
    return arg(tx.dyn_port)


def _word(value: str | None, keyword: str, words: dict[str, bool], expected: str) -> bool:
    """A keyword value that is one of a few words (case insensitive)."""
    flag = words.get((value or "").strip().lower())
    if flag is None:
        raise ValueError(f"invalid {keyword} value {value!r} ({expected})")
    return flag


def parse_mode(value: str | None) -> bool:
    return _word(value, "ftp.mode", {"active": True, "passive": False}, "active or passive")


def match_mode(arg: bool, obj: Any, ctx: TxMatchContext) -> bool | None:
    tx = _tx(obj)
    if tx is None:
        return False
    if not tx.dyn_port:
        return False if tx.response_complete else None
    return tx.active == arg


def parse_reply_received(value: str | None) -> bool:
    return _word(value, "ftp.reply_received",
                 {"yes": True, "on": True, "no": False, "off": False}, "yes or no")


def match_reply_received(arg: bool, obj: Any, ctx: TxMatchContext) -> bool | None:
    tx = _tx(obj)
    if tx is None:
        return False
    return tx.done == arg


KEYWORDS: tuple[TxKeyword, ...] = (
    TxKeyword("ftpbounce", parse_ftpbounce, match_ftpbounce, direction=_TS,
              value_required=False, doc="detect FTP bounce attacks (PORT to another host)"),
    TxKeyword("ftp.dynamic_port", parse_dynamic_port, match_dynamic_port, direction=_TC,
              doc="match the data port negotiated by PORT/EPRT/PASV/EPSV"),
    TxKeyword("ftp.mode", parse_mode, match_mode, direction=_TC,
              doc="match the data channel mode (active or passive)"),
    TxKeyword("ftp.reply_received", parse_reply_received, match_reply_received,
              direction=_TC, doc="match whether the command got its reply (yes/no)"),
)
