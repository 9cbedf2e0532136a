"""stream.auto-bypass in the pipeline: a flow no rule can still match is bypassed with
reason ``auto`` and the alerts are those of a run without it (issue 14 §6)."""

from __future__ import annotations

import dataclasses
from collections import Counter
from pathlib import Path

import pytest

from capture_backends.base import Capability
from ruleengine.stream.tcp import StreamConfig
from tests.test_pipeline import Conn, Frames, Run, _flow_key

BODY_SIZE = 300_000
NEEDLE_AT = 50_000  # in the body, before the 100 KiB response-body-limit, after its first segment


def _download(*, request_headers: bytes = b"Connection: close\r\n", mss: int = 1400,
              body_size: int = BODY_SIZE, response_headers: bytes | None = None) -> Frames:
    """``response_headers``: instead of the Content-Length framing (e.g. none at all: the
    body runs until the server closes)."""
    frames: Frames = []
    conn = Conn(frames).open()
    conn.send(True, b"GET /big.bin HTTP/1.1\r\nHost: www.example.com\r\n" + request_headers
              + b"\r\n")
    body = bytearray(b"x" * body_size)
    body[NEEDLE_AT:NEEDLE_AT + 6] = b"NEEDLE"
    framing = b"Content-Length: %d\r\n" % body_size if response_headers is None \
        else response_headers
    message = (b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
               + framing + b"\r\n") + bytes(body)
    for i in range(0, len(message), mss):
        conn.send(False, message[i:i + mss])
    conn.close()
    return frames


HTTP_RULES = "\n".join([
    'alert http any any -> any any (msg:"get"; flow:to_server; http.method; content:"GET"; '
    'sid:1;)',
    'alert http any any -> any any (msg:"ok"; flow:to_client; http.stat_code; content:"200"; '
    'sid:2;)',
    'alert http any any -> any any (msg:"needle"; flow:to_client; http.response_body; '
    'content:"NEEDLE"; sid:3;)',
])
STREAM = StreamConfig(reassembly_depth=1 << 20, bypass=True)
AUTO = dataclasses.replace(STREAM, auto_bypass=True)


def _alerts(run: Run) -> Counter[tuple[int, int | None]]:
    return Counter((e["alert"]["signature_id"], e.get("tx_id")) for e in run.of("alert"))


def test_a_download_past_the_body_limit_is_auto_bypassed_with_the_same_alerts(
        tmp_path: Path) -> None:
    frames = _download()
    base = Run(tmp_path, HTTP_RULES, frames, stream=STREAM)
    auto = Run(tmp_path, HTTP_RULES, frames, stream=AUTO)
    assert sorted(base.sids()) == [1, 2, 3]  # the needle fires when the response completes
    assert _alerts(auto) == _alerts(base)
    assert base.stats.get("flow_bypassed.reason.auto") == 0
    assert auto.stats.get("flow_bypassed.reason.auto") == 1
    assert auto.report.bypassed_flows_local == 1
    (flow,) = auto.of("flow")
    assert {"bypass_reason": "auto"} in flow["metadata"]["flowvars"]
    # bypassed once the body limit was reached: most of the 300 kB went by uninspected
    assert auto.stats.get("flow_bypassed.local_bytes") > 150_000
    assert auto.stats.get("flow_bypassed.by_reason.auto.flows") == 1
    # the transaction is still logged (at the bypass, as at a flow end)
    (http,) = auto.of("http")
    assert http["http"] == base.of("http")[0]["http"]
    assert http["http"]["url"] == "/big.bin"


def test_auto_bypass_goes_through_the_capture_bypass(tmp_path: Path) -> None:
    frames = _download()
    run = Run(tmp_path, HTTP_RULES, frames, stream=AUTO,
              capabilities=Capability.LIVE | Capability.BYPASS,
              backend_kw={"bypass_result": True, "flow_key": _flow_key})
    ((tup, _),) = run.backend.bypass_calls
    assert (tup.sport, tup.dport) == (40000, 80)
    assert run.backend.withheld > 100  # the capture stopped delivering the download
    assert run.report.bypassed_flows_capture == 1
    assert sorted(run.sids()) == [1, 2, 3]
    (flow,) = run.of("flow")
    assert flow["flow"]["bypass"] == "capture"


def test_a_raw_stream_rule_for_the_port_keeps_the_flow_inspected(tmp_path: Path) -> None:
    frames = _download()
    rules = HTTP_RULES + '\nalert tcp any any -> any 80 (msg:"raw"; content:"zzz"; sid:9;)'
    run = Run(tmp_path, rules, frames, stream=AUTO)
    assert run.stats.get("flow_bypassed.reason.auto") == 0
    assert sorted(run.sids()) == [1, 2, 3]
    # the same rule on another port does not hold the flow
    other = HTTP_RULES + '\nalert tcp any any -> any 8080 (msg:"raw"; content:"zzz"; sid:9;)'
    assert Run(tmp_path, other, frames, stream=AUTO).stats.get(
        "flow_bypassed.reason.auto") == 1


def test_a_keep_alive_connection_is_not_auto_bypassed(tmp_path: Path) -> None:
    """A later request on the connection could still match an HTTP rule."""
    run = Run(tmp_path, HTTP_RULES, _download(request_headers=b""), stream=AUTO)
    assert run.stats.get("flow_bypassed.reason.auto") == 0
    assert sorted(run.sids()) == [1, 2, 3]


def _same_alerts_auto_bypassed(tmp_path: Path, frames: Frames,
                               stream: StreamConfig = STREAM, sids: tuple[int, ...] = (1, 2, 3)
                               ) -> Run:
    base = Run(tmp_path, HTTP_RULES, frames, stream=stream)
    auto = Run(tmp_path, HTTP_RULES, frames, stream=dataclasses.replace(stream, auto_bypass=True))
    assert sorted(base.sids()) == list(sids)
    assert _alerts(auto) == _alerts(base)
    assert auto.stats.get("flow_bypassed.reason.auto") == 1
    assert auto.stats.get("flow_bypassed.local_bytes") > 150_000  # from the body limit on
    assert [e["http"] for e in auto.of("http")] == [e["http"] for e in base.of("http")]
    return auto


def test_a_server_connection_close_is_enough(tmp_path: Path) -> None:
    """Keep-alive client, server says close: no later request will be answered."""
    frames = _download(request_headers=b"", response_headers=b"Content-Length: %d\r\n"
                       b"Connection: close\r\n" % BODY_SIZE)
    _same_alerts_auto_bypassed(tmp_path, frames)


def test_a_body_until_the_servers_close_is_auto_bypassed(tmp_path: Path) -> None:
    frames = _download(request_headers=b"", response_headers=b"")
    _same_alerts_auto_bypassed(tmp_path, frames)


def test_a_keep_alive_download_ending_past_the_depth_is_auto_bypassed(tmp_path: Path) -> None:
    """stream.bypass would take the flow at the depth (200 kB, before the 300 kB response
    ends) anyway: auto-bypass at the body limit (100 KiB) comes earlier, same alerts (the
    needle's, evaluated at the response's completion, comes neither way: the response never
    completes once bypassed)."""
    shallow = dataclasses.replace(STREAM, reassembly_depth=200_000)
    frames = _download(request_headers=b"")
    auto = _same_alerts_auto_bypassed(tmp_path, frames, shallow, sids=(1, 2))
    assert auto.stats.get("flow_bypassed.reason.stream-depth") == 0
    base = Run(tmp_path, HTTP_RULES, frames, stream=shallow)
    assert base.stats.get("flow_bypassed.reason.stream-depth") == 1
    # more of it bypassed than by the depth alone
    assert auto.stats.get("flow_bypassed.local_bytes") > \
        base.stats.get("flow_bypassed.local_bytes") + 90_000
    # without stream.bypass nothing would end the inspection: not auto-bypassed
    no_depth = dataclasses.replace(shallow, bypass=False, auto_bypass=True)
    assert Run(tmp_path, HTTP_RULES, frames, stream=no_depth).stats.get(
        "flow_bypassed.reason.auto") == 0


def test_a_chunked_response_is_not_auto_bypassed(tmp_path: Path) -> None:
    """Trailers could still add headers."""
    body = b"x" * BODY_SIZE
    chunked = b"".join(b"%x\r\n" % len(body[i:i + 8000]) + body[i:i + 8000] + b"\r\n"
                       for i in range(0, len(body), 8000)) + b"0\r\n\r\n"
    frames: Frames = []
    conn = Conn(frames).open()
    conn.send(True, b"GET /c HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
    message = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked
    for i in range(0, len(message), 1400):
        conn.send(False, message[i:i + 1400])
    conn.close()
    assert Run(tmp_path, HTTP_RULES, frames, stream=AUTO).stats.get(
        "flow_bypassed.reason.auto") == 0


def test_a_body_under_the_limit_is_not_auto_bypassed(tmp_path: Path) -> None:
    run = Run(tmp_path, HTTP_RULES, _download(body_size=60_000), stream=AUTO)
    assert run.stats.get("flow_bypassed.reason.auto") == 0
    assert sorted(run.sids()) == [1, 2, 3]


def test_auto_bypass_is_off_unless_configured(tmp_path: Path) -> None:
    run = Run(tmp_path, HTTP_RULES, _download(), stream=STREAM)
    assert run.report.bypassed_flows_local == 0


def test_a_tls_flow_is_auto_bypassed_after_the_handshake(tmp_path: Path) -> None:
    pytest.importorskip("cryptography")
    from tests.test_pipeline_applayer import PAYLOAD_RULE, SNI_RULE, _session

    frames = _session()
    version = 'alert tls any any -> any any (msg:"v"; tls.version:1.2; sid:4;)\n'
    base = Run(tmp_path, SNI_RULE + version, frames, stream=STREAM)
    auto = Run(tmp_path, SNI_RULE + version, frames, stream=AUTO)
    assert set(base.sids()) == {1, 4} and _alerts(auto) == _alerts(base)
    assert auto.stats.get("flow_bypassed.reason.auto") == 1
    # the five application-data records after the handshake were not inspected
    assert auto.stats.get("flow_bypassed.local_pkts") >= 5
    (tls,) = auto.of("tls")
    assert tls["tls"] == base.of("tls")[0]["tls"] and "CN=big.example" in tls["tls"]["subject"]
    # a payload rule for any TCP flow could still match the encrypted data's packets
    held = Run(tmp_path, SNI_RULE + PAYLOAD_RULE, frames, stream=AUTO)
    assert held.stats.get("flow_bypassed.reason.auto") == 0 and held.sids() == [1]


def test_a_drop_of_the_last_evaluation_drops_the_flow_instead(tmp_path: Path) -> None:
    """IPS: the response rule that matches in the evaluation before the bypass is a drop
    rule: the packet and the flow are dropped, and the flow is not bypassed."""
    rules = HTTP_RULES.replace('alert http any any -> any any (msg:"needle"',
                               'drop http any any -> any any (msg:"needle"')
    frames = _download()
    kw = {"capabilities": Capability.LIVE | Capability.INLINE, "ips": True}
    base = Run(tmp_path, rules, frames, stream=STREAM, **kw)
    auto = Run(tmp_path, rules, frames, stream=AUTO, **kw)
    assert _alerts(auto) == _alerts(base) and sorted(auto.sids()) == [1, 2, 3]
    assert auto.stats.get("flow_bypassed.reason.auto") == 0
    assert auto.report.bypassed_flows_local == 0 and auto.report.dropped > 0
    (flow,) = auto.of("flow")
    assert flow["flow"]["action"] == "drop"


def test_bypass_report_shows_the_auto_reason(tmp_path: Path) -> None:
    import json

    from ruleengine.commands.bypass_report import build_report, render_text

    run = Run(tmp_path, HTTP_RULES, _download(), stream=AUTO)
    eve = tmp_path / "auto.json"
    eve.write_text("".join(json.dumps(e) + "\n" for e in run.events))
    report = build_report(eve)
    auto = report.by_reason["auto"]
    assert auto.bypassed_flows == 1
    assert auto.bypassed_bytes == run.stats.get("flow_bypassed.local_bytes")
    assert "auto" in render_text(report)
