"""``ruleengine explain``: hand-made misses are each named for what they are, a fired rule
shows its packet, buffer and match offsets, and the trace changes no result."""

from __future__ import annotations

import contextlib
import io
import json
import shlex
from pathlib import Path
from typing import Any

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.packet import Packet, Raw
from scapy.utils import wrpcap

from ruleengine.cli import main as cli_main

T0 = 1_700_000_000.0
SEGMENT = 1000


def http_flow(cport: int, request: bytes, response: bytes, t0: float) -> list[Packet]:
    """Handshake, the request, the response in segments each ACKed, FINs; one second
    between packets so every packet has its own timestamp."""
    cli, srv = "10.1.0.1", "10.1.0.2"

    def c(flags: str, seq: int, ack: int, data: bytes = b"") -> Packet:
        p = Ether() / IP(src=cli, dst=srv) / TCP(sport=cport, dport=80, flags=flags,
                                                  seq=seq, ack=ack)
        return p / Raw(data) if data else p

    def s(flags: str, seq: int, ack: int, data: bytes = b"") -> Packet:
        p = Ether() / IP(src=srv, dst=cli) / TCP(sport=80, dport=cport, flags=flags,
                                                  seq=seq, ack=ack)
        return p / Raw(data) if data else p

    cs, ss = 1001, 5001
    pkts = [c("S", 1000, 0), s("SA", 5000, cs), c("A", cs, ss), c("PA", cs, ss, request)]
    cs += len(request)
    pkts.append(s("A", ss, cs))
    for at in range(0, len(response), SEGMENT):
        part = response[at:at + SEGMENT]
        pkts.append(s("PA", ss, cs, part))
        ss += len(part)
        pkts.append(c("A", cs, ss))
    pkts += [c("FA", cs, ss), s("FA", ss, cs + 1), c("A", cs + 1, ss + 1)]
    for i, p in enumerate(pkts):
        p.time = t0 + i
    return pkts


def request(uri: bytes, agent: bytes = b"curl/8.0") -> bytes:
    return b"GET " + uri + b" HTTP/1.1\r\nHost: example.test\r\nUser-Agent: " + agent + \
        b"\r\n\r\n"


def response(body: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " + \
        str(len(body)).encode() + b"\r\n\r\n" + body


def write_case(tmp: Path, rules: str, flows: list[tuple[bytes, bytes]]) -> tuple[Path, Path]:
    pkts: list[Packet] = []
    for n, (req, resp) in enumerate(flows):
        pkts += http_flow(40000 + n, req, resp, T0 + 100 * n)
    pcap, rule_file = tmp / "case.pcap", tmp / "case.rules"
    wrpcap(str(pcap), pkts)
    rule_file.write_text(rules)
    return pcap, rule_file


def explain(pcap: Path, rules: Path, sid: int, *extra: str) -> dict[str, Any]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = cli_main(["explain", "-r", str(pcap), "-S", str(rules), "--sid", str(sid),
                         "--json", *extra])
    assert code == 0
    doc: dict[str, Any] = json.loads(out.getvalue())
    return doc


def only_flow(doc: dict[str, Any]) -> dict[str, Any]:
    assert len(doc["flows"]) == 1, doc["flows"]
    flow: dict[str, Any] = doc["flows"][0]
    return flow


def test_wrong_buffer_names_the_buffer_that_has_the_pattern(tmp_path: Path) -> None:
    pcap, rules = write_case(tmp_path, 'alert http any any -> any any (msg:"ua"; '
                             'http.user_agent; content:"secret"; sid:2;)\n',
                             [(request(b"/files/secret.txt"), response(b"ok"))])
    verdict = only_flow(explain(pcap, rules, 2))["verdict"]
    assert verdict["code"] == "wrong-buffer"
    assert verdict["check"] == "http.user_agent"
    assert "http.uri" in verdict["message"]


def test_depth_too_small_says_where_the_pattern_is(tmp_path: Path) -> None:
    uri = b"/files/secret.txt"
    pcap, rules = write_case(tmp_path, 'alert http any any -> any any (msg:"depth"; '
                             'http.uri; content:"secret"; depth:8; sid:3;)\n',
                             [(request(uri), response(b"ok"))])
    flow = only_flow(explain(pcap, rules, 3))
    assert flow["verdict"]["code"] == "check-failed"
    assert flow["verdict"]["check"] == "content"
    assert f"offset {uri.index(b'secret')}" in flow["verdict"]["message"]
    buf = flow["furthest"]["buffers"][0]
    assert buf["buffer"] == "http.uri" and buf["data"] == uri.decode()
    assert buf["steps"][0]["status"] == "failed"


def test_flow_direction_wrong(tmp_path: Path) -> None:
    pcap, rules = write_case(tmp_path, 'alert http any any -> any any (msg:"dir"; '
                             'flow:to_client; http.uri; content:"secret"; sid:4;)\n',
                             [(request(b"/secret"), response(b"ok"))])
    verdict = only_flow(explain(pcap, rules, 4))["verdict"]
    assert verdict["code"] == "check-failed"
    assert verdict["check"] == "flow"
    assert "to_client" in verdict["message"] and "to_server" in verdict["message"]


def test_bypassed_earlier_by_another_rule(tmp_path: Path) -> None:
    body = b"x" * 3000 + b"SECRETBODY" + b"y" * 100
    pcap, rules = write_case(
        tmp_path,
        'alert http any any -> any any (msg:"bypass"; http.uri; content:"/dl"; bypass; '
        'sid:10;)\n'
        'alert http any any -> any any (msg:"body"; file.data; content:"SECRETBODY"; '
        'sid:11;)\n',
        [(request(b"/dl/file"), response(body))])
    flow = only_flow(explain(pcap, rules, 11))
    assert flow["verdict"]["code"] == "bypassed"
    assert flow["verdict"]["check"] == "rule:10"
    assert "sid 10" in flow["verdict"]["message"]
    assert flow["bypass"]["packet"] < flow["pattern_on_wire"][0]["packet"]


def test_body_beyond_response_body_limit(tmp_path: Path) -> None:
    body = b"a" * 3000 + b"NEEDLE" + b"b" * 500
    pcap, rules = write_case(tmp_path, 'alert http any any -> any any (msg:"limit"; '
                             'file.data; content:"NEEDLE"; sid:5;)\n',
                             [(request(b"/big"), response(body))])
    key = "app-layer.protocols.http.libhtp.default-config.response-body-limit"
    flow = only_flow(explain(pcap, rules, 5, "--set", f"{key}=1000"))
    assert flow["verdict"]["code"] == "body-limit"
    assert "response-body-limit" in flow["verdict"]["message"]
    # without the limit the same rule fires: the limit was the reason
    assert only_flow(explain(pcap, rules, 5))["verdict"]["code"] == "fired"


def test_data_beyond_stream_depth(tmp_path: Path) -> None:
    body = b"a" * 3000 + b"DEEPNEEDLE" + b"b" * 500
    pcap, rules = write_case(tmp_path, 'alert tcp any 80 -> any any (msg:"deep"; '
                             'flow:to_client; content:"DEEPNEEDLE"; sid:8;)\n',
                             [(request(b"/big"), response(body))])
    flow = only_flow(explain(pcap, rules, 8, "--set", "stream.reassembly.depth=2000"))
    assert flow["verdict"]["code"] == "stream-depth"
    assert "2000" in flow["verdict"]["message"]
    assert flow["pattern_on_wire"][0]["stream_offset"] >= 2000
    assert only_flow(explain(pcap, rules, 8))["verdict"]["code"] == "fired"


def test_why_fired_shows_packet_buffer_and_offsets(tmp_path: Path) -> None:
    uri = b"/files/secret.txt"
    pcap, rules = write_case(tmp_path, 'alert http any any -> any any (msg:"uri"; '
                             'http.uri; content:"files"; content:"secret"; distance:1; '
                             'sid:1;)\n',
                             [(request(b"/index.html"), response(b"ok")),
                              (request(uri), response(b"ok"))])
    doc = explain(pcap, rules, 1, "--why-fired", "-l", str(tmp_path / "logs"))
    flow = only_flow(doc)  # only the flow where it fired
    assert flow["verdict"]["code"] == "fired" and flow["flow"]["src_port"] == 40001
    match = flow["matches"][0]
    assert match["alert"] is True and match["direction"] == "to_server"
    steps = match["buffers"][0]["steps"]
    assert [s["match_start"] for s in steps] == [uri.index(b"files"), uri.index(b"secret")]
    assert steps[1]["match_end"] == uri.index(b"secret") + len(b"secret")
    # the packet is the one whose alert EVE logged
    alerts = [json.loads(line) for line in (tmp_path / "logs" / "eve.json").read_text()
              .splitlines() if '"event_type":"alert"' in line]
    assert [a["pcap_cnt"] for a in alerts] == [match["packet"]]


def test_text_output_and_unknown_sid(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                     ) -> None:
    pcap, rules = write_case(tmp_path, 'alert http any any -> any any (msg:"uri"; '
                             'http.uri; content:"nothere"; sid:1;)\n',
                             [(request(b"/a"), response(b"ok"))])
    assert cli_main(["explain", "-r", str(pcap), "-S", str(rules), "--sid", "1"]) == 0
    out = capsys.readouterr().out
    assert "CHECK-FAILED" in out and 'content:"nothere";' in out
    assert cli_main(["explain", "-r", str(pcap), "-S", str(rules), "--sid", "99"]) == 1
    assert "no rule 1:99" in capsys.readouterr().err
    rules.write_text('alert tcp any any -> any any (msg:"dce"; content:"a"; '
                     'byte_test:4,>,1,0,relative,dce; sid:12;)\n')
    assert cli_main(["explain", "-r", str(pcap), "-S", str(rules), "--sid", "12"]) == 1
    assert "does not evaluate it: byte keyword with dce" in capsys.readouterr().err
    assert cli_main(["explain", "-r", str(pcap), "-S", str(rules), "--sid", "1",
                     "--flow", "nonsense"]) == 2


def test_app_layer_never_detected(tmp_path: Path) -> None:
    pcap, rules = write_case(tmp_path, 'alert http any any -> any any (msg:"uri"; '
                             'http.uri; content:"secret"; sid:6;)\n',
                             [(b"\x01\x02 secret\r\n" * 3, b"\x03\x04 no\r\n")])
    flow = only_flow(explain(pcap, rules, 6))
    assert flow["verdict"]["code"] == "app-layer-not-detected"
    assert "never detected" in flow["verdict"]["message"]
    # another protocol: named
    pcap, rules = write_case(tmp_path, 'alert http any any -> any any (msg:"uri"; '
                             'http.uri; content:"secret"; sid:6;)\n',
                             [(b"HELO secret\r\n", b"220 mail\r\n")])
    flow = only_flow(explain(pcap, rules, 6))
    assert flow["verdict"]["code"] == "app-layer-not-detected"
    assert "detected as smtp" in flow["verdict"]["message"]


def test_selected_flow_outside_the_header(tmp_path: Path) -> None:
    pcap, rules = write_case(tmp_path, 'alert tcp any any -> any 8080 (msg:"port"; '
                             'content:"GET"; sid:7;)\n', [(request(b"/a"), response(b"ok"))])
    assert explain(pcap, rules, 7)["flows"] == []  # not asked for: not listed
    flow = only_flow(explain(pcap, rules, 7, "--flow", "10.1.0.2:80-10.1.0.1:40000"))
    assert flow["verdict"]["code"] == "header-mismatch"
    assert "destination port" in flow["verdict"]["message"]
    assert "source address" not in flow["verdict"]["message"]


DEMO = Path(__file__).resolve().parents[2] / "examples" / "pcaps" / "http-demo.pcap"
DEMO_RULES = """\
alert http any any -> any any (msg:"uri"; http.uri; content:"admin"; sid:1;)
alert http any any -> any any (msg:"ua"; http.user_agent; content:"sqlmap"; sid:2;)
alert tcp any any -> any 80 (msg:"raw"; flow:to_server,established; content:"POST"; sid:3;)
alert http any any -> any any (msg:"body"; file.data; content:"html"; nocase; sid:4;)
alert tcp any any -> any any (msg:"bypass"; content:"big.iso"; bypass; sid:5;)
"""


@pytest.mark.parametrize("sid", [1, 2, 3, 4, 5])
def test_tracing_changes_no_result(tmp_path: Path, sid: int) -> None:
    """The traced rule skips the prefilter and records its steps; the alerts of the
    replay (every rule's) must be those of a plain run."""
    rules = tmp_path / "demo.rules"
    rules.write_text(DEMO_RULES)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert cli_main(["run", "-r", str(DEMO), "-S", str(rules), "-l", str(tmp_path / "run"),
                         "--no-progress"]) == 0
    doc = explain(DEMO, rules, sid, "-l", str(tmp_path / "explain"))

    def alerts(logdir: Path) -> list[tuple[int, int]]:
        events = [json.loads(line) for line in (logdir / "eve.json").read_text().splitlines()]
        return sorted((e["alert"]["signature_id"], e["pcap_cnt"]) for e in events
                      if e["event_type"] == "alert")

    plain = alerts(tmp_path / "run")
    assert plain == alerts(tmp_path / "explain")
    fired = sorted(m["packet"] for f in doc["flows"] if f["verdict"]["code"] == "fired"
                   for m in f["matches"])
    assert fired == sorted(cnt for s, cnt in plain if s == sid)[:len(fired)]
    assert bool(fired) == any(s == sid for s, _ in plain)


# --- suricata-verify cases that fail by alert count --------------------------------------

REPO = Path(__file__).resolve().parents[2]
SV = next((p for p in (REPO.parent / "shared" / "corpus" / "suricata-verify",
                       REPO.parents[1] / "shared" / "corpus" / "suricata-verify")
           if (p / "index.json").is_file()), None)


def _sv_test(name: str) -> dict[str, Any]:
    assert SV is not None
    index = json.loads((SV / "index.json").read_text())
    test: dict[str, Any] = next(t for t in index["tests"] if t["name"] == name)
    return test


@pytest.mark.skipif(SV is None, reason="suricata-verify corpus not found")
def test_sv_tcp_fastopen_request_inspected_whole_when_complete() -> None:
    """tcp-fastopen-08 expects sid 7 (``tcp-stream``, content "d2d3") once: "d2" ends the
    SYN's data (fast open), "d3" starts the next segment. The raw stream of an HTTP request
    waits for the request to complete (Suricata's raw trigger), so the 173-byte request is
    inspected as one piece, on the client's packet after the server ACKed its end."""
    assert SV is not None
    test = _sv_test("tcp-fastopen-08")
    args = [a for arg in test["args"] for a in shlex.split(arg)]
    pcap = SV / test["pcaps"][0]["path"]
    rules = SV / test["rules"][0]
    flow = only_flow(explain(pcap, rules, 7, *args))
    assert flow["verdict"]["code"] == "fired"
    sizes = [b["size"] for h in flow["history"] for b in h["buffers"]
             if h["direction"] == "to_server"]
    assert sizes == [173]


@pytest.mark.skipif(SV is None, reason="suricata-verify corpus not found")
def test_sv_http_evader_248_body_split_between_transactions() -> None:
    """http-evader-248 expects sid 1 (file_data EICAR) once; the engine does not alert.
    Its response folds the Content-Length header ("34" then " 68"): the parser ends the
    body after 34 bytes and the pattern straddles two transactions' file.data."""
    assert SV is not None
    test = _sv_test("http-evader/http-evader-248")
    args = [a for arg in test["args"] for a in shlex.split(arg)]
    pcap = SV / test["pcaps"][0]["path"]
    rules = SV / test["rules"][0]
    flow = only_flow(explain(pcap, rules, 1, *args))
    assert flow["verdict"]["code"] == "check-failed"
    assert flow["verdict"]["check"] == "file.data"
    assert "split between the file.data of transaction 0 and of transaction 1" in \
        flow["verdict"]["message"]
    sizes = {h["tx_id"]: b["size"] for h in flow["history"] for b in h["buffers"]}
    assert sizes[0] == 34  # the first Content-Length value


@pytest.mark.skipif(SV is None, reason="suricata-verify corpus not found")
def test_sv_bytetest_02_pkt_stream_rule_fires_on_packet_and_on_stream() -> None:
    """detect-bytetest-02 expects sid 4 twice and sid 1 once: sid 4 (``content:"GET ";
    depth:4``) is a pkt_stream rule, matched on the midstream packet and again on the raw
    stream at flow end; sid 1 (pcre, no depth) only on the stream. explain shows where."""
    assert SV is not None
    test = _sv_test("detect-bytetest-02")
    args = [a for arg in test["args"] for a in shlex.split(arg)]
    pcap = SV / test["pcaps"][0]["path"]
    rules = SV / test["rules"][0]
    flow = only_flow(explain(pcap, rules, 4, *args))
    assert flow["verdict"]["code"] == "fired"
    hits = [(h["stream"], h["flow_end"]) for h in flow["history"] if h["outcome"] == "match"]
    assert hits == [(False, False), (True, True)]
    flow = only_flow(explain(pcap, rules, 1, *args))
    hits = [(h["stream"], h["flow_end"]) for h in flow["history"] if h["outcome"] == "match"]
    assert hits == [(True, True)]
