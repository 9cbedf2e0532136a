"""Fuzz targets: one function per component, bytes in, an exception out only on a bug.

Each target takes any bytes and drives one component the way the engine does. A target
fails (raises) when the component raised, or when one of the engine's safety nets caught
something (``decoder.internal_error``, ``stream.internal_error``, a parser's
``internal_errors``): a net that fired is a bug the fuzzer found, even though the engine
would have survived it. Hostile input is allowed to produce anomaly events, warnings and
clean ``PcapError`` messages, never anything else.

The same targets serve the short runs in the pytest suite (``test_targets.py``), the long
runs (``python -m tests.fuzz``, ``make fuzz``, under atheris when it is installed) and the
replay of reproducers (``tests/fuzz/crashes/``).
"""

from __future__ import annotations

import contextlib
import os
import struct
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("RULEENGINE_STRICT", "1")


class FuzzFailure(AssertionError):
    """A safety net fired or an invariant broke (the input is a reproducer)."""


@dataclass(frozen=True)
class Target:
    name: str
    run: Callable[[bytes], None]
    # which seed family (see tests/fuzz/seeds.py) feeds this target
    seeds: str


# -- pcap / pcapng reader -------------------------------------------------------------

_TMP: list[str] = []


def _scratch_path() -> str:
    """One scratch file per process (the reader takes a path and maps it)."""
    if not _TMP:
        base = "/dev/shm" if os.path.isdir("/dev/shm") else None
        fd, path = tempfile.mkstemp(prefix="fuzz-pcap-", suffix=".pcap", dir=base)
        os.close(fd)
        _TMP.append(path)
    return _TMP[0]


def cleanup() -> None:
    for path in _TMP:
        with contextlib.suppress(OSError):
            os.unlink(path)
    _TMP.clear()


def pcap_reader(data: bytes) -> None:
    from capture_backends.pcap_file import PcapError, PcapFileBackend

    path = _scratch_path()
    with open(path, "wb") as fh:
        fh.write(data)
    try:
        backend = PcapFileBackend(path)
    except PcapError:
        return  # a clean one-line refusal: what a bad file should get
    with backend:
        count = 0
        for ts, frame, _pkt_id in backend.packets():
            if not isinstance(frame, bytes | memoryview | bytearray):
                raise FuzzFailure(f"frame of type {type(frame).__name__}")
            float(ts)
            count += 1
        if count != backend.packets_read:
            raise FuzzFailure(f"yielded {count} packets, counted {backend.packets_read}")


# -- decoders ---------------------------------------------------------------------------

LINKTYPES = (0, 1, 12, 101, 108, 113, 228, 229, 276, 104)  # appended: keeps old indexes
_DECODERS: dict[int, Any] = {}


def decoder(data: bytes) -> None:
    """First byte picks the link type; the rest is one frame. Decoders are kept per link
    type across inputs, so defragmentation state carries from one input to the next, as
    it does from packet to packet."""
    from ruleengine.decode.decoder import Decoder

    if not data:
        return
    linktype = LINKTYPES[data[0] % len(LINKTYPES)]
    dec = _DECODERS.get(linktype)
    if dec is None or len(_DECODERS) > 64:
        dec = _DECODERS[linktype] = Decoder(linktype)
    pkt = dec.decode(1.0, data[1:])
    if pkt is not None:
        if "decoder.internal_error" in (pkt.events or []):
            raise FuzzFailure("decoder.internal_error")
        if not isinstance(pkt.payload, bytes):
            raise FuzzFailure("payload is not bytes")


# -- TCP reassembly ---------------------------------------------------------------------

_FLAGS = ("S", "SA", "A", "PA", "FA", "R", "RA", "F", "FPA", "SF", "", "U", "PAU", "E")
_REC = struct.Struct("!BBhhB")  # dir|flags, -, seq offset, ack offset, payload length


def packet_script(data: bytes) -> Iterator[tuple[bool, str, int, int, bytes]]:
    """Bytes -> TCP packets of one conversation: (to_server, flags, seq off, ack off,
    payload). Records are 7 bytes of header and up to 255 bytes of payload."""
    pos = 0
    while pos + _REC.size <= len(data):
        head, _pad, seq, ack, length = _REC.unpack_from(data, pos)
        pos += _REC.size
        payload = data[pos : pos + length]
        pos += length
        yield bool(head & 0x80), _FLAGS[(head & 0x7F) % len(_FLAGS)], seq, ack, payload


def encode_script(packets: list[tuple[bool, str, int, int, bytes]]) -> bytes:
    """The inverse of :func:`packet_script` (seeds)."""
    out = bytearray()
    for to_server, flags, seq, ack, payload in packets:
        payload = payload[:255]
        head = (0x80 if to_server else 0) | _FLAGS.index(flags)
        out += _REC.pack(head, 0, seq, ack, len(payload)) + payload
    return bytes(out)


_TCP_BITS = {"F": 0x01, "S": 0x02, "R": 0x04, "P": 0x08, "A": 0x10, "U": 0x20, "E": 0x40}
_CLIENT, _SERVER = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def tcp_frame(flags: str, seq: int, ack: int, payload: bytes, to_server: bool) -> bytes:
    """An Ethernet/IPv4/TCP frame with valid checksums (scapy is too slow for a fuzz loop)."""
    src, dst = (_CLIENT, _SERVER) if to_server else (_SERVER, _CLIENT)
    sport, dport = (40000, 80) if to_server else (80, 40000)
    bits = sum(_TCP_BITS[c] for c in flags)
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, bits, 65535, 0, 0) + payload
    csum = _checksum(src + dst + struct.pack("!BBH", 0, 6, len(tcp)) + tcp)
    tcp = tcp[:16] + struct.pack("!H", csum) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 1, 0, 64, 6, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
    return b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00" + ip + tcp


def tcp_reassembly(data: bytes) -> None:
    """One conversation through decoder, flow table and tracker, as the pipeline runs them."""
    from ruleengine.decode.decoder import Decoder
    from ruleengine.flow.table import FlowTable
    from ruleengine.stream.tcp import StreamConfig, TcpTracker

    depth = 4096
    opts = data[0] if data else 0
    tracker = TcpTracker(StreamConfig(midstream=bool(opts & 1), inline=bool(opts & 2),
                                      reassembly_depth=depth))
    dec, table = Decoder(1), FlowTable()
    isn = {True: 1000, False: 5000}
    got = {True: 0, False: 0}
    events: list[str] = []
    flow = None
    ts = 0.0
    for to_server, flags, seq, ack, payload in packet_script(data[1:]):
        ts += 0.001
        frame = tcp_frame(flags, (isn[to_server] + seq) % 2**32,
                          (isn[not to_server] + ack) % 2**32, payload, to_server)
        pkt = dec.decode(ts, frame)
        if pkt is None:
            raise FuzzFailure("a valid frame did not decode")
        flow, direction = table.lookup(pkt)
        upd = tracker.process(flow, pkt, direction)
        events += upd.events
        for side, chunk in upd.data:
            got[side] += len(chunk)
    if flow is not None:
        upd = tracker.flush(flow)
        events += upd.events
        for side, chunk in upd.data:
            got[side] += len(chunk)
    if "stream.internal_error" in events:
        raise FuzzFailure("stream.internal_error")
    if got[True] > depth or got[False] > depth:
        raise FuzzFailure(f"reassembled past reassembly.depth: {got}")


# -- app-layer parsers ------------------------------------------------------------------


def chunk_script(data: bytes) -> Iterator[tuple[bool, bytes]]:
    """Bytes -> directional chunks: a head byte (high bit: to client; low 7 bits: length
    - 1) and the chunk."""
    pos = 0
    while pos < len(data):
        head = data[pos]
        length = (head & 0x7F) + 1
        yield not head & 0x80, data[pos + 1 : pos + 1 + length]
        pos += 1 + length


def encode_chunks(chunks: list[tuple[bool, bytes]]) -> bytes:
    """The inverse of :func:`chunk_script` (seeds); long chunks are split."""
    out = bytearray()
    for to_server, chunk in chunks:
        for i in range(0, len(chunk), 128):
            part = chunk[i : i + 128]
            out.append((0 if to_server else 0x80) | (len(part) - 1))
            out += part
    return bytes(out)


def _exercise_tx(spec: Any, tx: Any) -> None:
    """Everything the engine reads from a transaction: loggers and buffer getters."""
    for logger in (spec.eve_logger, spec.alert_logger, spec.eve_extra):
        if logger is not None:
            logger(tx, {"extended": True, "custom": None})
    for buf in spec.buffers:
        for getter in (buf.getter, buf.getter_toclient):
            if getter is not None:
                getter(tx)
    tx.request_complete  # noqa: B018 - properties the engine reads
    tx.response_complete  # noqa: B018


def applayer_target(name: str, ipproto: int) -> Callable[[bytes], None]:
    def run(data: bytes) -> None:
        from ruleengine.applayer import registry

        spec = registry.by_name()[name]
        parser = registry.make_parser(name, registry.default_settings(), ipproto)
        if parser is None:
            return
        for to_server, chunk in chunk_script(data):
            parser.feed(to_server, chunk, 1.0)
            # the newest transactions as they progress (all of them after each chunk would
            # make a case quadratic in its datagrams; the engine deletes inspected ones)
            for tx in list(parser.transactions)[-4:]:
                _exercise_tx(spec, tx)
            if hasattr(parser, "expectations"):
                parser.expectations.clear()
        parser.close()
        for tx in list(parser.transactions):
            _exercise_tx(spec, tx)
        parser.encrypted  # noqa: B018
        if getattr(parser, "internal_errors", 0):
            raise FuzzFailure(f"{name} parser safety net fired")

    return run


# -- rule loader ------------------------------------------------------------------------


def rule_loader(data: bytes) -> None:
    from ruleengine.rules.loader import load_rule_text

    text = data.decode("utf-8", "surrogateescape")
    ruleset = load_rule_text(text, file="fuzz.rules")
    for diag in ruleset.diagnostics:
        str(diag.message)
    ruleset.summary()


# -- the registry -----------------------------------------------------------------------


def _applayer_targets() -> list[Target]:
    from ruleengine.applayer import registry

    out = []
    for spec in registry.protocols():
        if spec.make_parser is None:
            continue
        for ipproto in sorted(spec.ipprotos):
            suffix = "" if len(spec.ipprotos) == 1 else ("-udp" if ipproto == 17 else "-tcp")
            out.append(Target(f"applayer-{spec.name}{suffix}",
                              applayer_target(spec.name, ipproto), f"applayer:{spec.name}"))
    return out


def all_targets() -> dict[str, Target]:
    targets = [
        Target("pcap", pcap_reader, "pcap"),
        Target("decoder", decoder, "frames"),
        Target("tcp-reassembly", tcp_reassembly, "tcp"),
        *_applayer_targets(),
        Target("rules", rule_loader, "rules"),
    ]
    return {t.name: t for t in targets}


def crash_dir() -> Path:
    return Path(__file__).resolve().parent / "crashes"
