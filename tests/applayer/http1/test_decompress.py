from __future__ import annotations

import gzip
import zlib

import pytest

from ruleengine.applayer.http1.decompress import Decompressor, parse_content_encoding


@pytest.mark.parametrize(
    ("value", "limit", "expected"),
    [
        (b"gzip", 2, (["gzip"], False, False)),
        (b"x-gzip", 2, (["gzip"], False, False)),
        (b"gzip, deflate", 2, (["deflate", "gzip"], False, False)),  # undone last-first
        (b"deflate , deflate", 2, (["deflate", "deflate"], False, False)),
        (b"gzip,gzip,gzip", 2, (["gzip", "gzip"], False, True)),  # the first two are kept
        (b"gzip,gzip,gzip", 0, (["gzip", "gzip", "gzip"], False, False)),
        (b"identity", 2, ([], False, False)),
        (b"gz\x00ip", 2, (["gzip"], False, False)),  # NULs ignored
        (b"deflate\xa0", 2, (["deflate"], True, False)),  # contains the name: abnormal
        (b"br", 2, (["br"], False, False)),
        (b"compress", 2, ([], True, False)),  # unknown coding: left as is
        (b"lzma", 2, ([], False, False)),  # lzma off by default
    ],
)
def test_content_encoding_tokens(value: bytes, limit: int, expected: tuple) -> None:
    assert parse_content_encoding(value, lzma_enabled=False, layer_limit=limit) == expected


def test_lzma_when_enabled() -> None:
    assert parse_content_encoding(b"lzma", lzma_enabled=True)[0] == ["lzma"]


def test_streaming_in_tiny_pieces() -> None:
    payload = gzip.compress(gzip.compress(b"hello world" * 50))
    dec = Decompressor(["gzip", "gzip"], 0)
    out = b"".join(dec.feed(payload[i : i + 3]) for i in range(0, len(payload), 3))
    assert out + dec.flush() == b"hello world" * 50


def test_gzip_header_oddities_are_tolerated() -> None:
    data = bytearray(gzip.compress(b"reserved flag bits set"))
    data[3] |= 0xE0  # reserved FLG bits: zlib refuses, libhtp ignores them
    assert Decompressor(["gzip"], 0).feed(bytes(data)) == b"reserved flag bits set"
    crc_broken = bytearray(gzip.compress(b"bad crc"))
    crc_broken[-8] ^= 0xFF
    assert Decompressor(["gzip"], 0).feed(bytes(crc_broken)) == b"bad crc"


def test_bomb_limit_truncates_with_an_event() -> None:
    dec = Decompressor(["deflate"], 1000)
    out = dec.feed(zlib.compress(b"\x00" * 1_000_000))
    assert len(out) == 1000
    assert dec.events == ["http.compression_bomb"]
    assert dec.feed(b"more") == b""


def test_undecodable_data_passes_through_once_with_an_event() -> None:
    dec = Decompressor(["gzip"], 0)
    assert dec.feed(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\xff\xff\xff garbage") == (
        b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\xff\xff\xff garbage")
    assert dec.events == ["http.gzip_decompression_failed"]
    assert dec.feed(b"rest") == b"rest"


def test_brotli_alone_and_layered() -> None:
    brotli = pytest.importorskip("brotli")
    data = brotli.compress(b"brotli body " * 100)
    dec = Decompressor(["br"], 0)
    out = b"".join(dec.feed(data[i : i + 7]) for i in range(0, len(data), 7))
    assert out + dec.flush() == b"brotli body " * 100
    layered = gzip.compress(brotli.compress(b"inner"))  # Content-Encoding: br, gzip
    codings, _, _ = parse_content_encoding(b"br, gzip", lzma_enabled=False)
    assert Decompressor(codings, 0).feed(layered) == b"inner"
    bounded = Decompressor(["br"], 100)
    assert len(bounded.feed(brotli.compress(b"z" * 100_000))) == 100


def test_unterminated_gzip_header_does_not_buffer_forever() -> None:
    dec = Decompressor(["gzip"], 0)
    header = b"\x1f\x8b\x08\x08\x00\x00\x00\x00\x00\x03"  # FNAME set, never terminated
    out = dec.feed(header) + b"".join(dec.feed(b"n" * 4096) for _ in range(20))
    assert dec.events == ["http.gzip_decompression_failed"]
    assert out  # the data passes through once the header is given up on
