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
