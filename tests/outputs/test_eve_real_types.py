"""EVE events built from the engine's real Packet/Flow/TcpSession/HttpTransaction objects
(the other tests use fakes)."""

from __future__ import annotations

import socket
from pathlib import Path

from ruleengine.applayer.http1 import tx as tx_mod
from ruleengine.decode.packet import TH_ACK, TH_FIN, TH_PUSH, TH_SYN, Packet
from ruleengine.flow import table
from ruleengine.outputs.eve import EveWriter
from ruleengine.rules import model
from ruleengine.stream import tcp as tcp_mod
from tests.outputs.eve_schema import validate_line

CLIENT = socket.inet_aton("10.1.1.1")
SERVER = socket.inet_aton("10.2.2.2")


def make_flow():  # type: ignore[no-untyped-def]
    flow = table.Flow(None, 4, 6, CLIENT, SERVER, 51000, 80, (), 1764085322.0,
                      table.ProtoTimeouts(new=30, established=300, closed=0, bypassed=100))
    flow.pkts_toserver, flow.pkts_toclient = 4, 3
    flow.bytes_toserver, flow.bytes_toclient = 400, 1500
    flow.last_ts = 1764085325.0
    flow.state = table.STATE_CLOSED
    flow.alproto = "http"
    session = tcp_mod.TcpSession()
    session.client.flags = TH_SYN | TH_ACK | TH_PUSH | TH_FIN
    session.server.flags = TH_SYN | TH_ACK | TH_FIN
    flow.tcp = session
    return flow


def make_tx():  # type: ignore[no-untyped-def]
    tx = tx_mod.HttpTransaction(tx_id=0)
    tx.method_raw, tx.uri_raw, tx.request_protocol = b"GET", b"/a?b=c", b"HTTP/1.1"
    tx.host = b"www.example.org"
    tx.request_headers = [(b"Host", b"www.example.org"), (b"User-Agent", b"ua/1"),
                          (b"Referer", b"http://x/")]
    tx.status_code = b"200"
    tx.response_headers = [(b"Content-Type", b"text/html; charset=utf-8")]
    tx.response_message_len = 42
    return tx


def make_rule():  # type: ignore[no-untyped-def]
    span = model.Span("t.rules", 1, 1, 2)
    return model.Rule(action=model.Action.ALERT, protocol="http", src=model.AddressSet(),
                      src_ports=model.PortSet(), direction=model.Direction.ONE_WAY,
                      dst=model.AddressSet(), dst_ports=model.PortSet(), sid=1000001,
                      raw="alert ...", span=span, rev=2, msg="test rule",
                      metadata=["policy balanced-ips", "policy security-ips"])


def test_alert_and_flow_from_real_objects(tmp_path: Path):
    flow = make_flow()
    pkt = Packet(1764085323.5, 0, 120, 4, CLIENT, SERVER, 6, 51000, 80, b"GET /")
    path = tmp_path / "eve.json"
    with EveWriter(path) as eve:
        eve.alert(ts=pkt.ts, flow=flow, pkt=pkt, rule=make_rule(), action="allowed",
                  to_server=True, tx=make_tx(), app_proto=flow.alproto, category="Misc",
                  severity=3, pcap_cnt=4)
        eve.flow(flow, app_proto=flow.alproto, alerted=True, reason="shutdown")
    alert, flow_event = (validate_line(line) for line in path.read_text().splitlines())
    assert alert["tx_id"] == 0
    assert alert["alert"]["metadata"] == {"policy": ["balanced-ips", "security-ips"]}
    assert alert["http"] == {
        "hostname": "www.example.org", "url": "/a?b=c", "http_user_agent": "ua/1",
        "http_content_type": "text/html", "http_refer": "http://x/", "http_method": "GET",
        "protocol": "HTTP/1.1", "status": 200, "length": 42}
    assert flow_event["tcp"] == {"tcp_flags": "1b", "tcp_flags_ts": "1b", "tcp_flags_tc": "13",
                                 "fin": True, "syn": True, "psh": True, "ack": True,
                                 "state": "none", "ts_max_regions": 1, "tc_max_regions": 1}
    assert flow_event["flow"]["state"] == "closed"


def test_bypassed_real_flow(tmp_path: Path):
    flow = make_flow()
    flow.set_bypassed(table.BYPASS_LOCAL, 1764085324.0)
    # the flow table counts every packet; the pipeline marks the skipped ones as bypassed
    for to_server, nbytes in ((True, 1000), (False, 500)):
        if to_server:
            flow.pkts_toserver += 1
            flow.bytes_toserver += nbytes
        else:
            flow.pkts_toclient += 1
            flow.bytes_toclient += nbytes
        flow.count_bypassed(to_server, nbytes)
    path = tmp_path / "eve.json"
    with EveWriter(path) as eve:
        eve.flow(flow, app_proto="http", alerted=False, reason="timeout")
    event = validate_line(path.read_text())
    assert event["flow"]["state"] == "bypassed" and event["flow"]["bypass"] == "local"
    assert event["flow"]["bypassed"] == {"pkts_toserver": 1, "pkts_toclient": 1,
                                         "bytes_toserver": 1000, "bytes_toclient": 500}
    assert event["flow"]["pkts_toserver"] == 5 and event["flow"]["bytes_toclient"] == 2000
