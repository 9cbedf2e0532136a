"""TLS and DNS app-layer output on traffic of real clients and servers.

Servers run in namespace B (nginx with two SNI virtual hosts, ``openssl s_server``, dnsmasq),
clients in namespace A (curl, ``openssl s_client``, dig); tcpdump records B's veth end into a
pcap and ``ruleengine run -r`` reads it. Every EVE field is compared with an expectation that
does not come from the engine: what the clients were asked to do (SNI, TLS version, ALPN,
resumption, the cipher list, the DNS questions), the certificates the test made (subject /
issuer strings, the serial read from the DER bytes, the SHA-1 fingerprint, the validity
dates), what dnsmasq was told to answer, and the capture decoded by ``realtraffic``'s own
readers (ClientHello -> JA3/JA4, ServerHello -> JA3S, DNS ids and header flags).

One capture per protocol (module fixtures); each test then checks one aspect of it.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests import kernel
from tests.integration import realtraffic as rt
from tests.outputs.eve_schema import validate_line

pytestmark = [pytest.mark.kernel, pytest.mark.timeout(90)]

CERT_FIELDS = ("subject", "issuerdn", "serial", "fingerprint", "notbefore", "notafter")
TLS_VERSIONS = {"1.2": "TLS 1.2", "1.3": "TLS 1.3"}
# openssl names of the two suites the s_client flows offer (IANA 0xC02B, 0xC02C)
S_CLIENT_CIPHERS = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384"
S_CLIENT_CIPHER_IDS = [0xC02B, 0xC02C]
SCSV = 0x00FF  # TLS_EMPTY_RENEGOTIATION_INFO_SCSV, added by openssl to a TLS <= 1.2 hello


def _require(*commands: str) -> None:
    kernel.require_netns()
    kernel.require_command("tcpdump", *commands)
    from ruleengine.applayer import registry

    names = {p.name for p in registry.protocols()}
    for proto in ("tls", "dns"):
        if proto not in names:
            kernel.skip(f"the {proto} app-layer parser is not registered")


# ============================================================================================
# TLS
# ============================================================================================


@dataclass
class TlsClient:
    """One client connection and what it asked for."""

    port: int  # its source port: the flow's key in EVE
    sni: str
    tls: str  # "1.2" / "1.3"
    cert: rt.Cert | None  # the server certificate the handshake shows (None: TLS 1.3/resumed)
    issuer: rt.Cert | None
    client_alpns: list[str]
    server_alpns: list[str]  # what the ServerHello selects (TLS 1.2 only: encrypted in 1.3)
    resumed: bool = False
    tool: str = "curl"
    output: str = ""
    hs: rt.Handshake = field(default_factory=rt.Handshake)


@dataclass
class TlsRun:
    clients: list[TlsClient]
    engine: rt.EngineRun
    ja3_sid_hash: str
    http2: bool

    def tls_events(self, port: int) -> list[dict[str, Any]]:
        return [e for e in self.engine.of("tls") if e["src_port"] == port]


SNI_SIDS = {"alpha.test": 1001, "beta.test": 1002, "gamma.test": 1003}
SID_SUBJECT_BETA, SID_SERIAL_ALPHA, SID_JA3, SID_JA4_13 = 1010, 1011, 1012, 1013


def _tls_certs(directory: Path) -> dict[str, rt.Cert]:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    day = dt.timedelta(days=1)
    ca_a = rt.make_cert(directory, "ca-a", [("C", "XX"), ("O", "Ruleengine Real Traffic"),
                                            ("OU", "Root A"), ("CN", "Real Traffic Root A")],
                        0x0A, now - 30 * day, now + 365 * day)
    ca_b = rt.make_cert(directory, "ca-b", [("C", "YY"), ("ST", "Nowhere"), ("L", "Testville"),
                                            ("O", "Other Authority"),
                                            ("CN", "Real Traffic Root B")],
                        0x0B, now - 20 * day, now + 200 * day)
    from cryptography import x509

    return {
        "ca-a": ca_a, "ca-b": ca_b,
        # the serial's top bit is set: its DER content starts with a 00 byte
        "alpha.test": rt.make_cert(
            directory, "alpha", [("C", "XX"), ("O", "Alpha Org"), ("OU", "Web"),
                                 ("CN", "alpha.test")],
            0xE1F2A3B4C5D6E7F8, now - 2 * day - dt.timedelta(seconds=17),
            now + 90 * day + dt.timedelta(seconds=3), issuer=ca_a, sans=["alpha.test"]),
        "beta.test": rt.make_cert(
            directory, "beta", [("C", "YY"), ("ST", "Nowhere"), ("O", "Beta Org"),
                                ("CN", "beta.test")],
            0x1001, now - 3 * day - dt.timedelta(seconds=41),
            now + 30 * day + dt.timedelta(seconds=59), issuer=ca_b, sans=["beta.test"]),
        "gamma.test": rt.make_cert(
            directory, "gamma", [("C", "XX"), ("L", "Gammaville"), ("O", "Gamma Org"),
                                 ("CN", "gamma.test"), ("Email", "ops@gamma.test")],
            x509.random_serial_number(), now - 5 * day - dt.timedelta(seconds=5),
            now + 10 * day + dt.timedelta(seconds=11), issuer=ca_a, sans=["gamma.test"]),
    }


def _tls_rules(ja3_hash: str, ja4_13: str, alpha_serial: str) -> str:
    rules = [f'alert tls any any -> any any (msg:"sni {name}"; tls.sni; content:"{name}"; '
             f'startswith; endswith; sid:{sid}; rev:1;)' for name, sid in SNI_SIDS.items()]
    rules += [
        f'alert tls any any -> any any (msg:"subject beta"; tls.cert_subject; '
        f'content:"CN=beta.test"; sid:{SID_SUBJECT_BETA}; rev:1;)',
        f'alert tls any any -> any any (msg:"serial alpha"; tls.cert_serial; '
        f'content:"{alpha_serial}"; sid:{SID_SERIAL_ALPHA}; rev:1;)',
        f'alert tls any any -> any any (msg:"ja3 s_client"; ja3.hash; content:"{ja3_hash}"; '
        f'sid:{SID_JA3}; rev:1;)',
        f'alert tls any any -> any any (msg:"ja4 curl 1.3"; ja4.hash; content:"{ja4_13}"; '
        f'sid:{SID_JA4_13}; rev:1;)',
    ]
    return "\n".join(rules) + "\n"


@pytest.fixture(scope="module")
def tls_run(tmp_path_factory: pytest.TempPathFactory) -> TlsRun:
    _require("nginx", "openssl", "curl")
    tmp = tmp_path_factory.mktemp("real-tls")
    certs = _tls_certs(tmp / "certs")
    cafile = rt.bundle(tmp / "cas.pem", [certs["ca-a"], certs["ca-b"]])
    session = tmp / "gamma.session"
    with kernel.netns_pair("rtls") as net:
        rt.tx_checksums_in_software(net)
        nginx = rt.Nginx(net, net.ns_b, net.v4_b, 443,
                         [rt.Vhost("alpha.test", certs["alpha.test"]),
                          rt.Vhost("beta.test", certs["beta.test"])], tmp / "nginx")
        h2 = ["h2"] if nginx.http2 else ["http/1.1"]
        server = rt.OpensslServer(net, net.ns_b, net.v4_b, 8443, certs["gamma.test"],
                                  tmp / "s_server", ["-tls1_2"])
        a, b = certs["ca-a"], certs["ca-b"]
        clients = [
            TlsClient(41001, "alpha.test", "1.2", certs["alpha.test"], a, ["http/1.1"],
                      ["http/1.1"]),
            TlsClient(41002, "beta.test", "1.2", certs["beta.test"], b, ["h2", "http/1.1"], h2),
            TlsClient(41003, "alpha.test", "1.3", None, None, ["h2", "http/1.1"], []),
            TlsClient(41004, "beta.test", "1.3", None, None, ["http/1.1"], []),
            TlsClient(41005, "gamma.test", "1.2", certs["gamma.test"], a, [], [],
                      tool="s_client"),
            TlsClient(41006, "gamma.test", "1.2", None, None, [], [], resumed=True,
                      tool="s_client"),
        ]
        with rt.capture(net, net.ns_b, net.if_b, tmp / "tls.pcap"):
            for c in clients:
                if c.tool == "curl":
                    proc = rt.curl(net, net.ns_a, url_host=c.sni, address=net.v4_b, port=443,
                                   cafile=cafile, tls=c.tls,
                                   http="2" if "h2" in c.client_alpns else "1.1",
                                   local_port=c.port)
                else:
                    proc = rt.s_client(
                        net, net.ns_a, address=net.v4_b, port=8443, bind=net.v4_a,
                        local_port=c.port, servername=c.sni,
                        args=["-tls1_2", "-cipher", S_CLIENT_CIPHERS, "-CAfile", str(cafile),
                              "-sess_in" if c.resumed else "-sess_out", str(session)])
                assert proc.returncode == 0, proc.stderr
                c.output = proc.stdout
        server.close()
        nginx.close()
    by_port = {conv.client[1]: conv for conv in rt.tcp_conversations(rt.read_pcap(
        tmp / "tls.pcap"))}
    for c in clients:
        c.hs = rt.tls_handshake(by_port[c.port])
        assert c.hs.client_hello is not None and c.hs.server_hello is not None, c
    ja3_hash = rt.md5(rt.ja3_string(clients[4].hs.client_hello))  # type: ignore[arg-type]
    ja4_13 = rt.ja4(clients[2].hs.client_hello)  # type: ignore[arg-type]
    rules = _tls_rules(ja3_hash, ja4_13, rt.der_serial(certs["alpha.test"].der))
    engine = rt.run_engine(tmp / "tls.pcap", rules, tmp / "log")
    return TlsRun(clients, engine, ja3_hash, nginx.http2)


def test_tls_clients_did_what_was_asked(tls_run: TlsRun) -> None:
    """The traffic itself (decoded here, not by the engine) is what each client asked for."""
    for c in tls_run.clients:
        ch, sh = c.hs.client_hello, c.hs.server_hello
        assert ch is not None and sh is not None
        assert ch.sni == c.sni
        assert sh.selected_version == {"1.2": 0x0303, "1.3": 0x0304}[c.tls]
        assert ch.alpns == c.client_alpns
        if c.tls == "1.2":
            assert sh.alpns == c.server_alpns
        if c.cert is not None:  # the virtual host's certificate, chosen by SNI
            assert c.hs.certificates and c.hs.certificates[0] == c.cert.der
        else:
            assert c.hs.certificates == []
        if c.tool == "curl":
            code, version = c.output.split()
            assert code == "200", c.output
            h2 = "h2" in c.client_alpns and tls_run.http2
            assert version == ("2" if h2 else "1.1"), c.output
        else:
            assert ("Reused, TLSv1.2" if c.resumed else "New, TLSv1.2") in c.output
    resumed = tls_run.clients[5].hs
    assert resumed.client_hello is not None and resumed.server_hello is not None
    assert resumed.server_hello.session_id == resumed.client_hello.session_id != b""


def test_tls_events_field_by_field(tls_run: TlsRun) -> None:
    for c in tls_run.clients:
        events = tls_run.tls_events(c.port)
        assert len(events) == 1, (c.port, events)
        event = events[0]
        assert event["proto"] == "TCP" and event["dest_port"] in (443, 8443)
        tls = event["tls"]
        assert tls["sni"] == c.sni
        assert tls["version"] == TLS_VERSIONS[c.tls]
        if c.cert is not None:
            assert c.issuer is not None
            cert = c.cert.cert
            assert tls["subject"] == rt.suricata_dn(cert.subject)
            assert tls["issuerdn"] == rt.suricata_dn(c.issuer.cert.subject)
            assert tls["serial"] == rt.der_serial(c.cert.der)
            assert tls["fingerprint"] == rt.sha1_colon(c.cert.der)
            assert tls["notbefore"] == rt.suricata_time(cert.not_valid_before_utc)
            assert tls["notafter"] == rt.suricata_time(cert.not_valid_after_utc)
        else:  # TLS 1.3 (encrypted Certificate) or a resumed session (none sent)
            assert not set(CERT_FIELDS) & set(tls), tls
        assert tls.get("session_resumed", False) is c.resumed
        assert tls.get("client_alpns", []) == c.client_alpns
        assert tls.get("server_alpns", []) == c.server_alpns


def test_tls_strings_in_suricata_form(tls_run: TlsRun) -> None:
    """The expected strings themselves, written out for one certificate each: RDN order,
    abbreviations, the 00 byte of a serial with its top bit set."""
    by_sni = {c.sni: tls_run.tls_events(c.port)[0]["tls"] for c in tls_run.clients
              if c.cert is not None}
    assert by_sni["alpha.test"]["subject"] == "C=XX, O=Alpha Org, OU=Web, CN=alpha.test"
    assert by_sni["alpha.test"]["issuerdn"] == (
        "C=XX, O=Ruleengine Real Traffic, OU=Root A, CN=Real Traffic Root A")
    assert by_sni["alpha.test"]["serial"] == "00:E1:F2:A3:B4:C5:D6:E7:F8"
    assert by_sni["beta.test"]["serial"] == "10:01"
    assert by_sni["beta.test"]["issuerdn"] == (
        "C=YY, ST=Nowhere, L=Testville, O=Other Authority, CN=Real Traffic Root B")
    assert by_sni["gamma.test"]["subject"] == (
        "C=XX, L=Gammaville, O=Gamma Org, CN=gamma.test, Email=ops@gamma.test")
    for tls in by_sni.values():
        fp = tls["fingerprint"].split(":")
        assert len(fp) == 20 and all(len(x) == 2 and x == x.lower() for x in fp)
        dt.datetime.strptime(tls["notbefore"], "%Y-%m-%dT%H:%M:%S")


def test_tls_ja3_ja3s_ja4_from_the_hello_bytes(tls_run: TlsRun) -> None:
    for c in tls_run.clients:
        tls = tls_run.tls_events(c.port)[0]["tls"]
        ch, sh = c.hs.client_hello, c.hs.server_hello
        assert ch is not None and sh is not None
        assert tls["ja3"]["string"] == rt.ja3_string(ch)
        assert tls["ja3"]["hash"] == rt.md5(tls["ja3"]["string"])
        assert tls["ja3s"]["string"] == rt.ja3s_string(sh)
        assert tls["ja3s"]["hash"] == rt.md5(tls["ja3s"]["string"])
        assert tls["ja4"] == rt.ja4(ch)
        version, ciphers, _exts, _groups, _formats = tls["ja3"]["string"].split(",")
        assert version == "771"  # the ClientHello's legacy_version, also for TLS 1.3
        assert tls["ja4"][:3] == ("t13" if c.tls == "1.3" else "t12")
        if c.tool == "s_client":  # exactly the suites it was told to offer (+ the SCSV)
            assert [int(x) for x in ciphers.split("-")] == [*S_CLIENT_CIPHER_IDS, SCSV]
            assert int(tls["ja3s"]["string"].split(",")[1]) in S_CLIENT_CIPHER_IDS
        if c.tls == "1.3":  # supported_versions (43) and key_share (51) in the ServerHello
            assert {"43", "51"} <= set(tls["ja3s"]["string"].split(",")[2].split("-"))


def test_tls_rules_alert_per_flow(tls_run: TlsRun) -> None:
    expected: Counter[tuple[int, int]] = Counter()
    ja4_13 = rt.ja4(tls_run.clients[2].hs.client_hello)  # type: ignore[arg-type]
    for c in tls_run.clients:
        ch = c.hs.client_hello
        assert ch is not None
        expected[(SNI_SIDS[c.sni], c.port)] += 1
        if c.cert is not None and c.sni == "beta.test":
            expected[(SID_SUBJECT_BETA, c.port)] += 1
        if c.cert is not None and c.sni == "alpha.test":
            expected[(SID_SERIAL_ALPHA, c.port)] += 1
        if rt.md5(rt.ja3_string(ch)) == tls_run.ja3_sid_hash:
            expected[(SID_JA3, c.port)] += 1
        if rt.ja4(ch) == ja4_13:
            expected[(SID_JA4_13, c.port)] += 1
    alerts = tls_run.engine.of("alert")
    # the flow's client port: an alert on a server packet has the server as src
    got = Counter((a["alert"]["signature_id"], a["flow"]["src_port"]) for a in alerts)
    assert got == expected
    assert expected[(SID_JA3, 41005)] == 1 and expected[(SID_JA4_13, 41003)] == 1
    for a in alerts:
        c = next(c for c in tls_run.clients if c.port == a["flow"]["src_port"])
        assert a["app_proto"] == "tls"
        # certificate buffers are the server's (to_client), the rest the client's
        server_side = a["alert"]["signature_id"] in (SID_SUBJECT_BETA, SID_SERIAL_ALPHA)
        assert a["direction"] == ("to_client" if server_side else "to_server"), a
        assert (a["src_port"] in (443, 8443)) is server_side, a
        assert a["tls"]["sni"] == c.sni  # the alert carries the extended tls object
        assert a["tls"]["version"] == TLS_VERSIONS[c.tls]


def test_tls_flows_and_schema(tls_run: TlsRun) -> None:
    for line in tls_run.engine.lines:
        validate_line(line)
    flows = {e["src_port"]: e for e in tls_run.engine.of("flow") if e["proto"] == "TCP"}
    assert sorted(flows) == sorted(c.port for c in tls_run.clients)
    for c in tls_run.clients:
        assert flows[c.port]["app_proto"] == "tls", flows[c.port]
        assert flows[c.port]["flow"]["state"] == "closed"


# ============================================================================================
# DNS
# ============================================================================================

ZONE = rt.DnsZone(
    hosts=(("host.example.test", "10.1.2.4", "fd00::4"),
           ("www.example.test", "10.1.2.5", "fd00::5")),
    cnames=(("alias.example.test", "host.example.test"),),
    mx=(("example.test", "mail.example.test", 10),),
    txt=(("txt.example.test", ("v=spf1 -all", "second string")),),
    wildcard=(("wild.test", "10.1.2.3"),),
    local_domain="example.test",
    ttl=300,
)
UDP_QUERIES = [("host.example.test", "A"), ("host.example.test", "AAAA"),
               ("alias.example.test", "A"), ("example.test", "MX"), ("txt.example.test", "TXT"),
               ("missing.example.test", "A"), ("www.wild.test", "A")]
TCP_QUERY = [("host.example.test", "A")]
KEEPOPEN_QUERIES = [("alias.example.test", "A"), ("txt.example.test", "TXT"),
                    ("missing.example.test", "A"), ("www.example.test", "AAAA")]
QTYPES = {"A": 1, "CNAME": 5, "MX": 15, "TXT": 16, "AAAA": 28}
RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}
SID_HOST, SID_MISSING, SID_DOTPREFIX, SID_WILD, SID_ANSWER_HOST = 2001, 2002, 2003, 2004, 2005
DOTPREFIX_RULE = (f'alert dns any any -> any any (msg:"dotprefix example.test"; dns.query; '
                  f'dotprefix; content:".example.test"; endswith; sid:{SID_DOTPREFIX}; rev:1;)')
DNS_RULES = "\n".join([
    f'alert dns any any -> any any (msg:"host"; dns.query; content:"host.example.test"; '
    f'startswith; endswith; sid:{SID_HOST}; rev:1;)',
    f'alert dns any any -> any any (msg:"missing"; dns.query; content:"missing."; '
    f'startswith; sid:{SID_MISSING}; rev:1;)',
    f'alert dns any any -> any any (msg:"wild"; dns.query; content:".wild.test"; endswith; '
    f'sid:{SID_WILD}; rev:1;)',
    f'alert dns any any -> any any (msg:"answer host"; dns.answers.rrname; '
    f'content:"host.example.test"; startswith; endswith; sid:{SID_ANSWER_HOST}; rev:1;)',
])


def expected_answers(name: str, qtype: str) -> list[tuple[str, str, str]]:
    """(rrname, rrtype, rdata) dnsmasq answers for ``name``/``qtype`` from ``ZONE``, in
    order; IPv6 in Suricata's fully expanded form."""
    for alias, target in ZONE.cnames:
        if name == alias:
            return [(alias, "CNAME", target), *expected_answers(target, qtype)]
    out: list[tuple[str, str, str]] = []
    for host, v4, v6 in ZONE.hosts:
        if name == host and qtype == "A":
            out.append((host, "A", v4))
        if name == host and qtype == "AAAA":
            out.append((host, "AAAA", ipaddress.IPv6Address(v6).exploded))
    for domain, exchange, _pref in ZONE.mx:
        if name == domain and qtype == "MX":
            out.append((domain, "MX", exchange))
    for txt_name, strings in ZONE.txt:
        if name == txt_name and qtype == "TXT":
            out += [(txt_name, "TXT", s) for s in strings]  # one answer per string
    for domain, v4 in ZONE.wildcard:
        if name.endswith("." + domain) and qtype == "A":
            out.append((name, "A", v4))
    return out


def expected_rcode(name: str, qtype: str) -> str:
    known = {h for h, _, _ in ZONE.hosts} | {a for a, _ in ZONE.cnames} | {
        d for d, _, _ in ZONE.mx} | {t for t, _ in ZONE.txt}
    if name.endswith("." + ZONE.local_domain) and name not in known:
        return "NXDOMAIN"
    return "NOERROR"


@dataclass
class DnsRun:
    messages: list[rt.DnsMessage]  # from the capture
    engine: rt.EngineRun
    dotprefix: bool

    def events(self) -> list[dict[str, Any]]:
        return self.engine.of("dns")


@pytest.fixture(scope="module")
def dns_run(tmp_path_factory: pytest.TempPathFactory) -> DnsRun:
    _require("dnsmasq", "dig")
    tmp = tmp_path_factory.mktemp("real-dns")
    with kernel.netns_pair("rdns") as net:
        rt.tx_checksums_in_software(net)
        server = rt.Dnsmasq(net, net.ns_b, net.v4_b, ZONE, tmp / "dnsmasq")
        with rt.capture(net, net.ns_b, net.if_b, tmp / "dns.pcap"):
            for queries, tcp, keepopen in ((UDP_QUERIES, False, False),
                                           (TCP_QUERY, True, False),
                                           (KEEPOPEN_QUERIES, True, True)):
                proc = rt.dig(net, net.ns_a, net.v4_b, queries, tcp=tcp, keepopen=keepopen)
                assert proc.returncode == 0, proc.stderr
                assert proc.stdout.count(";; Got answer:") == len(queries), proc.stdout
        server.close()
    dotprefix = rt.rule_runs(DOTPREFIX_RULE)
    rules = DNS_RULES + "\n" + (DOTPREFIX_RULE + "\n" if dotprefix else "")
    engine = rt.run_engine(tmp / "dns.pcap", rules, tmp / "log")
    return DnsRun(rt.dns_messages(rt.read_pcap(tmp / "dns.pcap")), engine, dotprefix)


def _key(event: dict[str, Any]) -> tuple[str, int, bool, int]:
    """(transport, client port, to_server, DNS id) of a dns event."""
    dns = event["dns"]
    to_server = dns["type"] == "request"
    port = event["src_port"] if to_server else event["dest_port"]
    return event["proto"], port, to_server, dns["id"]


def test_dns_traffic_as_sent(dns_run: DnsRun) -> None:
    """The capture holds each query and its answer; the keepopen queries share one TCP
    connection, the plain +tcp one has its own."""
    asked = UDP_QUERIES + TCP_QUERY + KEEPOPEN_QUERIES
    requests = [m for m in dns_run.messages if m.to_server]
    responses = [m for m in dns_run.messages if not m.to_server]
    assert Counter((m.questions[0][0], m.questions[0][1]) for m in requests) == Counter(
        (n, QTYPES[t]) for n, t in asked)
    assert len(responses) == len(requests)
    tcp_ports = Counter(m.client_port for m in requests if m.transport == "TCP")
    assert sorted(tcp_ports.values()) == [len(TCP_QUERY), len(KEEPOPEN_QUERIES)]


def test_dns_events_field_by_field(dns_run: DnsRun) -> None:
    events = {_key(e): e for e in dns_run.events()}
    assert len(events) == len(dns_run.events()), "two dns events for one message"
    assert len(events) == len(dns_run.messages)
    for m in dns_run.messages:
        key = (m.transport, m.client_port, m.to_server, m.id)
        dns = events[key]["dns"]
        name, qtype_num = m.questions[0]
        qtype = next(k for k, v in QTYPES.items() if v == qtype_num)
        assert dns["version"] == 3
        assert dns["type"] == ("request" if m.to_server else "response")
        assert dns["id"] == m.id
        assert dns["queries"] == [{"rrname": name, "rrtype": qtype}]
        # the header as sent, and its bits as Suricata names them
        assert dns["flags"] == f"{m.flags:x}"
        for bit, flag in ((0x8000, "qr"), (0x0400, "aa"), (0x0200, "tc"), (0x0100, "rd"),
                          (0x0080, "ra"), (0x0040, "z")):
            assert dns.get(flag, False) is bool(m.flags & bit), (flag, dns)
        assert dns["opcode"] == 0
        assert dns["rcode"] == RCODES[m.flags & 0xF]
        assert dns.get("rd") is True  # dig asks for recursion
        if m.to_server:
            assert "qr" not in dns and "answers" not in dns
            assert dns["rcode"] == "NOERROR"
            # dig's EDNS OPT record with its client cookie (option 10, 8 bytes)
            (opt,) = dns["additionals"]
            assert opt["rrname"] == "" and opt["rrtype"] == "OPT"
            assert [o["code"] for o in opt["opt"]] == [10]
            assert len(bytes.fromhex(opt["opt"][0]["data"])) == 8
            continue
        assert dns["rcode"] == expected_rcode(name, qtype)
        want = expected_answers(name, qtype)
        got = [(a["rrname"], a["rrtype"], a["rdata"]) for a in dns.get("answers", [])]
        assert got == want, (name, qtype, dns)
        assert all(a["ttl"] == ZONE.ttl for a in dns.get("answers", []))
        grouped: dict[str, list[str]] = {}
        for _n, rrtype, rdata in want:
            grouped.setdefault(rrtype, []).append(rdata)
        assert dns.get("grouped", {}) == grouped
        assert "authorities" not in dns  # dnsmasq sends none for its local data


def test_dns_responses_answer_their_requests(dns_run: DnsRun) -> None:
    """Request and response events pair up by transport, client port and DNS id, and the
    response comes from the server (src 53)."""
    events = dns_run.events()
    def pair(e: dict[str, Any]) -> tuple[str, int, int]:
        transport, port, _to_server, ident = _key(e)
        return transport, port, ident

    requests = {pair(e) for e in events if e["dns"]["type"] == "request"}
    responses = {pair(e) for e in events if e["dns"]["type"] == "response"}
    assert requests == responses
    for e in events:
        if e["dns"]["type"] == "response":
            assert e["src_port"] == 53
        else:
            assert e["dest_port"] == 53


def _alerted_query(run: DnsRun, alert: dict[str, Any]) -> tuple[str, str, bool]:
    """(transport, qname, to_server) of the dns event of the alert's transaction (same flow
    and tx_id: found without the alert's own dns object)."""
    for e in run.events():
        if e["flow_id"] == alert["flow_id"] and e["dns"]["tx_id"] == alert["tx_id"]:
            return e["proto"], e["dns"]["queries"][0]["rrname"] + "/" + e["dns"]["queries"][0][
                "rrtype"], e["dns"]["type"] == "request"
    raise AssertionError(f"no dns event for alert {alert}")


def test_dns_query_rules_alert(dns_run: DnsRun) -> None:
    expected: Counter[tuple[int, str, str, bool]] = Counter()
    for transport, queries in (("UDP", UDP_QUERIES), ("TCP", TCP_QUERY + KEEPOPEN_QUERIES)):
        for name, qtype in queries:
            q = f"{name}/{qtype}"
            if name == "host.example.test":
                expected[(SID_HOST, transport, q, True)] += 1
            if name.startswith("missing."):
                expected[(SID_MISSING, transport, q, True)] += 1
            if name.endswith(".wild.test"):
                expected[(SID_WILD, transport, q, True)] += 1
            if dns_run.dotprefix and ("." + name).endswith(".example.test"):
                expected[(SID_DOTPREFIX, transport, q, True)] += 1
            if any(rrname == "host.example.test" for rrname, _, _ in
                   expected_answers(name, qtype)):
                expected[(SID_ANSWER_HOST, transport, q, False)] += 1
    got = Counter((a["alert"]["signature_id"], *_alerted_query(dns_run, a))
                  for a in dns_run.engine.of("alert"))
    assert got == expected
    if not dns_run.dotprefix:
        pytest.skip("dotprefix is not implemented by this engine: that rule was left out "
                    "(every other alert checked)")


def test_dns_alerts_carry_the_dns_object_udp(dns_run: DnsRun) -> None:
    udp = [a for a in dns_run.engine.of("alert") if a["proto"] == "UDP"]
    assert udp
    for a in udp:
        assert a["app_proto"] == "dns"
        _transport, query, _ = _alerted_query(dns_run, a)
        dns = a["dns"]
        assert dns["version"] == 3
        assert f'{dns["queries"][0]["rrname"]}/{dns["queries"][0]["rrtype"]}' == query


def test_dns_alerts_carry_the_dns_object_tcp(dns_run: DnsRun) -> None:
    tcp = [a for a in dns_run.engine.of("alert") if a["proto"] == "TCP"]
    assert tcp
    for a in tcp:
        assert "dns" in a, a
        _transport, query, _ = _alerted_query(dns_run, a)
        assert f'{a["dns"]["queries"][0]["rrname"]}/{a["dns"]["queries"][0]["rrtype"]}' == query


def test_dns_schema_and_flows(dns_run: DnsRun) -> None:
    for line in dns_run.engine.lines:
        validate_line(line)
    # (the namespaces' IPv6 neighbour discovery / MLD packets are flows too)
    flows = [f for f in dns_run.engine.of("flow") if f["proto"] in ("TCP", "UDP")]
    assert flows and all(f["app_proto"] == "dns" for f in flows), flows
    assert Counter(f["proto"] for f in flows) == Counter(
        {"UDP": len(UDP_QUERIES), "TCP": 2})
