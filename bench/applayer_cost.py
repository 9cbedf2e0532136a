"""Per-transaction cost of TLS handshakes and DNS queries, beside HTTP, with ET Open loaded.

    .venv/bin/python bench/applayer_cost.py [-n 2000] [--repeat 3] [--rules FILE]

1. Builds (once, cached in bench/.cache/) three pcaps of N transactions each:
   * TLS: N real handshakes, one per TCP connection, made by OpenSSL through Python's
     ``ssl`` module in memory (MemoryBIO: no network) against real certificates (a CA and
     40 wildcard leaf certificates, EC P-256); varied SNIs (``wwwN.domainK.example``),
     half TLS 1.2 / half TLS 1.3, ALPN on most, a tenth TLS 1.2 session resumptions; then
     one small encrypted request and response, FIN both ways.
   * DNS: N query/response pairs over UDP, each from its own source port (A, AAAA, MX, TXT,
     CNAME chains, NXDOMAIN), EDNS on most queries.
   * HTTP: N request/response pairs with small bodies (200 B - 2 KB), one per connection.
   Packets are written with correct checksums, so the engine's defaults apply.
2. Runs the engine in-process on each pcap (the settings ``ruleengine run -r`` derives from
   an empty suricata.yaml, EVE output on) with no rules and with the ET Open file, keeps
   the fastest of ``--repeat`` runs, and prints microseconds per transaction (total, and
   with rules minus without: the cost of the rules) and packets/s. Rule loading and
   detection-engine set-up are not timed.

A transaction here is what a client does once: a TLS handshake (Suricata's one TLS
transaction per flow), a DNS query and its answer (two transactions in Suricata 8: one per
message), an HTTP request and its response.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import resource
import ssl
import struct
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from capture_backends.pcap_file import PcapFileBackend  # noqa: E402
from ruleengine.config.core import Config  # noqa: E402
from ruleengine.detect.engine import DetectEngine  # noqa: E402
from ruleengine.outputs.eve import EveWriter  # noqa: E402
from ruleengine.outputs.stats import Stats  # noqa: E402
from ruleengine.pipeline import Pipeline  # noqa: E402
from ruleengine.rules.classification import classification  # noqa: E402
from ruleengine.rules.loader import load_rule_files  # noqa: E402
from ruleengine.rules.model import Rule  # noqa: E402
from ruleengine.settings import EngineSettings  # noqa: E402

CACHE = REPO / "bench" / ".cache"
ET_RULES = REPO.parent / "shared" / "corpus" / "rules" / "et-open-suricata-5.0.rules"
FORMAT = 1  # bump when the generated traffic changes: the cache file names carry it
MSS = 1448
DOMAINS = 40

# ============================================================================================
# packets (Ethernet / IPv4 / TCP or UDP with real checksums) into a classic pcap
# ============================================================================================


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _ip(src: bytes, dst: bytes, proto: int, l4: bytes) -> bytes:
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), 0, 0x4000, 64, proto, 0,
                         src, dst)
    header = header[:10] + struct.pack("!H", _checksum(header)) + header[12:]
    return header + l4


def _l4_checksum(src: bytes, dst: bytes, proto: int, l4: bytearray, offset: int) -> bytes:
    pseudo = src + dst + struct.pack("!BBH", 0, proto, len(l4))
    l4[offset:offset + 2] = struct.pack("!H", _checksum(pseudo + bytes(l4)))
    return bytes(l4)


ETH = bytes.fromhex("020000000002" "020000000001" "0800")
ETH_BACK = bytes.fromhex("020000000001" "020000000002" "0800")


class PcapOut:
    """A classic pcap (microseconds, Ethernet) written as frames come."""

    def __init__(self, path: Path) -> None:
        self.file = open(path, "wb")  # noqa: SIM115
        self.file.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        self.clock = 1_760_000_000.0
        self.packets = 0

    def frame(self, data: bytes, gap: float = 0.0001) -> None:
        self.clock += gap
        sec = int(self.clock)
        usec = int((self.clock - sec) * 1e6)
        self.file.write(struct.pack("<IIII", sec, usec, len(data), len(data)) + data)
        self.packets += 1

    def close(self) -> None:
        self.file.close()


class TcpConn:
    """One TCP connection written to a ``PcapOut``: handshake, data (segmented at the MSS,
    an ACK from the peer every second segment), FIN both ways."""

    def __init__(self, out: PcapOut, client: bytes, server: bytes, sport: int, dport: int,
                 rng: random.Random) -> None:
        self.out = out
        self.addr = {True: (client, server, sport, dport), False: (server, client, dport, sport)}
        self.seq = {True: rng.randrange(1 << 32), False: rng.randrange(1 << 32)}

    def _segment(self, to_server: bool, flags: int, payload: bytes = b"") -> None:
        src, dst, sport, dport = self.addr[to_server]
        tcp = bytearray(struct.pack("!HHIIBBHHH", sport, dport, self.seq[to_server],
                                    self.seq[not to_server], 5 << 4, flags, 65535, 0, 0))
        tcp += payload
        eth = ETH if to_server else ETH_BACK
        self.out.frame(eth + _ip(src, dst, 6, _l4_checksum(src, dst, 6, tcp, 16)))
        self.seq[to_server] = (self.seq[to_server] + len(payload)
                               + (1 if flags & 0x03 else 0)) & 0xFFFFFFFF

    def open(self) -> None:
        self._segment(True, 0x02)
        self._segment(False, 0x12)
        self._segment(True, 0x10)

    def send(self, to_server: bool, data: bytes) -> None:
        for n, i in enumerate(range(0, len(data), MSS)):
            self._segment(to_server, 0x18, data[i:i + MSS])
            if n % 2:
                self._segment(not to_server, 0x10)
        self._segment(not to_server, 0x10)

    def close(self) -> None:
        self._segment(True, 0x11)
        self._segment(False, 0x11)
        self._segment(True, 0x10)


def _udp(out: PcapOut, src: bytes, dst: bytes, sport: int, dport: int, payload: bytes,
         to_server: bool) -> None:
    udp = bytearray(struct.pack("!HHHH", sport, dport, 8 + len(payload), 0)) + payload
    out.frame((ETH if to_server else ETH_BACK) + _ip(src, dst, 17,
                                                     _l4_checksum(src, dst, 17, udp, 6)))


def _client_addr(i: int) -> bytes:
    return bytes([10, 20 + i // 62500 % 200, i // 250 % 250, i % 250 + 1])


def _server_addr(i: int) -> bytes:
    return bytes([172, 16, i % 16, i % 200 + 1])


# ============================================================================================
# TLS: real handshakes through OpenSSL in memory
# ============================================================================================


def _certificates(directory: Path) -> list[tuple[Path, Path, str]]:
    """A CA and one wildcard certificate per domain (cached): (cert, key, domain)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    directory.mkdir(parents=True, exist_ok=True)
    out = [(directory / f"d{k}.pem", directory / f"d{k}.key", f"domain{k}.example")
           for k in range(DOMAINS)]
    if all(c.exists() and k.exists() for c, k, _ in out):
        return out
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "XX"),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Bench CA"),
                         x509.NameAttribute(NameOID.COMMON_NAME, "Bench Root")])
    for k, (cert_path, key_path, domain) in enumerate(out):
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "XX"),
                          x509.NameAttribute(NameOID.ORGANIZATION_NAME, f"Org {k}"),
                          x509.NameAttribute(NameOID.COMMON_NAME, f"*.{domain}")])
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(ca_name)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(days=1))
                .not_valid_after(now + dt.timedelta(days=3650))
                .add_extension(x509.SubjectAlternativeName(
                    [x509.DNSName(f"*.{domain}"), x509.DNSName(domain)]), critical=False)
                .sign(ca_key, hashes.SHA256()))
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                               serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    return out


def _pump(obj: ssl.SSLObject, out_bio: ssl.MemoryBIO) -> tuple[bool, bytes]:
    """One handshake step: (done, bytes it wants to send)."""
    try:
        obj.do_handshake()
        done = True
    except ssl.SSLWantReadError:
        done = False
    return done, out_bio.read()


@dataclass
class TlsFlow:
    flights: list[tuple[bool, bytes]]  # (to_server, bytes) in wire order


def _handshake(client_ctx: ssl.SSLContext, server_ctx: ssl.SSLContext, sni: str,
               session: ssl.SSLSession | None) -> tuple[TlsFlow, ssl.SSLSession | None]:
    cin, cout, sin, sout = (ssl.MemoryBIO() for _ in range(4))
    client = client_ctx.wrap_bio(cin, cout, server_hostname=sni, session=session)
    server = server_ctx.wrap_bio(sin, sout, server_side=True)
    flights: list[tuple[bool, bytes]] = []
    client_done = server_done = False
    for _ in range(20):
        if not client_done:
            client_done, data = _pump(client, cout)
            if data:
                flights.append((True, data))
                sin.write(data)
        if not server_done:
            server_done, data = _pump(server, sout)
            if data:
                flights.append((False, data))
                cin.write(data)
        if client_done and server_done:
            break
    # a small request and response (TLS 1.3 tickets ride on the server's first flight)
    client.write(f"GET / HTTP/1.1\r\nHost: {sni}\r\n\r\n".encode())
    data = cout.read()
    flights.append((True, data))
    sin.write(data)
    server.read(4096)
    server.write(b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\nhello world\n")
    data = sout.read()
    flights.append((False, data))
    cin.write(data)
    client.read(4096)
    return TlsFlow(flights), client.session


def _client_ctx(tls12: bool, alpns: list[str] | None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if tls12:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    if alpns:
        ctx.set_alpn_protocols(alpns)
    return ctx


def tls_flows(n: int, rng: random.Random) -> Iterator[TlsFlow]:
    certs = _certificates(CACHE / "applayer-certs")
    servers = []
    for cert, key, _domain in certs:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        ctx.set_alpn_protocols(["h2", "http/1.1"])
        servers.append(ctx)
    # per domain: the TLS 1.2 client context and session to resume (a session may only be
    # reused with the context that made it)
    sessions: dict[int, tuple[ssl.SSLContext, ssl.SSLSession]] = {}
    for i in range(n):
        k = rng.randrange(DOMAINS)
        sni = f"www{rng.randrange(10_000)}.{certs[k][2]}"
        tls12 = i % 2 == 0
        saved = sessions.get(k) if tls12 and rng.random() < 0.1 else None
        if saved is not None:
            flow, _ = _handshake(saved[0], servers[k], sni, saved[1])
        else:
            alpns = rng.choice([["h2", "http/1.1"], ["http/1.1"]]) if rng.random() < 0.7 \
                else None
            ctx = _client_ctx(tls12, alpns)
            flow, session = _handshake(ctx, servers[k], sni, None)
            if tls12 and session is not None:
                sessions[k] = (ctx, session)
        yield flow


def write_tls(path: Path, n: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    out = PcapOut(path)
    for i, flow in enumerate(tls_flows(n, rng)):
        conn = TcpConn(out, _client_addr(i), _server_addr(i), 20_000 + i % 40_000, 443, rng)
        conn.open()
        for to_server, data in flow.flights:
            conn.send(to_server, data)
        conn.close()
    out.close()


# ============================================================================================
# DNS and HTTP
# ============================================================================================

NAMES = ["www", "mail", "api", "cdn", "static", "login", "update", "telemetry", "img", "vpn"]
ZONES = ["example.com", "example.net", "example.org", "corp.example", "shop.example"]


def _dns_pair(rng: random.Random, ident: int) -> tuple[bytes, bytes]:
    from scapy.layers.dns import DNS, DNSQR, DNSRR, DNSRROPT

    name = f"{rng.choice(NAMES)}{rng.randrange(100)}.{rng.choice(ZONES)}"
    kind = rng.choices(["A", "AAAA", "MX", "TXT", "CNAME", "NX"], [40, 20, 8, 7, 15, 10])[0]
    qtype = {"NX": "A", "CNAME": "A"}.get(kind, kind)
    edns = [DNSRROPT(rclass=1232)] if rng.random() < 0.8 else []
    query = DNS(id=ident, rd=1, qd=DNSQR(qname=name, qtype=qtype),
                ar=edns[0] if edns else None)
    answers: list[Any] = []
    if kind == "A":
        answers = [DNSRR(rrname=name, type="A", ttl=300, rdata=f"93.184.{rng.randrange(256)}."
                         f"{rng.randrange(256)}") for _ in range(rng.randint(1, 3))]
    elif kind == "AAAA":
        answers = [DNSRR(rrname=name, type="AAAA", ttl=300,
                         rdata=f"2001:db8::{rng.randrange(65536):x}")]
    elif kind == "MX":
        answers = [DNSRR(rrname=name, type="MX", ttl=3600,
                         rdata=b"\x00\x0a" + b"".join(bytes([len(p)]) + p.encode()
                                                      for p in f"mx.{name}".split(".")) + b"\0")]
    elif kind == "TXT":
        answers = [DNSRR(rrname=name, type="TXT", ttl=60, rdata=["v=spf1 -all", "k=v" * 10])]
    elif kind == "CNAME":
        target = f"edge{rng.randrange(50)}.cdn.example"
        answers = [DNSRR(rrname=name, type="CNAME", ttl=300, rdata=target),
                   DNSRR(rrname=target, type="A", ttl=60, rdata="198.51.100.7")]
    response = DNS(id=ident, qr=1, rd=1, ra=1, rcode=3 if kind == "NX" else 0,
                   qd=DNSQR(qname=name, qtype=qtype), an=answers or None,
                   ar=edns[0] if edns else None)
    return bytes(query), bytes(response)


def write_dns(path: Path, n: int, seed: int = 11) -> None:
    rng = random.Random(seed)
    out = PcapOut(path)
    resolver = bytes([192, 0, 2, 53])
    for i in range(n):
        query, response = _dns_pair(rng, rng.randrange(65536))
        client, sport = _client_addr(i), 1024 + rng.randrange(60_000)
        _udp(out, client, resolver, sport, 53, query, True)
        _udp(out, resolver, client, 53, sport, response, False)
    out.close()


USER_AGENTS = ["Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
               "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/126.0",
               "curl/8.5.0", "python-requests/2.32.3", "Wget/1.21.3"]
PATHS = ["/", "/index.html", "/static/app.js", "/api/v1/items?page=2&sort=desc",
         "/images/logo.png", "/search?q=network+security", "/wp-login.php",
         "/news/2026/11/article-1234.html", "/cart/checkout", "/favicon.ico"]


def write_http(path: Path, n: int, seed: int = 13) -> None:
    rng = random.Random(seed)
    out = PcapOut(path)
    words = b"lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor "
    for i in range(n):
        host = f"{rng.choice(NAMES)}.{rng.choice(ZONES)}"
        request = (f"GET {rng.choice(PATHS)} HTTP/1.1\r\nHost: {host}\r\n"
                   f"User-Agent: {rng.choice(USER_AGENTS)}\r\nAccept: */*\r\n"
                   "Accept-Encoding: gzip\r\n\r\n").encode()
        size = rng.randint(200, 2000)
        body = (words * (size // len(words) + 1))[:size]
        response = (f"HTTP/1.1 200 OK\r\nServer: nginx/1.24.0\r\nContent-Type: text/html\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n").encode() + body
        conn = TcpConn(out, _client_addr(i), _server_addr(i), 20_000 + i % 40_000, 80, rng)
        conn.open()
        conn.send(True, request)
        conn.send(False, response)
        conn.close()
    out.close()


# ============================================================================================
# running the engine
# ============================================================================================


def _settings() -> EngineSettings:
    """What ``ruleengine run -r`` derives from an empty suricata.yaml."""
    config, _warnings = Config.load(None, [])
    settings, _ = EngineSettings.from_config(config, ips=False, k_option=None, offline=True)
    return settings


@dataclass
class Result:
    packets: int
    seconds: float  # wall, fastest run
    cpu: float  # user + system of that run
    alerts: int
    events: Counter[str]

    @property
    def pps(self) -> float:
        return self.packets / self.seconds


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run(pcap: Path, rules: list[Rule], repeat: int) -> Result:
    best: Result | None = None
    settings = _settings()
    for _ in range(repeat):
        detect = DetectEngine(rules, mpm=settings.mpm)
        logdir = Path(tempfile.mkdtemp(prefix="bench-applayer-"))
        eve = EveWriter(logdir / "eve.json", type_options=settings.eve_options)
        pipeline = Pipeline(settings, detect, eve=eve, stats=Stats(), classify=classification)
        backend = PcapFileBackend(pcap)
        cpu0 = _cpu()
        t0 = time.perf_counter()
        report = pipeline.run(backend)
        wall = time.perf_counter() - t0
        cpu = _cpu() - cpu0
        eve.close()
        backend.close()
        events: Counter[str] = Counter()
        with open(logdir / "eve.json") as f:
            for line in f:
                events[json.loads(line)["event_type"]] += 1
        for item in logdir.iterdir():
            item.unlink()
        logdir.rmdir()
        result = Result(report.packets, wall, cpu, sum(report.alerts_by_sid.values()), events)
        if best is None or result.seconds < best.seconds:
            best = result
    assert best is not None
    return best


def _pcap(kind: str, n: int) -> Path:
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"applayer-{kind}-{n}-v{FORMAT}.pcap"
    if not path.exists():
        t0 = time.perf_counter()
        print(f"generating {path.name} (once) ...", flush=True)
        tmp = path.with_suffix(".tmp")
        {"tls": write_tls, "dns": write_dns, "http": write_http}[kind](tmp, n)
        tmp.rename(path)
        print(f"  done in {time.perf_counter() - t0:.1f} s", flush=True)
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=2000, help="transactions per protocol")
    parser.add_argument("--repeat", type=int, default=3, help="runs per case (fastest kept)")
    parser.add_argument("--rules", type=Path, default=ET_RULES, help="rule file (ET Open)")
    args = parser.parse_args()
    if not args.rules.is_file():
        print(f"rule file not found: {args.rules} (the ET Open corpus this bench loads; "
              "give another with --rules)", file=sys.stderr)
        return 1
    if args.n < 1 or args.repeat < 1:
        print("-n and --repeat must be at least 1", file=sys.stderr)
        return 2
    pcaps = {kind: _pcap(kind, args.n) for kind in ("tls", "dns", "http")}
    t0 = time.perf_counter()
    ruleset = load_rule_files([args.rules])
    load_s = time.perf_counter() - t0
    skipped = len(DetectEngine(ruleset.rules).skipped)
    print(f"rules: {ruleset.loaded} loaded from {args.rules.name} ({ruleset.failed} failed, "
          f"{skipped} skipped by detection) in {load_s:.1f} s (not timed below)")
    print(f"{args.n} transactions per protocol; fastest of {args.repeat} runs; EVE on\n")
    header = (f"{'':6s} {'packets':>8s} | {'no rules':>9s} {'pkt/s':>8s} | {'ET Open':>9s} "
              f"{'pkt/s':>8s} {'alerts':>6s} | {'rules cost':>10s}   events (ET run)")
    print(header)
    print("-" * len(header))
    for kind, pcap in pcaps.items():
        base = run(pcap, [], args.repeat)
        full = run(pcap, ruleset.rules, args.repeat)
        per_tx_base = base.seconds / args.n * 1e6
        per_tx_full = full.seconds / args.n * 1e6
        shown = {k: v for k, v in sorted(full.events.items()) if k in ("tls", "dns", "http",
                                                                        "alert", "flow")}
        print(f"{kind:6s} {full.packets:8d} | {per_tx_base:7.0f}µs {base.pps:8.0f} | "
              f"{per_tx_full:7.0f}µs {full.pps:8.0f} {full.alerts:6d} | "
              f"{per_tx_full - per_tx_base:8.0f}µs   {shown}")
    print("\nµs columns: wall time per transaction (a TLS handshake + one small exchange, a "
          "DNS query + answer, an HTTP request + response); 'rules cost' = ET Open minus "
          "no rules.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
