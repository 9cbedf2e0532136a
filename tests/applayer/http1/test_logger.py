"""EVE ``http`` options as output-json-http.c reads them: ``extended``, ``custom`` (Suricata's
header table, by config or header name, into request_headers/response_headers) and
``dump-all-headers``; alerts and fileinfo always carry the extended fields. Every event
written by a real run is checked against Suricata's schema."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

from ruleengine.cli import main as cli_main
from tests.commands.test_explain import write_case
from tests.outputs.eve_schema import validate_line

REQ = (b"GET /a/b?c=1 HTTP/1.1\r\nHost: example.test:8080\r\nUser-Agent: curl/8.0\r\n"
       b"Cookie: k=v\r\nX-Forwarded-For: 192.0.2.7\r\nReferer: http://r.test/\r\n"
       b"X-Secret: s3\r\n\r\n")
RESP = (b"HTTP/1.1 206 Partial\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Server: nginx\r\nContent-Range: bytes 0-3/10\r\nContent-Length: 4\r\n\r\nbody")


def run_http(tmp: Path, http_options: str, rules: str = "") -> list[dict[str, Any]]:
    pcap, rule_file = write_case(tmp, rules, [(REQ, RESP)])
    yaml = tmp / "suricata.yaml"
    yaml.write_text("%YAML 1.1\n---\noutputs:\n  - eve-log:\n      enabled: yes\n"
                    "      filename: eve.json\n      types:\n        - alert\n"
                    f"        - http:{http_options}\n        - files\n")
    out = tmp / "log"
    with contextlib.redirect_stderr(io.StringIO()):
        assert cli_main(["run", "-r", str(pcap), "-S", str(rule_file), "-l", str(out),
                         "-c", str(yaml), "--no-progress"]) == 0
    lines = (out / "eve.json").read_text().splitlines()
    return [validate_line(line) for line in lines]


def http_event(events: list[dict[str, Any]]) -> dict[str, Any]:
    found = [e["http"] for e in events if e["event_type"] == "http"]
    assert len(found) == 1, events
    obj: dict[str, Any] = found[0]
    return obj


def test_basic_fields_only_without_extended(tmp_path: Path) -> None:
    http = http_event(run_http(tmp_path, " {}"))
    assert http == {"hostname": "example.test", "http_port": 8080, "url": "/a/b?c=1",
                    "http_user_agent": "curl/8.0", "xff": "192.0.2.7",
                    "http_content_type": "text/plain",
                    "content_range": {"raw": "bytes 0-3/10", "start": 0, "end": 3, "size": 10}}


def test_extended_adds_method_protocol_status_referer_length(tmp_path: Path) -> None:
    http = http_event(run_http(tmp_path, "\n            extended: yes"))
    assert http["http_method"] == "GET" and http["protocol"] == "HTTP/1.1"
    assert http["status"] == 206 and http["http_refer"] == "http://r.test/"
    assert http["length"] == 4
    assert "request_headers" not in http and "response_headers" not in http


def test_custom_logs_only_listed_known_headers(tmp_path: Path) -> None:
    # by config name (set_cookie style) and by header name in any case; X-Secret is not in
    # Suricata's table and is ignored, as Suricata ignores it
    http = http_event(run_http(tmp_path, "\n            custom: [cookie, Server, x-secret]"))
    assert http["request_headers"] == [{"name": "Cookie", "value": "k=v"}]
    assert http["response_headers"] == [{"name": "Server", "value": "nginx"}]


def test_dump_all_headers_request_side(tmp_path: Path) -> None:
    http = http_event(run_http(tmp_path, "\n            dump-all-headers: request"))
    names = [h["name"] for h in http["request_headers"]]
    assert names == ["Host", "User-Agent", "Cookie", "X-Forwarded-For", "Referer", "X-Secret"]
    assert "response_headers" not in http


def test_dump_all_headers_both(tmp_path: Path) -> None:
    http = http_event(run_http(tmp_path, "\n            dump-all-headers: both"))
    assert len(http["request_headers"]) == 6
    assert {"name": "Content-Length", "value": "4"} in http["response_headers"]


def test_alert_http_object_is_extended_whatever_the_http_options(tmp_path: Path) -> None:
    events = run_http(tmp_path, " {}", 'alert http any any -> any any (msg:"m"; '
                      'http.method; content:"GET"; sid:1;)\n')
    alert = next(e for e in events if e["event_type"] == "alert")
    assert alert["http"]["http_method"] == "GET" and alert["http"]["status"] == 206
    assert "request_headers" not in alert["http"]
    fileinfo = next(e for e in events if e["event_type"] == "fileinfo")
    assert fileinfo["http"]["http_method"] == "GET"
    assert json.dumps(http_event(events)).count("http_method") == 0


# --- the parser transaction's fast path and the shared alert-style object ------------------

_ODD_REQUESTS = [
    REQ,
    b"GET http://Abs.Test:81/p\xff?q HTTP/1.0\r\nUser-Agent: bad \xfe utf8\r\n"
    b"X-Forwarded-For: 10.0.0.1\xc3\r\nReferer: \xe9\r\nx-forwarded-for: second\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: h\r\nUser\x00-Agent: nul\r\n  X-Forwarded-For : spaced\r\n\r\n",
    b"POST /u HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nab",
]
_ODD_RESPONSES = [
    RESP,
    b"HTTP/1.1 abc Weird\r\nContent-Type: ;x\r\nLocation: /\xffnext\r\n"
    b"Content-Range: bytes */20\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 302 Found\r\nContent-Type:  text/html ; q=1\r\nContent-Range: junk\r\n"
    b"Location: http://r/\r\nLocation: http://s/\r\nContent-Length: 1\r\n\r\nx",
    b"HTTP/1.0 200 OK\r\n\r\nuntil close",
]
_OPTIONS: list[dict[str, Any]] = [
    {}, {"extended": "yes"}, {"extended": True, "custom": ["accept", "Location"]},
    {"dump-all-headers": "both"}, {"extended": "yes", "dump-all-headers": "response"},
]


class _Generic:
    """The transaction seen through another type: the logger's generic path."""

    def __init__(self, tx: Any) -> None:
        self._tx = tx

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tx, name)


def _transactions() -> list[Any]:
    from ruleengine.applayer.http1 import HttpParser

    txs = []
    for request in _ODD_REQUESTS:
        for response in _ODD_RESPONSES:
            parser = HttpParser()
            parser.feed(True, request)
            parser.feed(False, response)
            parser.close()
            txs.extend(parser.transactions)
    return txs


def test_parser_transactions_log_exactly_as_the_generic_path() -> None:
    from ruleengine.applayer.http1.logger import eve_http, eve_http_alert

    txs = _transactions()
    assert len(txs) >= 16
    for tx in txs:
        for options in _OPTIONS:
            fast, generic = eve_http(tx, options), eve_http(_Generic(tx), options)
            assert list(fast.items()) == list(generic.items()), (tx, options)
        assert list(eve_http_alert(tx).items()) == list(eve_http_alert(_Generic(tx)).items())


def test_same_as_alert_only_for_extended_without_header_arrays() -> None:
    from ruleengine.applayer.http1.logger import eve_http, eve_http_alert, same_as_alert

    assert same_as_alert({"extended": "yes"}) and same_as_alert({"extended": True})
    assert not same_as_alert({}) and not same_as_alert({"extended": "no"})
    assert not same_as_alert({"extended": "yes", "dump-all-headers": "request"})
    assert not same_as_alert({"extended": "yes", "custom": ["cookie"]})
    # a custom list of names outside Suricata's table logs nothing: still the same object
    assert same_as_alert({"extended": "yes", "custom": ["x-not-in-the-table"]})
    for tx in _transactions():
        for options in [*_OPTIONS, {"extended": "yes", "custom": ["x-not-in-the-table"]}]:
            if same_as_alert(options):
                assert eve_http(tx, options) == eve_http_alert(tx)


def test_http_event_fileinfo_and_alert_share_one_object_per_stamp(
        tmp_path: Path, monkeypatch: Any) -> None:
    from types import SimpleNamespace

    from ruleengine.applayer.http1 import logger
    from ruleengine.outputs.eve import EveWriter

    tx = next(t for t in _transactions() if t.files)
    flow = SimpleNamespace(src=bytes([10, 0, 0, 1]), dst=bytes([10, 0, 0, 2]), sport=1234,
                           dport=80, proto=6, flow_id=7, vlan=None)
    built: list[Any] = []
    real = logger._tx_object

    def counting(t: Any, extended: bool) -> dict[str, Any]:
        built.append(t)
        return real(t, extended)

    monkeypatch.setattr(logger, "_tx_object", counting)

    def events(options: dict[str, Any], stamp: int | None) -> list[dict[str, Any]]:
        built.clear()
        writer = EveWriter(tmp_path / f"eve-{len(options)}-{stamp}.json",
                           type_options={"http": options})
        writer.stamp = stamp
        writer.app_tx("http", ts=1.0, flow=flow, tx=tx, pcap_cnt=1)
        writer.fileinfo("http", ts=1.0, flow=flow, tx=tx, file=tx.files[0], pcap_cnt=1)
        writer.close()
        return [json.loads(line) for line in writer.path.read_text().splitlines()]

    shared = events({"extended": "yes"}, stamp=1)
    assert len(built) == 1 and shared[0]["http"] == shared[1]["http"]
    assert events({"extended": "yes"}, stamp=None) == shared and len(built) == 2
    basic = events({}, stamp=1)
    assert len(built) == 2 and "http_method" not in basic[0]["http"]
    assert basic[1]["http"] == shared[1]["http"]
