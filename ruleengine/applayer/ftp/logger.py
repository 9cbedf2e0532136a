"""The EVE ``ftp`` object (``EveFTPLogCommand``, ``src/output-json-ftp.c``)::

    "ftp": {"command": "PORT", "command_data": "10,0,0,1,156,64", "command_truncated": false,
            "completion_code": ["200"], "reply": ["PORT command successful"],
            "dynamic_port": 40000, "mode": "active", "reply_received": "yes",
            "reply_truncated": false}

``command`` only for a known command; ``command_data`` (and ``command_truncated``) when the
line has more than the command; per reply line a ``completion_code`` when it starts with three
digits (the reply text then starts after the fourth character) and the text in ``reply``;
``dynamic_port`` when negotiated; ``mode`` for PORT/EPRT; ``reply_received`` yes/no. One event
per transaction once its reply came, or at the flow's end.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ruleengine.applayer.ftp.detect import command_data
from ruleengine.applayer.ftp.parser import FtpTransaction


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def ftp_object(tx: FtpTransaction) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if tx.command is not None:
        out["command"] = tx.command
        data = command_data(tx)
        if len(tx.request) > len(tx.command):
            out["command_data"] = _text(data or b"")
            out["command_truncated"] = tx.request_truncated
    codes: list[str] = []
    replies: list[str] = []
    truncated = False
    for reply in tx.replies:
        truncated = truncated or reply.truncated
        line = reply.line
        if not line:
            continue
        offset = 0
        if len(line) >= 3 and line[:3].isdigit():
            codes.append(_text(line[:3]))
            offset = 4
        if len(line) >= offset:
            replies.append(_text(line[offset:]))
    if codes:
        out["completion_code"] = codes
    if replies:
        out["reply"] = replies
    if tx.dyn_port:
        out["dynamic_port"] = tx.dyn_port
    if tx.command in ("PORT", "EPRT"):
        out["mode"] = "active" if tx.active else "passive"
    out["reply_received"] = "yes" if tx.done else "no"
    out["reply_truncated"] = truncated
    return out


def eve_ftp(tx: Any, options: Mapping[str, Any]) -> dict[str, Any] | None:
    if not isinstance(tx, FtpTransaction):
        return None
    return ftp_object(tx)
