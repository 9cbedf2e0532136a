"""TCP option walk (``TransportDecoder._tcp_options``, inline for speed) against the shared
``option_kinds`` walk it replaced: the same events and the same verdict for every option
list, and the NOP-NOP-timestamps shortcut only for that exact layout."""

from __future__ import annotations

import random

from ruleengine.decode.base import option_kinds
from ruleengine.decode.decoder import Decoder
from ruleengine.decode.packet import Packet

_ONCE = {2, 3, 4, 8}


def _reference(opts: bytes) -> tuple[bool, list[str]]:
    """What the decoder did before: option_kinds, then a set of the once-only kinds."""
    kinds, problem = option_kinds(opts, 0, len(opts))
    events: list[str] = []
    seen: set[int] = set()
    for kind in kinds:
        if kind in _ONCE and kind in seen:
            events.append("tcp.opt_duplicate")
        seen.add(kind)
    if problem is not None:
        events.append("tcp.opt_invalid_len")
        return False, events
    return True, events


def _walk(opts: bytes | memoryview) -> tuple[bool, list[str]]:
    pkt = Packet(0.0, 0, 0)
    ok = Decoder(1)._tcp_options(pkt, opts, 0, len(opts))
    return ok, pkt.events or []


TS = b"\x08\x0a" + bytes(8)
MSS = b"\x02\x04\x05\xb4"


def test_known_layouts() -> None:
    assert _walk(b"\x01\x01" + TS) == (True, [])
    assert _walk(memoryview(b"\x01\x01" + TS)) == (True, [])
    assert _walk(b"\x01\x01" + TS + b"\x01\x01" + TS) == (True, ["tcp.opt_duplicate"])
    assert _walk(MSS + MSS) == (True, ["tcp.opt_duplicate"])
    # 12 bytes starting like NOP NOP TS but with another length: not the shortcut
    assert _walk(b"\x01\x01\x08\x0b" + bytes(8)) == (False, ["tcp.opt_invalid_len"])
    assert _walk(b"\x01\x01\x08\x0a" + bytes(6) + b"\x02") == _reference(
        b"\x01\x01\x08\x0a" + bytes(6) + b"\x02")
    assert _walk(b"\x01\x02") == (False, ["tcp.opt_invalid_len"])  # kind without length
    assert _walk(b"\x00\x02\x01") == (True, [])  # EOL ends the list


def test_random_option_lists_match_the_reference() -> None:
    rng = random.Random(12)
    pieces = [b"\x00", b"\x01", MSS, TS, b"\x03\x03\x07", b"\x04\x02", b"\x05\x0a" + bytes(8),
              b"\x1e\x04ab", b"\x08", b"\x02\x01", b"\x02\x28", b"\xfe\x02"]
    for _ in range(5000):
        opts = b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 6)))[:40]
        if rng.random() < 0.2:
            opts = rng.randbytes(rng.randint(0, 40))
        assert _walk(opts) == _reference(opts), opts.hex()
