from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from capture_backends import BACKENDS, load_backend
from capture_backends.base import Capability, CaptureBackend
from capture_backends.pcap_file import PcapError, PcapFileBackend
from ruleengine.decode.decoder import Decoder
from ruleengine.flow.table import FlowTable
from ruleengine.stream.tcp import TcpTracker

PCAPS = Path(__file__).resolve().parents[1] / "data" / "pcaps"
REQUEST = b"GET /index.html HTTP/1.1\r\nHost: example.test\r\nUser-Agent: fixture\r\n\r\n"
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 13\r\n\r\n<html></html>"
T0 = 1_700_000_000.0


def _run(backend: PcapFileBackend) -> tuple[bytes, bytes, Decoder]:
    """Decode + track + reassemble a whole capture; return both byte streams."""
    decoder = Decoder(backend.linktype)
    table = FlowTable()
    tracker = TcpTracker()
    streams = {True: bytearray(), False: bytearray()}
    for ts, data, pkt_id in backend.packets():
        assert pkt_id == 0
        pkt = decoder.decode(ts, data)
        if pkt is None or pkt.invalid or pkt.proto != 6:
            continue
        flow, to_server = table.lookup(pkt)
        for direction, chunk in tracker.process(flow, pkt, to_server).data:
            streams[direction].extend(chunk)
    for flow in table.flush():
        for direction, chunk in tracker.flush(flow).data:
            streams[direction].extend(chunk)
    return bytes(streams[True]), bytes(streams[False]), decoder


@pytest.mark.parametrize(
    ("name", "linktype"),
    [
        ("http-get.pcap", 1),
        ("http-get-ns.pcap", 1),
        ("http-get.pcapng", 1),
        ("http-get-sll.pcap", 113),
        ("http-get-raw.pcap", 101),
        ("http-get-qinq.pcap", 1),
    ],
)
def test_fixture_end_to_end(name: str, linktype: int) -> None:
    with PcapFileBackend(PCAPS / name) as backend:
        assert backend.linktype == linktype
        assert isinstance(backend, CaptureBackend)
        assert backend.capabilities == Capability.OFFLINE
        toserver, toclient, decoder = _run(backend)
        assert toserver == REQUEST and toclient == RESPONSE
        assert decoder.counters["decoder.pkts"] == 10 and decoder.counters["decoder.invalid"] == 0
        assert not backend.truncated and backend.warnings == []
        assert backend.position == backend.size_bytes


def test_timestamps_us_and_ns() -> None:
    for name in ("http-get.pcap", "http-get-ns.pcap", "http-get.pcapng"):
        stamps = [ts for ts, _, _ in PcapFileBackend(PCAPS / name).packets()]
        assert stamps[0] == pytest.approx(T0) and stamps[3] == pytest.approx(T0 + 0.003)


def test_fragments_fixture() -> None:
    backend = PcapFileBackend(PCAPS / "fragments.pcap")
    decoder = Decoder(backend.linktype)
    done = [p for ts, d, _ in backend.packets() if (p := decoder.decode(ts, d)) is not None]
    assert [p.ip_version for p in done] == [4, 6]
    assert all(p.payload == bytes(range(256)) * 8 and p.frag for p in done)


def test_registry_is_lazy_and_resolves() -> None:
    assert BACKENDS["pcap"]() is PcapFileBackend
    assert load_backend("pcap") is PcapFileBackend
    with pytest.raises(KeyError, match="unknown capture backend"):
        load_backend("nope")


# -- hand-built files ------------------------------------------------------------------


def _pcap(
    records: list[tuple[float, bytes]],
    *,
    endian: str = "<",
    magic: int = 0xA1B2C3D4,
    linktype: int = 1,
) -> bytes:
    out = bytearray(struct.pack(endian + "IHHiIII", magic, 2, 4, 0, 0, 65535, linktype))
    div = 1e9 if magic == 0xA1B23C4D else 1e6
    for ts, data in records:
        sec = int(ts)
        frac = round((ts - sec) * div)
        out += struct.pack(endian + "IIII", sec, frac, len(data), len(data)) + data
    return bytes(out)


def _block(btype: int, body: bytes, endian: str = "<") -> bytes:
    body = body + b"\0" * (-len(body) % 4)
    n = len(body) + 12
    return struct.pack(endian + "II", btype, n) + body + struct.pack(endian + "I", n)


def _shb(endian: str = "<") -> bytes:
    return _block(0x0A0D0D0A, struct.pack(endian + "IHHq", 0x1A2B3C4D, 1, 0, -1), endian)


def _idb(linktype: int, options: bytes = b"", endian: str = "<") -> bytes:
    return _block(1, struct.pack(endian + "HHI", linktype, 0, 0) + options, endian)


def _opt(code: int, value: bytes, endian: str = "<") -> bytes:
    return struct.pack(endian + "HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def _epb(if_id: int, ticks: int, data: bytes, endian: str = "<") -> bytes:
    hdr = struct.pack(
        endian + "IIIII", if_id, ticks >> 32, ticks & 0xFFFFFFFF, len(data), len(data)
    )
    return _block(6, hdr + data, endian)


FRAME = bytes(range(60))


def _write(tmp_path: Path, content: bytes, name: str = "x.pcap") -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


@pytest.mark.parametrize("endian", ["<", ">"])
@pytest.mark.parametrize("magic", [0xA1B2C3D4, 0xA1B23C4D])
def test_pcap_byte_orders_and_resolutions(tmp_path: Path, endian: str, magic: int) -> None:
    path = _write(tmp_path, _pcap([(10.5, FRAME), (11.25, FRAME[:20])], endian=endian, magic=magic))
    backend = PcapFileBackend(path)
    got = list(backend.packets())
    assert [(ts, bytes(d)) for ts, d, _ in got] == [(10.5, FRAME), (11.25, FRAME[:20])]


def test_pcap_fcs_bits_in_linktype_are_masked(tmp_path: Path) -> None:
    path = _write(tmp_path, _pcap([(1.0, FRAME)], linktype=0x10000000 | 113))
    assert PcapFileBackend(path).linktype == 113


def test_pcapng_resolution_offset_and_block_kinds(tmp_path: Path) -> None:
    tsresol_ns = _opt(9, b"\x09") + _opt(14, struct.pack("<q", 100)) + _opt(0, b"")
    content = (
        _shb()
        + _idb(1, tsresol_ns)
        + _block(0xBAD, b"unknown block is skipped")
        + _epb(0, 1_500_000_000, FRAME)  # 1.5 s + 100 s offset
        + _block(3, struct.pack("<I", len(FRAME)) + FRAME)  # SPB: previous timestamp
        + _block(2, struct.pack("<HHIIII", 0, 0, 0, 2_000_000_000, 10, 10) + FRAME[:10])  # OPB
    )
    backend = PcapFileBackend(_write(tmp_path, content, "x.pcapng"))
    got = [(ts, bytes(d)) for ts, d, _ in backend.packets()]
    assert got == [(101.5, FRAME), (101.5, FRAME), (102.0, FRAME[:10])]
    assert backend.warnings == [] and not backend.truncated


def test_pcapng_binary_tsresol_and_big_endian(tmp_path: Path) -> None:
    content = _shb(">") + _idb(101, _opt(9, b"\x8a", ">"), ">") + _epb(0, 3 * 1024, FRAME, ">")
    backend = PcapFileBackend(_write(tmp_path, content, "x.pcapng"))
    assert backend.linktype == 101
    assert [ts for ts, _, _ in backend.packets()] == [3.0]


def test_pcapng_other_linktype_interface_is_skipped_with_warning(tmp_path: Path) -> None:
    content = (
        _shb() + _idb(1) + _idb(113) + _epb(0, 1, FRAME) + _epb(1, 2, FRAME) + _epb(0, 3, FRAME)
    )
    backend = PcapFileBackend(_write(tmp_path, content, "x.pcapng"))
    assert len(list(backend.packets())) == 2
    assert backend.skipped_other_linktype == 1
    assert "link type 113" in backend.warnings[0]


def test_pcapng_packet_for_unknown_interface(tmp_path: Path) -> None:
    content = _shb() + _idb(1) + _epb(5, 1, FRAME) + _epb(0, 1, FRAME)
    backend = PcapFileBackend(_write(tmp_path, content, "x.pcapng"))
    assert len(list(backend.packets())) == 1
    assert "unknown interface 5" in backend.warnings[0]


def test_pcapng_second_section_resets_interfaces(tmp_path: Path) -> None:
    content = _shb() + _idb(1) + _epb(0, 1, FRAME) + _shb(">") + _idb(1, endian=">")
    content += _epb(0, 2, FRAME, ">")
    backend = PcapFileBackend(_write(tmp_path, content, "x.pcapng"))
    assert len(list(backend.packets())) == 2


class TestDamagedFiles:
    def test_truncated_record_data(self, tmp_path: Path) -> None:
        content = _pcap([(1.0, FRAME), (2.0, FRAME)])
        backend = PcapFileBackend(_write(tmp_path, content[:-5]))
        assert len(list(backend.packets())) == 1
        assert backend.truncated and "truncated packet" in backend.warnings[0]

    def test_truncated_record_header(self, tmp_path: Path) -> None:
        content = _pcap([(1.0, FRAME)]) + b"\x01\x02\x03"
        backend = PcapFileBackend(_write(tmp_path, content))
        assert len(list(backend.packets())) == 1
        assert backend.truncated and "record header" in backend.warnings[0]

    def test_bogus_record_length(self, tmp_path: Path) -> None:
        content = _pcap([(1.0, FRAME)]) + struct.pack("<IIII", 1, 0, 0x7FFFFFFF, 60)
        backend = PcapFileBackend(_write(tmp_path, content))
        assert len(list(backend.packets())) == 1
        assert backend.truncated and "bogus record length" in backend.warnings[0]

    def test_truncated_pcapng(self, tmp_path: Path) -> None:
        content = _shb() + _idb(1) + _epb(0, 1, FRAME) + _epb(0, 2, FRAME)
        backend = PcapFileBackend(_write(tmp_path, content[:-9], "x.pcapng"))
        assert len(list(backend.packets())) == 1
        assert backend.truncated

    def test_pcapng_bad_block_length(self, tmp_path: Path) -> None:
        content = _shb() + _idb(1) + struct.pack("<II", 6, 7) + b"\0" * 20
        backend = PcapFileBackend(_write(tmp_path, content, "x.pcapng"))
        assert list(backend.packets()) == []
        assert backend.truncated and "bogus pcapng block length" in backend.warnings[0]

    @pytest.mark.parametrize(
        ("content", "message"),
        [
            (b"", "only 0 bytes"),
            (b"abc", "only 3 bytes"),
            (b"this is not a capture file at all", "unknown magic"),
            (struct.pack("<I", 0xA1B2C3D4) + b"\0" * 4, "truncated pcap file header"),
            (struct.pack("<IHHiIII", 0xA1B2C3D4, 9, 4, 0, 0, 65535, 1), "unsupported pcap version"),
            (struct.pack("<II", 0x0A0D0D0A, 28) + b"\0" * 20, "byte-order magic"),
        ],
    )
    def test_not_a_capture(self, tmp_path: Path, content: bytes, message: str) -> None:
        with pytest.raises(PcapError, match=message):
            PcapFileBackend(_write(tmp_path, content))

    def test_missing_file(self, tmp_path: Path) -> None:
        with pytest.raises(PcapError, match="cannot open"):
            PcapFileBackend(tmp_path / "missing.pcap")
        assert issubclass(PcapError, ValueError)  # the CLI catches ValueError/OSError

    def test_directory(self, tmp_path: Path) -> None:
        with pytest.raises(PcapError, match="not a regular file"):
            PcapFileBackend(tmp_path)

    def test_fifo_is_refused_without_blocking(self, tmp_path: Path) -> None:
        fifo = tmp_path / "fifo"
        os.mkfifo(fifo)
        with pytest.raises(PcapError, match="not a regular file"):
            PcapFileBackend(fifo)

    def test_close_stops_iteration(self, tmp_path: Path) -> None:
        backend = PcapFileBackend(_write(tmp_path, _pcap([(1.0, FRAME)] * 5)))
        it = backend.packets()
        next(it)
        backend.close()
        backend.close()  # idempotent
        assert list(it) == []
        assert list(backend.packets()) == []


FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
SEED_PCAP = (PCAPS / "http-get.pcap").read_bytes()
SEED_PCAPNG = (PCAPS / "http-get.pcapng").read_bytes()


@FUZZ
@given(
    seed=st.sampled_from([SEED_PCAP, SEED_PCAPNG]),
    flips=st.lists(st.tuples(st.integers(0, 5000), st.integers(0, 255)), max_size=6),
    cut=st.integers(0, 5000),
)
def test_fuzzed_files_never_raise_while_reading(
    tmp_path: Path, seed: bytes, flips: list[tuple[int, int]], cut: int
) -> None:
    raw = bytearray(seed)
    for pos, value in flips:
        raw[pos % len(raw)] = value
    path = _write(tmp_path, bytes(raw[: cut % (len(raw) + 1)]))
    try:
        backend = PcapFileBackend(path)
    except PcapError:
        return
    decoder = Decoder(backend.linktype)
    for ts, data, _ in backend.packets():
        decoder.decode(ts, data)
    backend.close()


@FUZZ
@given(st.binary(max_size=300))
def test_random_files(tmp_path: Path, content: bytes) -> None:
    path = _write(tmp_path, content)
    try:
        backend = PcapFileBackend(path)
    except PcapError:
        return
    list(backend.packets())
