"""End to end through the pipeline on the in-memory backend: xbits set in one TCP flow and
checked in another, a session tag logging the following packets as EVE ``packet``
events, stream_size on the real stream tracker, and flowint/flowbits/flowvars in the
alert ``metadata``. Every EVE line is checked against the schema."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether

from capture_backends.base import Capability
from capture_backends.memory import MemoryBackend
from ruleengine.detect.engine import DetectEngine
from ruleengine.outputs.eve import EveWriter
from ruleengine.outputs.stats import Stats
from ruleengine.pipeline import Pipeline
from ruleengine.rules.loader import load_rule_text
from ruleengine.settings import EngineSettings
from tests.outputs.eve_schema import validate_line

CLIENT, SERVER = "10.0.0.1", "10.0.0.2"


class _Conn:
    """Frames of one TCP connection (correct sequence numbers and ACKs)."""

    def __init__(self, frames: list[tuple[float, bytes]], sport: int, dport: int = 9000,
                 client: str = CLIENT, server: str = SERVER) -> None:
        self.frames = frames
        self.ends = {True: (client, sport), False: (server, dport)}
        self.seq = {True: 1000, False: 5000}

    def _frame(self, to_server: bool, flags: str, data: bytes = b"") -> None:
        (src, sp), (dst, dp) = self.ends[to_server], self.ends[not to_server]
        ts = 1.0 + len(self.frames) * 0.01
        frame = Ether() / IP(src=src, dst=dst) / TCP(
            sport=sp, dport=dp, flags=flags, seq=self.seq[to_server],
            ack=self.seq[not to_server]) / data
        self.frames.append((ts, bytes(frame)))
        self.seq[to_server] += len(data) + (1 if "S" in flags or "F" in flags else 0)

    def open(self) -> _Conn:
        self._frame(True, "S")
        self._frame(False, "SA")
        self._frame(True, "A")
        return self

    def send(self, to_server: bool, data: bytes) -> None:
        self._frame(to_server, "PA", data)
        self._frame(not to_server, "A")

    def close(self) -> None:
        self._frame(True, "FA")
        self._frame(False, "FA")
        self._frame(True, "A")


def _run(tmp_path: Path, rules: str, frames: list[tuple[float, bytes]],
         alert_options: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    ruleset = load_rule_text(rules)
    assert ruleset.errors == []
    engine = DetectEngine(ruleset.rules)
    assert engine.skipped == []
    eve = EveWriter(tmp_path / "eve.json",
                    type_options={"alert": alert_options} if alert_options else None)
    pipeline = Pipeline(EngineSettings(), engine, eve=eve, stats=Stats(),
                        classify=lambda _c: None)
    pipeline.run(MemoryBackend(frames, capabilities=Capability.OFFLINE))
    eve.close()
    return [validate_line(line) for line in (tmp_path / "eve.json").read_text().splitlines()]


def _alerts(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e["event_type"] == "alert"]


XBITS_RULES = """\
alert tcp any any -> any any (msg:"login"; flow:established,to_server; content:"LOGIN"; \
xbits:set,ET.login,track ip_src,expire 60; xbits:noalert; sid:1;)
alert tcp any any -> any any (msg:"cmd after login"; flow:established,to_server; \
content:"CMD"; xbits:isset,ET.login,track ip_src; sid:2;)
"""


def test_xbits_across_two_flows(tmp_path: Path) -> None:
    frames: list[tuple[float, bytes]] = []
    early = _Conn(frames, 40001).open()
    early.send(True, b"CMD early")  # before the login: no bit yet
    early.close()
    login = _Conn(frames, 40002).open()
    login.send(True, b"LOGIN bob")
    login.close()
    later = _Conn(frames, 40003).open()  # a third flow of the same client host
    later.send(True, b"CMD ls")
    later.close()
    other = _Conn(frames, 40004, client="10.0.0.5").open()  # another host: not set
    other.send(True, b"CMD ls")
    other.close()
    alerts = _alerts(_run(tmp_path, XBITS_RULES, frames))
    assert [(a["alert"]["signature_id"], a["src_port"]) for a in alerts] == [(2, 40003)]


TAG_RULE = ('alert tcp any any -> any any (msg:"tag it"; flow:established,to_server; '
            'content:"EVIL"; tag:session,4,packets; sid:3;)\n')


def _tag_frames() -> list[tuple[float, bytes]]:
    frames: list[tuple[float, bytes]] = []
    conn = _Conn(frames, 40010).open()
    conn.send(True, b"hello")
    conn.send(True, b"EVIL payload")  # trigger (+ its ACK)
    conn.send(False, b"reply one")
    conn.send(True, b"more")
    conn.close()
    return frames


def test_session_tag_logs_the_following_packets(tmp_path: Path) -> None:
    frames = _tag_frames()
    events = _run(tmp_path, TAG_RULE, frames, {"tagged-packets": "yes"})
    (alert,) = _alerts(events)
    assert alert["alert"]["signature_id"] == 3
    packets = [e for e in events if e["event_type"] == "packet"]
    # tag of 4 packets: the alerting packet counts as the first, the next 3 are tagged
    # (stream data alerts on the packet that inspects the reassembled chunk)
    trigger = alert["pcap_cnt"]
    assert [e["pcap_cnt"] for e in packets] == [trigger + 1, trigger + 2, trigger + 3]
    for ev in packets:
        _, frame = frames[ev["pcap_cnt"] - 1]
        raw = base64.b64decode(ev["packet"])
        assert frame.endswith(raw) and raw[:1] == b"\x45"  # the IP packet of that frame
        assert ev["packet_info"] == {"linktype": 12}
        assert ev["flow_id"] == alert["flow_id"]
    # without the alert option no packet event is written (Suricata's default)
    off = tmp_path / "off"
    off.mkdir()
    events = _run(off, TAG_RULE, _tag_frames())
    assert [e["event_type"] for e in events].count("packet") == 0


VARS_RULES = r"""alert tcp any any -> any any (msg:"user"; flow:established,to_server; \
content:"USER "; pcre:"/USER (?P<flow_user>\w+)/"; flowint:users,+,1; flowbits:set,has.user; \
sid:4;)
alert tcp any any -> any any (msg:"small server"; flow:established,to_server; \
content:"QUIT"; stream_size:server,<,12; stream_size:client,>,15; flowvar:user,"root"; sid:5;)
"""


def test_alert_metadata_and_stream_size(tmp_path: Path) -> None:
    frames: list[tuple[float, bytes]] = []
    conn = _Conn(frames, 40020).open()
    conn.send(True, b"USER root\r\n")  # client: 1 (SYN) + 11
    conn.send(False, b"OK\r\n")  # server: 1 + 4
    conn.send(True, b"QUIT\r\n")  # client: 18 > 15, server 5 < 12
    conn.close()
    alerts = _alerts(_run(tmp_path, VARS_RULES, frames))
    # stream_size makes sid 5 a "pkt_stream" rule (Suricata's SigValidate): it alerts on
    # the QUIT packet and again when the raw stream holding QUIT is inspected
    assert [a["alert"]["signature_id"] for a in alerts] == [4, 5, 5]
    assert alerts[1]["pcap_cnt"] < alerts[2]["pcap_cnt"]
    meta = alerts[1]["metadata"]
    assert meta == {"flowbits": ["has.user"], "flowints": {"users": 1},
                    "flowvars": [{"user": "root"}]}
