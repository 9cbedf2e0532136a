"""``ruleengine run`` with eve-log filetypes, and SIGHUP reopening eve.json, through the
real CLI in a subprocess."""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

from tests.outputs.test_sinks import redis_client, redis_server  # noqa: F401 (fixture)
from tests.rules.helpers import REPO

RULE = 'alert udp any any -> any any (msg:"every udp packet"; content:"hello"; sid:7; rev:1;)\n'


def write_udp_pcap(path: Path, count: int) -> None:
    """``count`` Ethernet/IPv4/UDP packets of one flow (checksums zero: UDP allows it)."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    payload = b"hello"
    udp = struct.pack("!HHHH", 40000, 9999, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0,
                     bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]))
    ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
    frame = b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00" + ip + udp
    for i in range(count):
        out.append(struct.pack("<IIII", 1_700_000_000 + i // 1000, (i % 1000) * 1000,
                               len(frame), len(frame)))
        out.append(frame)
    path.write_bytes(b"".join(out))


def _checksum(header: bytes) -> int:
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def yaml_with_eve(tmp_path: Path, eve_lines: str) -> str:
    path = tmp_path / "suricata.yaml"
    path.write_text("%YAML 1.1\n---\noutputs:\n  - eve-log:\n      enabled: yes\n"
                    + eve_lines + "      types:\n        - alert\n")
    return str(path)


def run_cli(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    return subprocess.Popen([sys.executable, "-m", "ruleengine", "run", "--no-progress", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=REPO, env=env)


def setup_run(tmp_path: Path, packets: int) -> tuple[Path, Path, Path]:
    pcap, rules, logdir = tmp_path / "udp.pcap", tmp_path / "udp.rules", tmp_path / "log"
    write_udp_pcap(pcap, packets)
    rules.write_text(RULE)
    logdir.mkdir()
    return pcap, rules, logdir


def alerts_of(lines: list[bytes]) -> list[dict[str, object]]:
    events = [json.loads(line) for line in lines if line.strip()]
    return [e for e in events if e["event_type"] == "alert"]


def test_eve_to_a_unix_dgram_reader(tmp_path: Path) -> None:
    pcap, rules, logdir = setup_run(tmp_path, 5)
    sock_path = str(tmp_path / "eve.sock")
    reader = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    reader.bind(sock_path)
    reader.settimeout(5)
    try:
        config = yaml_with_eve(tmp_path, f"      filetype: unix_dgram\n"
                                         f"      filename: {sock_path}\n")
        proc = run_cli(tmp_path, "-c", config, "-r", str(pcap), "-S", str(rules),
                       "-l", str(logdir))
        _out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        grams = []
        reader.settimeout(0.5)
        while True:
            try:
                grams.append(reader.recv(1 << 16))
            except TimeoutError:
                break
    finally:
        reader.close()
    assert len(alerts_of(grams)) == 5
    assert all(g.endswith(b"\n") for g in grams)
    assert not (logdir / "eve.json").exists()


def test_eve_socket_nobody_listens_is_a_warning_with_the_loss(tmp_path: Path) -> None:
    pcap, rules, logdir = setup_run(tmp_path, 3)
    config = yaml_with_eve(tmp_path, "      filetype: unix_stream\n"
                                     "      filename: nobody.sock\n")
    proc = run_cli(tmp_path, "-c", config, "-r", str(pcap), "-S", str(rules),
                   "-l", str(logdir))
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert f'connecting to socket "{logdir / "nobody.sock"}"' in err
    assert "will keep trying" in err and "events lost" in err


def test_bad_filetype_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    pcap, rules, logdir = setup_run(tmp_path, 1)
    config = yaml_with_eve(tmp_path, "      filetype: kafka\n")
    proc = run_cli(tmp_path, "-c", config, "-r", str(pcap), "-S", str(rules),
                   "-l", str(logdir))
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1
    assert "Traceback" not in err and "filetype" in err and "kafka" in err
    test_mode = run_cli(tmp_path, "-T", "-c", config, "-S", str(rules))
    _out, err = test_mode.communicate(timeout=120)
    assert test_mode.returncode == 1 and "kafka" in err and "Traceback" not in err


def test_eve_to_redis_through_the_cli(tmp_path: Path, redis_server: str) -> None:  # noqa: F811
    pcap, rules, logdir = setup_run(tmp_path, 4)
    config = yaml_with_eve(tmp_path, "      filetype: redis\n      redis:\n"
                                     f"        server: {redis_server}\n"
                                     "        mode: rpush\n        key: ids\n"
                                     "        pipelining:\n          enabled: yes\n"
                                     "          batch-size: 3\n")
    proc = run_cli(tmp_path, "-c", config, "-r", str(pcap), "-S", str(rules),
                   "-l", str(logdir))
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    alerts = alerts_of(redis_client(redis_server).lrange("ids", 0, -1))
    assert len(alerts) == 4  # 3 in a batch, the 4th sent when the writer closed
    assert all(a["host"] == socket.gethostname() for a in alerts)  # Suricata's redis host


def test_sighup_reopens_eve_json_after_logrotate(tmp_path: Path) -> None:
    packets = 60000
    pcap, rules, logdir = setup_run(tmp_path, packets)
    eve = logdir / "eve.json"
    proc = run_cli(tmp_path, "-r", str(pcap), "-S", str(rules), "-l", str(logdir))
    try:
        deadline = time.monotonic() + 120
        while not (eve.exists() and eve.stat().st_size > 0):  # the first batch is out
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline, "no EVE output"
            time.sleep(0.02)
        eve.rename(logdir / "eve.json.1")  # logrotate's move
        proc.send_signal(signal.SIGHUP)  # ... and its postrotate
        _out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err  # SIGHUP's default action would have killed it
    rotated = (logdir / "eve.json.1").read_bytes().splitlines()
    fresh = eve.read_bytes().splitlines()
    assert rotated and fresh, "both files have events: the writer reopened eve.json"
    old_alerts, new_alerts = alerts_of(rotated), alerts_of(fresh)
    # every alert exactly once, none cut in two, in order across the two files
    counts = [a["pcap_cnt"] for a in old_alerts + new_alerts]
    assert counts == list(range(1, packets + 1))
