"""fast.log: the line format of Suricata's alert-fastlog.c, the ``fast`` output settings and
the real command writing it beside eve.json."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ruleengine.config import Config
from ruleengine.outputs.config import fast_log_settings
from ruleengine.outputs.eve import OutputError
from ruleengine.outputs.fastlog import _KNOWN_PROTO as KNOWN_PROTO
from ruleengine.outputs.fastlog import (
    FastLogWriter,
    format_address,
    format_alert,
    format_time,
    proto_label,
)
from tests.rules.helpers import REPO

DEMO_PCAP = REPO / "examples" / "pcaps" / "http-demo.pcap"
LINE_RE = re.compile(
    r"^(?P<ts>\d\d/\d\d/\d{4}-\d\d:\d\d:\d\d\.\d{6})  (?P<action>\[w?Drop\] )?\[\*\*\] "
    r"\[(?P<gid>\d+):(?P<sid>\d+):(?P<rev>\d+)\] (?P<msg>.*) \[\*\*\] "
    r"\[Classification: (?P<cls>[^\]]*)\] \[Priority: (?P<prio>\d+)\] "
    r"\{(?P<proto>[^}]+)\} (?P<src>\S+):(?P<sp>\d+) -> (?P<dst>\S+):(?P<dp>\d+)$"
)


@dataclass
class FakeAction:
    value: str = "alert"


@dataclass
class FakeRule:
    gid: int = 1
    sid: int = 1000
    rev: int = 3
    msg: str = "a message"
    action: FakeAction = field(default_factory=FakeAction)


@dataclass
class FakePacket:
    ts: float = 1_700_000_000.123456
    ip_version: int = 4
    src: bytes = socket.inet_aton("10.0.0.1")
    dst: bytes = socket.inet_aton("10.0.0.2")
    proto: int = 6
    sport: int = 1234
    dport: int = 80
    icmp_type: int = -1
    icmp_code: int = -1
    payload: bytes = b""


@pytest.fixture
def tz() -> Iterator[None]:
    """A zone east of UTC, so local time and UTC differ (restored afterwards)."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = "Europe/Berlin"
    time.tzset()
    yield
    if old is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = old
    time.tzset()


def test_time_is_local_with_microseconds(tz: None) -> None:
    ts = 1_700_000_000.123456  # 2023-11-14 22:13:20 UTC = 23:13:20 in Berlin (CET)
    assert format_time(ts) == "11/14/2023-23:13:20.123456"
    t = time.localtime(1_688_000_000)  # summer time: +2
    assert format_time(1_688_000_000.5) == time.strftime("%m/%d/%Y-%H:%M:%S", t) + ".500000"
    assert format_time(1_688_000_000.5).split("-")[1].startswith("02:")


def test_ipv4_tcp_line(tz: None) -> None:
    line = format_alert(FakePacket(), FakeRule(), "Misc Attack", 2, blocked=False)
    assert line == ("11/14/2023-23:13:20.123456  [**] [1:1000:3] a message [**] "
                    "[Classification: Misc Attack] [Priority: 2] {TCP} 10.0.0.1:1234 -> "
                    "10.0.0.2:80\n")


def test_no_classtype_prints_null_as_suricata() -> None:
    line = format_alert(FakePacket(), FakeRule(), None, 3, blocked=False)
    assert "[Classification: (null)] [Priority: 3]" in line


def test_drop_prefixes() -> None:
    drop = FakeRule(action=FakeAction("drop"))
    reject = FakeRule(action=FakeAction("rejectboth"))
    assert "  [Drop] [**] [1:1000:3]" in format_alert(FakePacket(), drop, None, 3, blocked=True)
    assert "  [wDrop] [**]" in format_alert(FakePacket(), drop, None, 3, blocked=False)
    assert "  [wDrop] [**]" in format_alert(FakePacket(), reject, None, 3, blocked=False)
    assert "  [**]" in format_alert(FakePacket(), FakeRule(), None, 3, blocked=False)
    assert "Drop]" not in format_alert(FakePacket(), FakeRule(), None, 3, blocked=False)


def test_icmp_prints_type_and_code_in_place_of_ports() -> None:
    pkt = FakePacket(proto=1, sport=0, dport=0, icmp_type=8, icmp_code=0)
    assert format_alert(pkt, FakeRule(), None, 3, blocked=False).endswith(
        "{ICMP} 10.0.0.1:8 -> 10.0.0.2:0\n")
    v6 = FakePacket(ip_version=6, src=socket.inet_pton(socket.AF_INET6, "2001:db8::1"),
                    dst=socket.inet_pton(socket.AF_INET6, "ff02::1"), proto=58,
                    icmp_type=135, icmp_code=0)
    assert format_alert(v6, FakeRule(), None, 3, blocked=False).endswith(
        "{IPv6-ICMP} 2001:0db8:0000:0000:0000:0000:0000:0001:135 -> "
        "ff02:0000:0000:0000:0000:0000:0000:0001:0\n")


def test_ipv6_addresses_are_written_in_full() -> None:
    for text in ("::1", "2001:db8:0:1::ab", "fe80::214:22ff:fe01:203"):
        full = format_address(socket.inet_pton(socket.AF_INET6, text))
        groups = full.split(":")
        assert len(groups) == 8 and all(len(g) == 4 for g in groups)
        assert socket.inet_pton(socket.AF_INET6, full) == socket.inet_pton(
            socket.AF_INET6, text)


def test_protocol_names_follow_suricatas_table() -> None:
    assert len(KNOWN_PROTO) == 144
    assert [proto_label(n) for n in (1, 6, 17, 47, 58, 132)] == [
        "ICMP", "TCP", "UDP", "GRE", "IPv6-ICMP", "SCTP"]
    assert proto_label(200) == "PROTO:200"
    assert proto_label(143) == "Ethernet"


def test_non_ip_packet_gets_the_raw_form() -> None:
    pkt = FakePacket(ip_version=0, src=b"", dst=b"", proto=0, payload=b"\x01\xab")
    line = format_alert(pkt, FakeRule(), None, 3, blocked=False)
    assert line.endswith("[Priority: 3] [**] [Raw pkt: 01 AB ]\n")


def test_writer_appends_or_truncates(tmp_path: Path) -> None:
    path = tmp_path / "fast.log"
    path.write_text("old line\n")
    writer = FastLogWriter(path, append=True)
    writer.alert(FakePacket(), FakeRule(), None, 3, blocked=False)
    # line buffered: visible before close, as a live capture's tail -f needs
    assert path.read_text().count("\n") == 2
    writer.close()
    writer = FastLogWriter(path, append=False)
    writer.alert(FakePacket(), FakeRule(sid=7), None, 3, blocked=False)
    writer.close()
    lines = path.read_text().splitlines()
    assert len(lines) == 1 and "[1:7:3]" in lines[0]


def test_writer_open_error_is_an_output_error(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match=r"fast\.log: cannot open"):
        FastLogWriter(tmp_path / "no-such-dir" / "fast.log")


def test_fast_output_settings() -> None:
    def fast(body: object) -> tuple[bool, str, bool]:
        settings = fast_log_settings([{"eve-log": {}}, {"fast": body}])
        return settings.enabled, settings.filename, settings.append

    assert fast({"enabled": "yes", "filename": "alerts.txt", "append": "no"}) == (
        True, "alerts.txt", False)
    assert fast({"enabled": "yes"}) == (True, "fast.log", True)
    assert fast({"filename": "x.log"})[0] is False  # Suricata skips an output without enabled
    assert fast({"enabled": "no"})[0] is False
    assert fast_log_settings(Config({}).get_list("outputs")).enabled is False
    # the shipped suricata.yaml enables it, as Suricata's does
    assert fast_log_settings(Config.load(None)[0].get_list("outputs")).enabled is True


# --- the real command ----------------------------------------------------------------


def _yaml(tmp_path: Path, fast: str) -> Path:
    path = tmp_path / "suricata.yaml"
    path.write_text("%YAML 1.1\n---\noutputs:\n  - eve-log:\n      enabled: yes\n"
                    f"  - fast:\n{fast}")
    return path


def _run(args: list[str], tmp_path: Path, tz: str = "UTC") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "TZ": tz}
    return subprocess.run([sys.executable, "-m", "ruleengine", "run", *args, "--no-progress"],
                          capture_output=True, text=True, cwd=REPO, env=env, timeout=120)


def _eve_alerts(logdir: Path) -> list[dict[str, object]]:
    events = [json.loads(line) for line in (logdir / "eve.json").read_text().splitlines()]
    return [e for e in events if e.get("event_type") == "alert"]


def test_cli_fast_log_matches_eve_alerts(tmp_path: Path) -> None:
    rules = tmp_path / "demo.rules"
    rules.write_text(
        'alert http any any -> any any (msg:"demo GET"; flow:to_server; http.method; '
        'content:"GET"; classtype:web-application-attack; sid:10; rev:2;)\n'
        'alert tcp any any -> any 80 (msg:"no class"; flow:to_server; content:"HTTP"; '
        "sid:11;)\n")
    config = _yaml(tmp_path, "      enabled: yes\n      filename: alerts-fast.log\n")
    logdir = tmp_path / "out"
    proc = _run(["-r", str(DEMO_PCAP), "-S", str(rules), "-l", str(logdir), "-c",
                 str(config)], tmp_path, tz="America/New_York")
    assert proc.returncode == 0, proc.stderr
    lines = (logdir / "alerts-fast.log").read_text().splitlines()
    alerts = _eve_alerts(logdir)
    assert alerts and len(lines) == len(alerts)
    for line, event in zip(lines, alerts, strict=True):
        m = LINE_RE.match(line)
        assert m, line
        alert = event["alert"]
        assert isinstance(alert, dict)
        assert int(m["sid"]) == alert["signature_id"] and int(m["rev"]) == alert["rev"]
        assert m["msg"] == alert["signature"] and int(m["prio"]) == alert["severity"]
        assert m["cls"] == (alert["category"] or "(null)")
        assert (m["src"], int(m["sp"]), m["dst"], int(m["dp"])) == (
            event["src_ip"], event["src_port"], event["dest_ip"], event["dest_port"])
        assert m["proto"] == event["proto"] and m["action"] is None
        # local time of the child's zone (New York), EVE's in UTC
        utc = time.strptime(str(event["timestamp"])[:19], "%Y-%m-%dT%H:%M:%S")
        hours = (int(m["ts"][11:13]) - utc.tm_hour) % 24
        assert hours in (19, 20)  # UTC-5 (EST) or UTC-4 (EDT)
    assert {int(LINE_RE.match(x)["sid"]) for x in lines} == {10, 11}  # type: ignore[index]


def test_cli_fast_log_off_and_drop_prefix(tmp_path: Path) -> None:
    rules = tmp_path / "drop.rules"
    rules.write_text('drop http any any -> any any (msg:"drop GET"; flow:to_server; '
                     'http.method; content:"GET"; sid:20;)\n')
    off = _yaml(tmp_path, "      enabled: no\n")
    proc = _run(["-r", str(DEMO_PCAP), "-S", str(rules), "-l", str(tmp_path / "off"), "-c",
                 str(off)], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert not (tmp_path / "off" / "fast.log").exists()
    on = _yaml(tmp_path, "      enabled: yes\n")
    for extra, prefix in (([], "[wDrop] "), (["--simulate-ips"], "[Drop] ")):
        logdir = tmp_path / ("ips" if extra else "ids")
        proc = _run(["-r", str(DEMO_PCAP), "-S", str(rules), "-l", str(logdir), "-c", str(on),
                     *extra], tmp_path)
        assert proc.returncode == 0, proc.stderr
        lines = (logdir / "fast.log").read_text().splitlines()
        assert lines and len(lines) == len(_eve_alerts(logdir))
        assert all(LINE_RE.match(x) and f"  {prefix}[**]" in x for x in lines), lines


def test_cli_icmp_and_ipv6_lines(tmp_path: Path) -> None:
    scapy_all = pytest.importorskip("scapy.all")
    inet, inet6, l2 = scapy_all, scapy_all, scapy_all
    pkts = [
        l2.Ether() / inet.IP(src="192.0.2.1", dst="192.0.2.2") / inet.ICMP(type=8, code=0)
        / b"ping",
        l2.Ether() / inet6.IPv6(src="2001:db8::1", dst="2001:db8::2")
        / inet.UDP(sport=5353, dport=9999) / b"hello",
    ]
    for i, pkt in enumerate(pkts):
        pkt.time = 1_700_000_000 + i
    pcap = tmp_path / "mixed.pcap"
    scapy_all.wrpcap(str(pcap), pkts)
    rules = tmp_path / "mixed.rules"
    rules.write_text('alert icmp any any -> any any (msg:"ping"; itype:8; sid:30;)\n'
                     'alert udp any any -> any any (msg:"v6 udp"; content:"hello"; sid:31;)\n')
    logdir = tmp_path / "out"
    proc = _run(["-r", str(pcap), "-S", str(rules), "-l", str(logdir), "-c",
                 str(_yaml(tmp_path, "      enabled: yes\n"))], tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = (logdir / "fast.log").read_text().splitlines()
    assert len(lines) == 2, lines
    assert lines[0].endswith("{ICMP} 192.0.2.1:8 -> 192.0.2.2:0")
    assert lines[1].endswith("{UDP} 2001:0db8:0000:0000:0000:0000:0000:0001:5353 -> "
                             "2001:0db8:0000:0000:0000:0000:0000:0002:9999")
    assert lines[0].startswith("11/14/2023-22:13:20.000000  [**] [1:30:0] ping")
