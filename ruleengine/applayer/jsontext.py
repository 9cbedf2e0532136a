"""Bytes as EVE text, shared by the protocol loggers and the EVE writer."""

from __future__ import annotations

from typing import Any


def text(value: Any) -> str | None:
    """A header or URI value as EVE text: UTF-8 when valid, else ASCII with ``\\xNN`` escapes
    for the other bytes (Suricata's jsonbuilder does the same)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return "".join(chr(b) if b < 0x80 else f"\\x{b:02x}" for b in raw)
    return str(value)


def as_int(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    try:
        return int(text(value) or "")
    except ValueError:
        return None
