"""When and what to inspect of a growing HTTP body (Suricata's inspection windows).

Suricata does not inspect a body on every new byte: it waits until ``minimal-inspect-size``
bytes are there (or the body is complete, or the body limit is reached), then inspects again
whenever new data arrived, each time including up to ``inspect-window`` bytes of already
inspected data before the new bytes so patterns spanning the boundary still match
(``src/detect-http-client-body.c``, ``src/detect-file-data.c``). Suricata randomises the two
sizes by +-10% per flow; this engine uses them as configured, for reproducible results.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ruleengine.applayer.http1.config import HttpConfig
    from ruleengine.applayer.http1.tx import HttpTransaction


def inspect_range(
    *,
    seen: int,
    inspected: int,
    complete: bool,
    body_limit: int,
    min_size: int,
    window: int,
) -> tuple[int, int] | None:
    """``(start, end)`` offsets of the body slice to inspect now, or None to wait.

    ``seen`` is the number of body bytes available (bounded by the body limit), ``inspected``
    how far detection already looked (0 at first).
    """
    if seen <= inspected:
        return None
    under_limit = body_limit == 0 or seen < body_limit
    if under_limit and seen < min_size and not complete:
        return None
    start = 0
    if inspected > min_size:
        new = seen - inspected
        if new < window:
            short = window - new
            start = 0 if inspected < short else inspected - short
        else:
            start = inspected - window // 4
    return start, seen


def body_inspect_range(
    tx: HttpTransaction, to_server: bool, config: HttpConfig, inspected: int
) -> tuple[int, int] | None:
    """:func:`inspect_range` for the request (``to_server``) or response body of ``tx``."""
    sizes = config.body(to_server)
    if to_server:
        body, complete = tx.request_body, tx.request_body_complete
    else:
        body, complete = tx.response_body, tx.response_body_complete
    return inspect_range(seen=len(body), inspected=inspected, complete=complete,
                         body_limit=sizes.limit, min_size=sizes.min_size, window=sizes.window)
