"""fileinfo events end to end on the in-memory backend: one per file, in the file's
direction, with the transaction's http object, schema-valid; force-hash; truncation at
the body limit; switched by eve-log types."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether

from capture_backends.base import Capability
from capture_backends.memory import MemoryBackend
from ruleengine.applayer import registry
from ruleengine.applayer.files import FilePolicy
from ruleengine.applayer.http1 import HttpConfig
from ruleengine.detect.engine import DetectEngine
from ruleengine.outputs.eve import EveWriter
from ruleengine.outputs.stats import Stats
from ruleengine.pipeline import Pipeline
from ruleengine.rules.loader import load_rule_text
from ruleengine.settings import EngineSettings
from tests.outputs.eve_schema import validate_line

CLIENT, SERVER, CPORT, SPORT = "10.0.0.1", "10.0.0.2", 40000, 80
BODY = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*" * 30
REQUEST = b"GET /files/eicar.com HTTP/1.1\r\nHost: www.example.com\r\n\r\n"
RESPONSE = (b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n"
            b"Content-Disposition: attachment; filename=\"eicar.txt\"\r\n\r\n" % len(BODY)) + BODY
UPLOAD = b"PUT /up/report.pdf HTTP/1.1\r\nHost: www.example.com\r\nContent-Length: 7\r\n\r\n%PDF-1."
CREATED = b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"


def _frames(chunks: list[tuple[bool, bytes]], *, close: bool = True) -> list[tuple[float, bytes]]:
    seq = {True: 1000, False: 5000}
    frames: list[tuple[float, bytes]] = []
    ts = [1.0]

    def frame(to_server: bool, flags: str, data: bytes = b"") -> None:
        src, dst = (CLIENT, SERVER) if to_server else (SERVER, CLIENT)
        sport, dport = (CPORT, SPORT) if to_server else (SPORT, CPORT)
        pkt = Ether() / IP(src=src, dst=dst) / TCP(sport=sport, dport=dport, flags=flags,
                                                   seq=seq[to_server], ack=seq[not to_server])
        frames.append((ts[0], bytes(pkt / data) if data else bytes(pkt)))
        ts[0] += 0.001
        seq[to_server] += len(data) + (1 if "S" in flags or "F" in flags else 0)

    frame(True, "S")
    frame(False, "SA")
    frame(True, "A")
    for to_server, data in chunks:
        for off in range(0, len(data), 1400):
            frame(to_server, "PA", data[off:off + 1400])
            frame(not to_server, "A")
    if close:
        frame(True, "FA")
        frame(False, "FA")
        frame(True, "A")
    return frames


def _run(tmp_path: Path, chunks: list[tuple[bool, bytes]], *, close: bool = True,
         types: frozenset[str] | None = None, policy: FilePolicy | None = None,
         http: HttpConfig | None = None, rules: str | None = None) -> list[dict[str, Any]]:
    applayer = registry.default_settings()
    if http is not None:
        applayer = applayer.with_config("http", http)
    if policy is not None:
        applayer = replace(applayer, files=policy)
    engine = DetectEngine(load_rule_text(rules or
        'alert http any any -> any any (msg:"m"; http.method; content:"GET"; sid:1;)').rules)
    assert engine.skipped == []
    eve = EveWriter(tmp_path / "eve.json", types=types)
    backend = MemoryBackend(_frames(chunks, close=close), capabilities=Capability.OFFLINE)
    settings = EngineSettings(applayer=applayer, http=applayer.config("http"))
    Pipeline(settings, engine, eve=eve, stats=Stats(),
             classify=lambda _c: None).run(backend)
    eve.close()
    lines = (tmp_path / "eve.json").read_text().splitlines()
    for line in lines:
        validate_line(line)
    return [json.loads(line) for line in lines]


def _fileinfo(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e["event_type"] == "fileinfo"]


def test_download_and_upload_each_log_one_file(tmp_path: Path) -> None:
    events = _run(tmp_path, [(True, REQUEST), (False, RESPONSE), (True, UPLOAD),
                             (False, CREATED)])
    download, upload = _fileinfo(events)
    # a download is logged server -> client (LOG_DIR_FLOW_TOCLIENT), an upload the other way
    assert (download["src_ip"], download["src_port"], download["dest_ip"]) == (
        SERVER, SPORT, CLIENT)
    assert (upload["src_ip"], upload["dest_ip"], upload["dest_port"]) == (CLIENT, SERVER, SPORT)
    assert download["app_proto"] == "http"
    assert download["http"]["hostname"] == "www.example.com"
    assert download["http"]["http_method"] == "GET"
    assert download["fileinfo"] == {"filename": "eicar.txt", "gaps": False, "state": "CLOSED",
                                    "stored": False, "size": len(BODY), "tx_id": 0}
    assert upload["fileinfo"]["filename"] == "/up/report.pdf"
    assert (upload["fileinfo"]["size"], upload["fileinfo"]["tx_id"]) == (7, 1)
    assert download["flow_id"] == upload["flow_id"]


def test_force_hash_adds_the_digests(tmp_path: Path) -> None:
    policy = FilePolicy(frozenset({"md5", "sha1", "sha256"}))
    (info,) = _fileinfo(_run(tmp_path, [(True, REQUEST), (False, RESPONSE)], policy=policy))
    assert info["fileinfo"]["md5"] == hashlib.md5(BODY).hexdigest()
    assert info["fileinfo"]["sha1"] == hashlib.sha1(BODY).hexdigest()
    assert info["fileinfo"]["sha256"] == hashlib.sha256(BODY).hexdigest()


def test_file_past_the_body_limit_is_truncated(tmp_path: Path) -> None:
    http = HttpConfig(response_body_limit=1000)
    (info,) = _fileinfo(_run(tmp_path, [(True, REQUEST), (False, RESPONSE)], http=http))
    assert (info["fileinfo"]["state"], info["fileinfo"]["size"]) == ("TRUNCATED", 1000)


def test_files_type_switches_the_events(tmp_path: Path) -> None:
    events = _run(tmp_path, [(True, REQUEST), (False, RESPONSE)],
                  types=frozenset({"alert", "http", "flow"}))
    assert _fileinfo(events) == []
    assert [e["event_type"] for e in events if e["event_type"] == "http"] == ["http"]
    events = _run(tmp_path, [(True, REQUEST), (False, RESPONSE)], types=frozenset({"files"}))
    assert [e["event_type"] for e in events] == ["fileinfo"]


FILE_RULES = """\
alert http any any -> any any (msg:"name"; filename:"EICAR.txt"; sid:1;)
alert http any any -> any any (msg:"ext"; fileext:"txt"; sid:2;)
alert http any any -> any any (msg:"ext miss"; fileext:"exe"; sid:3;)
alert http any any -> any any (msg:"sticky"; flow:to_client; file.name; content:"eicar"; \
startswith; sid:4;)
alert http any any -> any any (msg:"upload"; flow:to_server; file.name; content:".pdf"; \
endswith; sid:5;)
alert http any any -> any any (msg:"not this"; filename:!"eicar.txt"; flow:to_client; sid:6;)
"""


def test_file_keywords_match_the_tracked_file_names(tmp_path: Path) -> None:
    events = _run(tmp_path, [(True, REQUEST), (False, RESPONSE), (True, UPLOAD),
                             (False, CREATED)], rules=FILE_RULES)
    sids = sorted(e["alert"]["signature_id"] for e in events if e["event_type"] == "alert")
    assert sids == [1, 2, 4, 5]
