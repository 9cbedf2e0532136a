"""Test helper: replay a suricata-verify pcap through the HTTP parser and the detection
engine (simple in-order TCP reassembly with scapy; no stream engine, no pipeline), so
detection semantics can be checked against Suricata's expected alert counts."""

from __future__ import annotations

import ipaddress
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scapy.layers.inet import IP, TCP
from scapy.layers.inet6 import IPv6
from scapy.utils import PcapReader

from ruleengine.applayer.http1 import HttpParser
from ruleengine.applayer.http1.config import HttpConfig
from ruleengine.decode.packet import IPPROTO_TCP, Packet
from ruleengine.detect.engine import DetectEngine
from ruleengine.rules.loader import load_rule_files
from tests.shared import SV_CORPUS

REPO = Path(__file__).resolve().parents[2]
CORPUS = SV_CORPUS


@dataclass
class _Flow:
    state: str = "new"
    alproto: str | None = None
    flowbits: set[str] = field(default_factory=set)
    detect: object | None = None
    parser: HttpParser = field(default_factory=lambda: HttpParser(HttpConfig()))
    client: tuple[str, int] | None = None
    next_seq: dict[bool, int | None] = field(default_factory=lambda: {True: None, False: None})
    pending: dict[bool, dict[int, bytes]] = field(default_factory=lambda: {True: {}, False: {}})
    progress: dict[int, tuple[int, int]] = field(default_factory=dict)
    seen: set[bool] = field(default_factory=set)


def _packet(
    ts: float, src: tuple[str, int], dst: tuple[str, int], flags: int, payload: bytes
) -> Packet:
    s, d = ipaddress.ip_address(src[0]), ipaddress.ip_address(dst[0])
    p = Packet(
        ts,
        0,
        len(payload) + 54,
        s.version,
        s.packed,
        d.packed,
        IPPROTO_TCP,
        src[1],
        dst[1],
        payload,
    )
    p.tcp_flags = flags
    return p


def _payload(ip: Any, tcp: Any) -> bytes:
    """TCP payload without Ethernet padding (scapy counts padding as payload)."""
    raw = bytes(tcp.payload)
    if isinstance(ip, IP):
        size = int(ip.len) - int(ip.ihl) * 4 - int(tcp.dataofs) * 4
    else:
        size = int(ip.plen) - int(tcp.dataofs) * 4
    return raw[: max(size, 0)]


def _reassemble(flow: _Flow, to_server: bool, seq: int, flags: int, payload: bytes) -> bytes:
    if flags & 0x02:
        flow.next_seq[to_server] = (seq + 1) & 0xFFFFFFFF
        if not payload:
            return b""
        seq = (seq + 1) & 0xFFFFFFFF
    if flow.next_seq[to_server] is None:
        flow.next_seq[to_server] = seq
    pending = flow.pending[to_server]
    if payload:
        pending.setdefault(seq, payload)
    out = bytearray()
    progressed = True
    while progressed:
        progressed = False
        for s, data in list(pending.items()):
            nxt = flow.next_seq[to_server]
            assert nxt is not None
            offset = (nxt - s) & 0xFFFFFFFF
            if offset < len(data):
                out += data[offset:]
                flow.next_seq[to_server] = (s + len(data)) & 0xFFFFFFFF
                del pending[s]
                progressed = True
            elif offset < 0x80000000:
                del pending[s]
    return bytes(out)


def _inspect_txs(
    engine: DetectEngine, flow: _Flow, pkt: Packet, to_server: bool, counts: Counter[int]
) -> None:
    for tx in flow.parser.transactions:
        progress = (int(tx.request_progress), int(tx.response_progress))
        if flow.progress.get(tx.tx_id) == progress:
            continue
        flow.progress[tx.tx_id] = progress
        for m in engine.inspect_tx(
            pkt, flow, to_server, tx, tx.request_complete, tx.response_complete
        ):
            if m.alert:
                counts[m.rule.sid] += 1


def replay(engine: DetectEngine, pcap: Path) -> Counter[int]:
    counts: Counter[int] = Counter()
    flows: dict[tuple[Any, ...], _Flow] = {}
    with PcapReader(str(pcap)) as reader:
        for frame in reader:
            ip = frame.getlayer(IP) or frame.getlayer(IPv6)
            if ip is None or TCP not in frame:
                continue
            tcp = frame[TCP]
            src, dst = (ip.src, int(tcp.sport)), (ip.dst, int(tcp.dport))
            flow = flows.setdefault(tuple(sorted((src, dst))), _Flow())
            flags = int(tcp.flags)
            if flow.client is None:
                flow.client = dst if flags & 0x12 == 0x12 else src
            to_server = src == flow.client
            flow.seen.add(to_server)
            if len(flow.seen) == 2 or flags & 0x10:
                flow.state = "established"
            payload = _payload(ip, tcp)
            data = _reassemble(flow, to_server, int(tcp.seq), flags, payload)
            pkt = _packet(float(frame.time), src, dst, flags, payload)
            if data:
                if flow.alproto is None:
                    flow.alproto = "http"
                flow.parser.feed(to_server, data)
            if flags & 0x05:
                flow.parser.close(to_server)
            for m in engine.inspect_packet(pkt, flow, to_server, data if payload else None):
                if m.alert:
                    counts[m.rule.sid] += 1
            _inspect_txs(engine, flow, pkt, to_server, counts)
    for flow in flows.values():
        flow.parser.close()
        assert flow.client is not None
        last = _packet(0.0, flow.client, flow.client, 0, b"")
        _inspect_txs(engine, flow, last, False, counts)
    return counts


def _packet_alert_max(entry: dict[str, Any]) -> int:
    """``packet-alert-max`` from the test's suricata.yaml (default 15)."""
    yaml_path = entry.get("suricata_yaml")
    if yaml_path and (CORPUS / yaml_path).exists():
        for line in (CORPUS / yaml_path).read_text(errors="replace").splitlines():
            if line.startswith("packet-alert-max:"):
                return int(line.split(":", 1)[1].strip())
    return 15


def load_index() -> list[dict[str, Any]]:
    path = CORPUS / "index.json"
    return list(json.loads(path.read_text())["tests"]) if path.exists() else []


def evaluate(entry: dict[str, Any]) -> tuple[dict[int, tuple[int, int]], list[int]]:
    """(sid -> (expected, got) for evaluated rules, sids the engine skipped)."""
    rules = load_rule_files([CORPUS / f for f in entry["rules"]]).rules
    engine = DetectEngine(rules, packet_alert_max=_packet_alert_max(entry))
    counts: Counter[int] = Counter()
    for pcap in entry["pcaps"]:
        counts.update(replay(engine, CORPUS / pcap["path"]))
    skipped = [r.sid for r, _ in engine.skipped]
    expected = {int(k): v for k, v in entry["expected_alerts_by_sid"].items()}
    loaded = {r.sid for r in rules}
    return (
        {
            sid: (n, counts.get(sid, 0))
            for sid, n in expected.items()
            if sid in loaded and sid not in skipped
        },
        skipped,
    )
