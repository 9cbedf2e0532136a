"""Live rule reload and the unix socket on a running pipeline, in one process: the
pipeline runs in a thread on a live-like backend (packets from a queue, idle ticks between
them), polls the socket between packets as a run does, and the test is the socket client.
The reload goes through ``run._enable_reload`` (the rule files read again, the engine built
in a thread, swapped between packets) and the commands through ``PipelineTarget``."""

from __future__ import annotations

import argparse
import json
import queue
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from capture_backends.base import Capability, RawPacket
from capture_backends.memory import MemoryBackend
from ruleengine.commands import run
from ruleengine.commands.control import PipelineTarget, RulesInUse
from ruleengine.config import Config
from ruleengine.control.commands import command_table
from ruleengine.control.server import CommandServer
from ruleengine.detect.engine import DetectEngine
from ruleengine.outputs.eve import EveWriter
from ruleengine.outputs.stats import Stats
from ruleengine.pipeline import Pipeline
from ruleengine.rules.loader import load_rule_files
from ruleengine.settings import EngineSettings
from tests.control.sc_client import ScClient
from tests.test_pipeline import CLIENT, SERVER, Conn

SET_BIT = ('alert http any any -> any any (msg:"login"; http.uri; content:"/login"; '
           'flowbits:set,logged_in; flowbits:noalert; sid:1;)')
LIMITED = ('alert udp any any -> any 9999 (msg:"ping"; content:"ping"; '
           'threshold: type limit, track by_src, count 2, seconds 600; sid:2;)')
CHECK_BIT = ('alert http any any -> any any (msg:"secret after login"; '
             'flowbits:isset,logged_in; http.uri; content:"/secret"; sid:3;)')
PONG = 'alert udp any any -> any 9999 (msg:"pong"; content:"pong"; sid:4;)'
BYPASS = 'alert udp any any -> any 7777 (msg:"bypass"; content:"bye"; bypass; sid:5;)'


class QueueBackend(MemoryBackend):
    """Frames put in a queue by the test; an idle tick whenever none is waiting (as the
    live backends yield), ``None`` ends the capture."""

    def __init__(self, **kw: Any) -> None:
        super().__init__([], **kw)
        self.queue: queue.Queue[bytes | None] = queue.Queue()

    def packets(self) -> Iterator[RawPacket]:
        pkt_id = 0
        while not self.closed:
            try:
                frame = self.queue.get(timeout=0.01)
            except queue.Empty:
                yield (time.time(), b"", 0)
                continue
            if frame is None:
                return
            pkt_id += 1
            yield (time.time(), frame, pkt_id)


class LiveRun:
    def __init__(self, tmp_path: Path, rules: str, **backend_kw: Any) -> None:
        self.rules_path = tmp_path / "my.rules"
        self.rules_path.write_text(rules)
        ruleset = load_rule_files([str(self.rules_path)])
        assert not ruleset.errors
        self.eve_path = tmp_path / "eve.json"
        self.eve = EveWriter(self.eve_path)
        settings = EngineSettings(offline=False)
        self.backend = QueueBackend(**backend_kw)
        self.pipeline = Pipeline(settings, DetectEngine(ruleset.rules), eve=self.eve,
                                 stats=Stats(), classify=lambda _c: None)
        args = argparse.Namespace(config=None, overrides=[], rules=[str(self.rules_path)],
                                  extra_rules=[])
        self.rules = RulesInUse(ruleset)
        run._enable_reload(self.pipeline, args, settings, self.rules)
        config, _ = Config.load(None, ["stream.reassembly.depth=3mb"])
        target = PipelineTarget(self.pipeline, self.rules, capture="nfq", runmode="single",
                                ifaces=["NFQ#0"], config=config)
        self.socket = str(tmp_path / "command.socket")
        self.server = CommandServer(self.socket, command_table(target))
        self.pipeline.control = self.server.poll
        self.thread = threading.Thread(target=self.pipeline.run, args=(self.backend,),
                                       daemon=True)
        self.thread.start()
        self.client = ScClient(self.socket, timeout=60)
        assert self.client.handshake() == {"return": "OK"}

    def send(self, frame: bytes) -> None:
        self.backend.queue.put(frame)

    def wait_idle(self) -> None:
        """Until every queued frame went through the pipeline (and was judged)."""
        deadline = time.monotonic() + 10
        while self.backend.queue.qsize() and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(0.05)

    def alerts(self) -> list[int]:
        self.wait_idle()
        assert self.client.command("running-mode")["return"] == "OK"  # a poll: eve flushed
        self.eve.flush()
        return [json.loads(line)["alert"]["signature_id"]
                for line in self.eve_path.read_text().splitlines()
                if '"event_type":"alert"' in line]

    def stop(self) -> None:
        self.client.close()
        self.backend.queue.put(None)
        self.thread.join(20)
        self.server.close()
        self.eve.close()


def _udp(payload: bytes, dport: int = 9999, sport: int = 5000) -> bytes:
    return bytes(Ether() / IP(src=CLIENT, dst=SERVER) / UDP(sport=sport, dport=dport)
                 / payload)


def _http_request(conn: Conn, live: LiveRun, uri: str) -> None:
    conn.clock[0] = time.time()
    start = len(conn.frames)
    conn.send(True, f"GET {uri} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    conn.send(False, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    for _ts, frame in conn.frames[start:]:
        live.send(frame)


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveRun]:
    r = LiveRun(tmp_path, f"{SET_BIT}\n{LIMITED}\n", capabilities=Capability.INLINE)
    yield r
    r.stop()


def test_reload_adds_rules_and_keeps_flowbits_and_thresholds(live: LiveRun) -> None:
    conn = Conn([], clock=[time.time()])
    conn.open()
    for _ts, frame in conn.frames:
        live.send(frame)
    _http_request(conn, live, "/login")  # sets the flowbit (noalert)
    for _ in range(3):
        live.send(_udp(b"ping"))
    assert live.alerts() == [2, 2]  # limit 2
    old_engine = live.pipeline.detect

    live.rules_path.write_text(f"{SET_BIT}\n{LIMITED}\n{CHECK_BIT}\n{PONG}\n")
    assert live.client.command("reload-rules") == {"return": "OK", "message": "done"}
    assert live.pipeline.detect is not old_engine
    assert live.client.command("ruleset-stats")["message"][0]["rules_loaded"] == 4

    _http_request(conn, live, "/secret")  # same flow: the flowbit survived the reload
    live.send(_udp(b"ping"))  # the threshold's count survived: still limited
    live.send(_udp(b"pong"))  # a new rule
    assert live.alerts() == [2, 2, 3, 4]
    verdicts = live.backend.verdicts
    assert len(verdicts) == len({pkt_id for pkt_id, _ in verdicts})  # each judged once


def test_a_bad_rule_file_keeps_the_old_engine_and_says_why(live: LiveRun) -> None:
    old_engine = live.pipeline.detect
    live.rules_path.write_text(f"{SET_BIT}\n{LIMITED}\nalert udp any any -> any any "
                               "(msg:\"broken\"; content:; sid:9;)\n")
    answer = live.client.command("reload-rules")
    assert answer["return"] == "NOK"
    assert "old rules kept" in answer["message"] and "my.rules:3" in answer["message"]
    assert live.pipeline.detect is old_engine
    assert live.client.command("ruleset-stats")["message"][0]["rules_loaded"] == 2
    live.send(_udp(b"ping"))
    assert live.alerts() == [2]  # the old rules still run
    live.rules_path.unlink()
    answer = live.client.command("ruleset-reload-rules")
    assert answer["return"] == "NOK" and "no such file" in answer["message"]


def test_sigusr2_style_request_reloads_between_packets(live: LiveRun) -> None:
    live.rules_path.write_text(f"{PONG}\n")
    before = live.pipeline.last_reload
    live.pipeline.request_reload()  # what the SIGUSR2 handler does
    deadline = time.monotonic() + 30
    while live.pipeline.last_reload == before and time.monotonic() < deadline:
        time.sleep(0.02)
    live.send(_udp(b"pong"))
    live.send(_udp(b"ping"))
    assert live.alerts() == [4]
    times = live.client.command("ruleset-reload-time")["message"]
    assert times[0]["id"] == 0 and times[0]["last_reload"][:4].isdigit()


def test_nonblocking_reload_then_reload_time_changes(live: LiveRun) -> None:
    first = live.client.command("ruleset-reload-time")["message"][0]["last_reload"]
    live.rules_path.write_text(f"{PONG}\n")
    assert live.client.command("ruleset-reload-nonblocking")["message"] == "done"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        now = live.client.command("ruleset-reload-time")["message"][0]["last_reload"]
        if now != first:
            break
        time.sleep(0.05)
    assert now != first
    counters = live.client.command("dump-counters")["message"]
    assert counters["detect"]["engine_reloads"] == 1


def test_bypass_list_and_remove(tmp_path: Path) -> None:
    live = LiveRun(tmp_path, f"{BYPASS}\n", capabilities=Capability.INLINE | Capability.BYPASS,
                   bypass_result=True)
    try:
        live.send(_udp(b"bye", dport=7777, sport=6000))
        assert live.alerts() == [5]
        listed = live.client.command("bypass-list")["message"]
        assert listed["count"] == 1
        flow = listed["flows"][0]
        assert (flow["src_ip"], flow["src_port"], flow["dest_port"], flow["proto"],
                flow["bypass"], flow["reason"]) == (CLIENT, 6000, 7777, "UDP", "capture",
                                                    "rule:5")
        assert live.client.command("bypass-remove", {"flow_id": 1})["return"] == "NOK"
        bad = live.client.command("bypass-remove", {"src_ip": CLIENT})
        assert bad["return"] == "NOK" and "dest_ip" in bad["message"]
        removed = live.client.command("bypass-remove", {"flow_id": flow["flow_id"]})
        assert removed["return"] == "OK" and removed["message"]["count"] == 1
        assert live.client.command("bypass-list")["message"] == {"count": 0, "flows": []}
        assert len(live.backend.forgotten) == 1  # the kernel entry was deleted
        live.send(_udp(b"bye", dport=7777, sport=6000))  # a new flow, inspected again
        assert live.alerts() == [5, 5]
        by_tuple = live.client.command("bypass-remove", {
            "src_ip": SERVER, "src_port": 7777, "dest_ip": CLIENT, "dest_port": 6000,
            "proto": "udp"})  # either direction
        assert by_tuple["return"] == "OK"
    finally:
        live.stop()
    flows = [json.loads(line) for line in live.eve_path.read_text().splitlines()
             if '"event_type":"flow"' in line]
    assert flows[0]["flow"]["reason"] == "forced"


def test_iface_and_shutdown(live: LiveRun) -> None:
    live.send(_udp(b"x"))
    live.wait_idle()
    assert live.client.command("iface-list")["message"] == {"count": 1, "ifaces": ["NFQ#0"]}
    stat = live.client.command("iface-stat", {"iface": "NFQ#0"})["message"]
    assert set(stat) == {"pkts", "drop", "invalid-checksums", "bypassed"}
    assert live.client.command("shutdown")["message"] == "Closing Suricata"
    live.thread.join(10)
    assert not live.thread.is_alive()


def test_conf_get_and_reopen_log_files(live: LiveRun) -> None:
    assert live.client.command("conf-get", {"variable": "stream.reassembly.depth"}) == {
        "return": "OK", "message": "3mb"}
    live.send(_udp(b"ping"))
    assert live.alerts() == [2]
    rotated = live.eve_path.with_suffix(".1")
    live.eve_path.rename(rotated)  # logrotate moves the file, then asks for a reopen
    assert live.client.command("reopen-log-files")["message"] == "done"
    live.send(_udp(b"ping"))
    assert live.alerts() == [2]  # the new eve.json has the second alert only
    assert '"signature_id":2' in rotated.read_text()
