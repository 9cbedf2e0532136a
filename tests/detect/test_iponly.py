"""IP-only rules by address table (``ruleengine.detect.iponly``): the table gives exactly
the headers whose addresses fit, and the engine's alerts are the reference engine's
(``prefilter=False``: every rule, every header tested one by one) on packets, and through
the whole pipeline on the pcaps of tests/ and the suricata-verify corpus."""

from __future__ import annotations

import ipaddress
import json
import random
from collections.abc import Sequence
from pathlib import Path

import pytest

from capture_backends.pcap_file import PcapFileBackend
from ruleengine.decode.decoder import Decoder
from ruleengine.decode.packet import IPPROTO_ICMP, IPPROTO_UDP
from ruleengine.detect.conditions import CompiledHeader
from ruleengine.detect.engine import DetectEngine, Match
from ruleengine.detect.iponly import IpOnlyTable, bits
from ruleengine.detect.trace import RuleTrace
from ruleengine.outputs.eve import EveWriter
from ruleengine.outputs.stats import Stats
from ruleengine.pipeline import Pipeline
from ruleengine.rules.loader import load_rule_files, load_rule_text
from ruleengine.rules.model import AddressSet, PortSet, Rule
from ruleengine.settings import EngineSettings
from tests.detect.helpers import FakeFlow, pkt, reply, rule
from tests.shared import SHARED, SV_CORPUS

REPO = Path(__file__).resolve().parents[2]
ET = SHARED / "corpus" / "rules" / "et-open-suricata-5.0.rules"


# ------------------------------------------------------------------ the table


def _random_set(rng: random.Random, version: int) -> AddressSet:
    """Overlapping networks in a small space, so ranges cross and nest."""
    base = ipaddress.ip_network("10.0.0.0/22" if version == 4 else "fd00::/118")

    def net() -> ipaddress.IPv4Network | ipaddress.IPv6Network:
        prefix = rng.randint(base.prefixlen, base.max_prefixlen)
        addr = int(base.network_address) + rng.randrange(base.num_addresses)
        return ipaddress.ip_network((addr, prefix), strict=False)

    kind = rng.random()
    if kind < 0.15:
        return AddressSet()
    include = tuple(net() for _ in range(rng.randint(0, 4)) if kind >= 0.3)
    exclude = tuple(net() for _ in range(rng.randint(0, 2)))
    return AddressSet(include=include, exclude=exclude)


def _address(rng: random.Random, version: int, headers: Sequence[CompiledHeader]) -> int:
    """Mostly range edges (and their neighbours): where an off-by-one would show."""
    edges = [v for h in headers for side in (h.src, h.dst)
             for iv in (side.include.get(version), side.exclude.get(version)) if iv
             for lo, hi in zip(iv.starts, iv.ends, strict=True) for v in (lo - 1, lo, hi, hi + 1)]
    if edges and rng.random() < 0.8:
        return max(0, rng.choice(edges))
    return int(ipaddress.ip_address("10.0.0.0" if version == 4 else "fd00::")) \
        + rng.randrange(1 << 11)


@pytest.mark.parametrize("seed", range(6))
def test_table_gives_exactly_the_headers_whose_addresses_fit(seed: int) -> None:
    rng = random.Random(seed)
    headers = [CompiledHeader((), _random_set(rng, v), PortSet(), _random_set(rng, v), PortSet(),
                              rng.random() < 0.3)
               for v in (4, 6) for _ in range(40)]
    table = IpOnlyTable(headers)
    for _ in range(3000):
        ver = rng.choice((4, 6))
        s, d = _address(rng, ver, headers), _address(rng, ver, headers)
        want = {i for i, h in enumerate(headers) if h.matches(6, ver, s, 1, d, 2)}
        assert set(bits(table.lookup(ver, s, d))) == want, (ver, s, d)
    # an address of no IP version the rules know: only ``any`` and pure exclusions
    want = {i for i, h in enumerate(headers) if h.matches(6, 0, 1, 1, 2, 2)}
    assert set(bits(table.lookup(0, 1, 2))) == want


def test_table_at_the_ends_of_the_address_space() -> None:
    def one(text: str) -> AddressSet:
        return AddressSet(include=(ipaddress.ip_network(text),))

    nets = ["0.0.0.0/32", "255.255.255.254/32", "255.255.255.255/32", "::/128",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/128"]
    headers = [CompiledHeader((), one(n), PortSet(), AddressSet(), PortSet(), False)
               for n in nets]
    table = IpOnlyTable(headers)
    for n, net in enumerate(nets):
        addr = ipaddress.ip_network(net).network_address
        assert bits(table.lookup(addr.version, int(addr), 7)) == [n]
    assert bits(table.lookup(6, (1 << 128) - 1, 7)) == []
    assert bits(table.lookup(4, 1, 7)) == []


def test_bits() -> None:
    assert bits(0) == []
    assert bits(0b10110) == [1, 2, 4]
    assert bits(1 << 900 | 1) == [0, 900]


# ------------------------------------------------------------------ the engine

IPONLY_RULES = (
    "alert ip 10.0.0.1 any -> any any (sid:1;)",
    "alert ip any any -> 10.0.0.2 any (sid:2;)",
    "alert ip [10.0.0.0/24,!10.0.0.1] any -> any any (sid:3;)",
    "alert ip !10.0.0.0/8 any -> any any (sid:4;)",
    "alert ip 10.0.0.2 any <> 10.0.0.1 any (sid:5;)",
    "alert tcp 10.0.0.0/16 any -> 10.0.0.2 any (sid:6;)",
    "alert udp any any -> 10.0.0.2 any (sid:7;)",
    "alert icmp 10.0.0.1 any -> any any (sid:8;)",
    "alert ip6 any any -> any any (sid:9;)",
    "alert ip fd00::1 any -> fd00::/64 any (sid:10;)",
    "alert ip any any -> any any (flowbits:set,seen; sid:11;)",
    "alert tcp any any -> any any (flowbits:isset,seen; flowbits:noalert; sid:12;)",
    "alert ip 192.168.0.0/16 any -> 10.0.0.2 any (sid:13;)",
    "alert ip [10.0.0.1,10.0.0.3] any -> ![10.0.0.1,10.0.0.3] any "
    "(threshold: type limit, track by_src, count 1, seconds 60; sid:14;)",
    "alert tcp any any -> any 80 (flags:S; sid:15;)",
)


def _sids(matches: list[Match]) -> list[int]:
    return sorted(m.rule.sid for m in matches)


def test_iponly_rules_once_per_flow_direction_as_the_reference() -> None:
    rules = [rule(t) for t in IPONLY_RULES]
    fast, ref = DetectEngine(rules), DetectEngine(rules, prefilter=False)
    assert fast._pkt_groups[6].iponly_table is not None
    assert ref._pkt_groups[6].iponly_table is None
    rng = random.Random(3)
    hosts = ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.1.0.1", "192.168.1.5", "8.8.8.8"]
    for _ in range(150):
        flow_f, flow_r = FakeFlow(alproto=None), FakeFlow(alproto=None)
        a, b = rng.choice(hosts), rng.choice(hosts)
        proto = rng.choice((6, 6, IPPROTO_UDP, IPPROTO_ICMP))
        for n in range(4):
            p = pkt(src=a, dst=b, proto=proto, flags=0x02 if n == 0 else 0x10) if n % 2 == 0 \
                else reply(src=b, dst=a, proto=proto, sport=80, dport=40000)
            to_server = n % 2 == 0
            got = _sids(fast.inspect_packet(p, flow_f, to_server))
            assert got == _sids(ref.inspect_packet(p, flow_r, to_server)), (a, b, proto, n)
            if n >= 2:  # IP-only rules are decided by the first packet of each direction
                assert not {s for s in got if s <= 14} - {12}
    # no flow (e.g. a packet of no tracked flow): tried on every packet
    assert _sids(fast.inspect_packet(pkt(), None, True)) == [1, 2, 5, 6, 11, 14]
    assert _sids(fast.inspect_packet(pkt(), None, True)) == [1, 2, 5, 6, 11, 14]
    v6 = pkt(src="fd00::1", dst="fd00::2")
    assert _sids(fast.inspect_packet(v6, FakeFlow(), True)) == [4, 9, 10, 11, 12]


def test_traced_iponly_rule_is_tried_whatever_the_addresses() -> None:
    fast = DetectEngine([rule(t) for t in IPONLY_RULES])
    trace = RuleTrace(13)
    assert fast.trace_rule(trace)
    assert _sids(fast.inspect_packet(pkt(), FakeFlow(), True)) == [1, 2, 5, 6, 11, 12, 14]
    assert trace.header_misses == 1  # explain sees the header fail, as without the table
    assert _sids(fast.inspect_packet(pkt(src="192.168.1.1"), FakeFlow(), True)) \
        == [2, 4, 11, 12, 13]


# ------------------------------------------------------------------ pcaps, whole pipeline


def _pcaps() -> list[Path]:
    found = sorted(p for p in (REPO / "tests").rglob("*.pcap*") if p.suffix in (".pcap", ".pcapng"))
    index = SV_CORPUS / "index.json"
    if index.exists():
        for test in json.loads(index.read_text())["tests"]:
            found.extend(SV_CORPUS / p["path"] for p in test["pcaps"])
    return found


def _addresses(pcap: Path) -> list[str]:
    """Every IP address of the capture, most frequent first."""
    counts: dict[bytes, int] = {}
    with PcapFileBackend(pcap) as backend:
        decoder = Decoder(backend.linktype)
        for ts, data, _ in backend.packets():
            p = decoder.decode(ts, bytes(data))
            if p is None or p.ip_version not in (4, 6):
                continue
            for a in (p.src, p.dst):
                counts[a] = counts.get(a, 0) + 1
    return [str(ipaddress.ip_address(a)) for a in sorted(counts, key=lambda a: -counts[a])]


def _generated_rules(addrs: list[str], first_sid: int) -> list[str]:
    """IP-only rules that fire on the capture: its own addresses, networks around them,
    negations, ``<>``, protocol and IP version variants, a flowbit set and checked."""
    out: list[str] = []
    for i, a in enumerate(addrs[:6]):
        net = ipaddress.ip_network(f"{a}/{24 if ':' not in a else 120}", strict=False)
        other = addrs[(i + 1) % len(addrs)]
        out += [f"alert ip {a} any -> any any", f"alert ip any any -> {a} any",
                f"alert ip [{net},!{a}] any -> any any", f"alert ip !{a} any -> {net} any",
                f"alert ip {a} any <> {other} any", f"alert tcp {net} any -> {other} any",
                f"alert udp any any -> {a} any", f"alert icmp {a} any -> any any",
                f"alert ip4 {net} any -> any any", f"alert ip6 any any -> !{a} any",
                f"alert ip {a} any -> any any (flowbits:set,ipo{i}; flowbits:noalert;",
                f"alert tcp any any -> any any (flowbits:isset,ipo{i};"]
    return [(t if t.endswith(";") else t + " (") + f" sid:{first_sid + n};)"
            for n, t in enumerate(out)]


def _alerts(engine: DetectEngine, pcap: Path, tmp: Path) -> list[tuple[object, ...]]:
    eve_path = tmp / "eve.json"
    eve_path.unlink(missing_ok=True)
    eve = EveWriter(eve_path, types={"alert"})
    pipeline = Pipeline(EngineSettings(), engine, eve=eve, stats=Stats(),
                        classify=lambda _c: None)
    with PcapFileBackend(pcap) as backend:
        pipeline.run(backend)
    eve.close()
    out = []
    for line in eve_path.read_text().splitlines():
        ev = json.loads(line)
        if ev.get("event_type") == "alert":
            out.append((ev.get("pcap_cnt"), ev["alert"]["signature_id"], ev.get("src_ip"),
                        ev.get("dest_ip"), ev["alert"].get("action")))
    return sorted(out, key=repr)


def _sv_rules(pcap: Path) -> list[Rule]:
    if not pcap.is_relative_to(SV_CORPUS):
        return []
    folder = SV_CORPUS / pcap.relative_to(SV_CORPUS).parts[0]
    files = sorted(folder.glob("*.rules"))
    return list(load_rule_files(files, use_cache=False).rules) if files else []


PCAPS = _pcaps()


@pytest.mark.parametrize("pcap", PCAPS, ids=[p.parent.name + "/" + p.name for p in PCAPS])
def test_pcap_alerts_are_the_reference_engines(pcap: Path, tmp_path: Path) -> None:
    addrs = _addresses(pcap)
    texts = _generated_rules(addrs, 90_000_000) if addrs else []
    ruleset = load_rule_text("\n".join(texts))
    rules = [*_sv_rules(pcap), *ruleset.rules]
    fast, ref = DetectEngine(rules), DetectEngine(rules, prefilter=False)
    got = _alerts(fast, pcap, tmp_path)
    assert got == _alerts(ref, pcap, tmp_path)
    assert fast.errors == ref.errors == 0
    if texts:
        assert got, "the generated IP-only rules fire on the capture's own addresses"


@pytest.fixture(scope="module")
def et_engines() -> tuple[DetectEngine, DetectEngine]:
    """ET Open's IP-only rules and its packet rules without a fast pattern (those that
    the reference engine can afford on every packet)."""
    if not ET.exists():
        pytest.skip("ET corpus not found")
    probe = DetectEngine(load_rule_files([ET]).rules)
    rules = sorted({id(cr.rule): cr.rule for g in probe._pkt_groups.values()
                    for pos in (*g.iponly, *g.always) for cr in (g.rules[pos],)}.values(),
                   key=lambda r: r.sid)
    assert len(rules) > 900
    return DetectEngine(rules), DetectEngine(rules, prefilter=False)


def test_et_iponly_rules_over_every_pcap_as_the_reference(
        et_engines: tuple[DetectEngine, DetectEngine], tmp_path: Path) -> None:
    fast, ref = et_engines
    for pcap in PCAPS:
        assert _alerts(fast, pcap, tmp_path) == _alerts(ref, pcap, tmp_path), pcap
    assert fast.errors == ref.errors == 0


def test_et_iponly_rules_on_their_own_addresses_as_the_reference(
        et_engines: tuple[DetectEngine, DetectEngine]) -> None:
    """ET's block lists fire on none of the captures: packets from and to the edges of
    the rules' own address ranges (and a home address) make them fire."""
    fast, ref = et_engines
    group = fast._pkt_groups[6]
    edges: list[str] = []
    for pos in group.iponly:
        header = group.rules[pos].header
        for side in (header.src, header.dst):
            iv = side.include.get(4)
            if iv is not None:
                edges += [str(ipaddress.ip_address(v)) for v in (iv.starts[0], iv.ends[-1])]
    rng = random.Random(5)
    hosts = [*rng.sample(edges, 300), "192.168.1.10", "10.1.2.3", "8.8.8.8"]
    fired = 0
    for n in range(600):
        a, b = rng.choice(hosts), rng.choice(hosts[-3:]) if n % 2 else rng.choice(hosts)
        proto = rng.choice((6, 6, IPPROTO_UDP, IPPROTO_ICMP))
        flow_f, flow_r = FakeFlow(alproto=None), FakeFlow(alproto=None)
        for p, to_server in ((pkt(src=a, dst=b, proto=proto, flags=0x02), True),
                             (reply(src=b, dst=a, proto=proto, flags=0x12), False)):
            got = _sids(fast.inspect_packet(p, flow_f, to_server))
            assert got == _sids(ref.inspect_packet(p, flow_r, to_server)), (a, b, proto)
            fired += len(got)
    assert fired > 100
    assert fast.errors == ref.errors == 0
