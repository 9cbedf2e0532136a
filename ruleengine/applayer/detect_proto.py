"""Application protocol detection from the first bytes of a direction (never from the port).

Mirrors Suricata's HTTP pattern probing (``src/app-layer-htp.c``
``HTPRegisterPatternsForProtocolDetection``): a request starts with a known method followed by
a space or tab; a response starts with ``HTTP/``. Matching is case-insensitive.
"""

from __future__ import annotations

from typing import Literal

HTTP_METHODS: tuple[bytes, ...] = (
    b"GET", b"PUT", b"POST", b"HEAD", b"TRACE", b"OPTIONS", b"CONNECT", b"DELETE", b"PATCH",
    b"PROPFIND", b"PROPPATCH", b"MKCOL", b"COPY", b"MOVE", b"LOCK", b"UNLOCK", b"CHECKOUT",
    b"UNCHECKOUT", b"CHECKIN", b"UPDATE", b"LABEL", b"REPORT", b"MKWORKSPACE", b"MKACTIVITY",
    b"MERGE", b"INVALID", b"VERSION-CONTROL", b"BASELINE-CONTROL",
)
_REQUEST_PATTERNS = tuple(m + sep for m in HTTP_METHODS for sep in (b" ", b"\t"))
_RESPONSE_PATTERN = b"HTTP/"


def detect_app_proto(data: bytes, to_server: bool) -> str | Literal[False] | None:
    """``"http"`` when the bytes look like HTTP, ``None`` when more data is needed, ``False``
    when they are definitely not HTTP."""
    head = bytes(data[:24]).upper()
    if not head:
        return None
    patterns = _REQUEST_PATTERNS if to_server else (_RESPONSE_PATTERN,)
    undecided = False
    for pattern in patterns:
        if head.startswith(pattern):
            return "http"
        if len(head) < len(pattern) and pattern.startswith(head):
            undecided = True
    return None if undecided else False


def detect_app_proto_midstream(
    data: bytes, to_server: bool
) -> tuple[str | Literal[False] | None, bool]:
    """For flows picked up midstream: like :func:`detect_app_proto`, but a message of the
    other direction (a response in what was taken as the to-server side) is recognised too.
    Returns ``(result, reversed)``; ``reversed`` means the flow's direction should be swapped
    (Suricata's ``reverse_flow`` on protocol detection)."""
    result = detect_app_proto(data, to_server)
    if result == "http":
        return result, False
    other = detect_app_proto(data, not to_server)
    if other == "http":
        return other, True
    if result is None or other is None:
        return None, False
    return False, False
