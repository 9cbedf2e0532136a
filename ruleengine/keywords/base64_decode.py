"""Base64 decoding as Suricata does it (``DecodeBase64``, ``src/util-base64.c`` /
``rust/src/utils/base64.rs``) and the ``base64_decode`` keyword's window
(``src/detect-base64-decode.c``).

Modes:

* ``rfc4648``: the first byte outside the alphabet (``=`` excepted) ends the data; the
  partial last block still yields its bytes.
* ``rfc2045``: bytes outside the alphabet (line breaks, spaces...) are skipped.
* ``strict``: any byte outside the alphabet makes the whole decode fail.

``=`` counts as padding wherever it appears: a block ``QQ==`` yields one byte and decoding
goes on after it, as in Suricata.
"""

from __future__ import annotations

BASE64_DECODE_MAX = 65535  # Suricata's BASE64_DECODE_MAX: input bytes when ``bytes`` is 0

_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_VALUE = [-1] * 256
for _i, _c in enumerate(_ALPHABET):
    _VALUE[_c] = _i
_PAD = 0x3D  # '='


def _block(b: list[int], out: bytearray, n: int) -> None:
    """Append the first ``n`` (0-3) bytes of one decoded 4-symbol block."""
    v = (b[0] << 18) | (b[1] << 12) | (b[2] << 6) | b[3]
    out += v.to_bytes(3, "big")[:n]


def decode(data: bytes, mode: str = "rfc4648", limit: int = 0) -> bytes:
    """Decoded bytes (b"" when nothing decodes). ``limit`` > 0 caps the output size
    (Suricata's destination buffer)."""
    out = bytearray()
    block = [0, 0, 0, 0]
    idx = 0
    padding = 0
    valid = True
    rfc2045 = mode == "rfc2045"
    strict = mode == "strict"
    for ch in data:
        val = _VALUE[ch]
        if val < 0:
            if ch != _PAD:
                if rfc2045:
                    continue
                valid = False
                if strict:
                    return b""
                break
            padding += 1
            val = 0
        block[idx] = val
        idx += 1
        if idx == 4:
            n = 3 - min(padding, 3)
            if limit and len(out) + n > limit:
                return bytes(out)
            _block(block, out, n)
            idx = 0
            padding = 0
            block = [0, 0, 0, 0]
    if 0 < idx < 4 and not valid:
        # rfc4648 stopped at an invalid byte: the partial block still counts
        n = 3 - ((4 - idx) if idx > 1 else 2)
        if not limit or len(out) + n <= limit:
            _block(block, out, n)
    elif valid and idx > 0 and not rfc2045:
        n = 3 - (4 - idx)
        if n > 0 and (not limit or len(out) + n <= limit):
            _block(block, out, n)
    return bytes(out)


def base64_decode_window(
    buf: bytes, pos: int, *, nbytes: int, offset: int, relative: bool
) -> bytes:
    """``base64_decode``: the decoded bytes of ``buf`` from ``offset`` (after the previous
    match end ``pos`` when relative), reading at most ``nbytes`` input bytes; b"" when
    nothing decodes (the keyword does not match)."""
    start = pos if relative else 0
    if start > len(buf):
        return b""
    rest = len(buf) - start
    if offset:
        if offset >= rest:
            return b""
        start += offset
        rest -= offset
    n = min(rest, nbytes or BASE64_DECODE_MAX)
    if n <= 0:
        return b""
    return decode(buf[start : start + n], "rfc4648")
