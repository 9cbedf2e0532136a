"""``-D``, ``--pidfile``, ``--user``/``--group`` on pcap runs (subprocesses: ``-D`` forks):
the pidfile names the running engine and is removed at exit, a live pidfile refuses the
start, a stale one is replaced, ``-D`` returns at once and the daemon writes its logs,
errors before the daemon is ready reach the caller, unknown users are a one-line error."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from scapy.utils import wrpcap

from tests.commands.test_explain import http_flow, request, response
from tests.kernel import wait_for

REPO = Path(__file__).resolve().parents[2]
RULE = 'alert http any any -> any any (msg:"m"; http.uri; content:"/x"; sid:1;)\n'


def make_case(tmp: Path, flows: int = 1) -> tuple[Path, Path]:
    pkts = []
    for n in range(flows):
        pkts += http_flow(41000 + n, request(b"/x"), response(b"ok"), 1_700_000_000.0 + n)
    pcap, rules = tmp / "c.pcap", tmp / "c.rules"
    wrpcap(str(pcap), pkts)
    rules.write_text(RULE)
    return pcap, rules


def engine(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    # PYTHONPATH: this checkout's code, whatever the directory the engine starts in
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "ruleengine", "run", "--no-progress", *args],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def alerts(logdir: Path) -> int:
    lines = (logdir / "eve.json").read_text().splitlines()
    return sum(json.loads(x)["event_type"] == "alert" for x in lines)


def test_pidfile_removed_at_exit(tmp_path: Path) -> None:
    pcap, rules = make_case(tmp_path)
    pidfile = tmp_path / "run" / "e.pid"
    pidfile.parent.mkdir()
    done = engine("-r", str(pcap), "-S", str(rules), "-l", str(tmp_path / "log"),
                  "--pidfile", str(pidfile))
    assert done.returncode == 0, done.stderr
    assert not pidfile.exists()
    assert alerts(tmp_path / "log") == 1


def test_live_pidfile_refuses_the_start(tmp_path: Path) -> None:
    pcap, rules = make_case(tmp_path)
    other = subprocess.Popen(["sleep", "30"])
    try:
        pidfile = tmp_path / "e.pid"
        pidfile.write_text(f"{other.pid}\n")
        done = engine("-r", str(pcap), "-S", str(rules), "-l", str(tmp_path / "log"),
                      "--pidfile", str(pidfile))
    finally:
        other.kill()
        other.wait()
    assert done.returncode == 1
    assert f"pid file '{pidfile}' exists and process {other.pid} is running" in done.stderr
    assert "Traceback" not in done.stderr
    assert pidfile.read_text().strip() == str(other.pid)  # left alone
    assert not (tmp_path / "log" / "eve.json").exists()


def test_stale_pidfile_is_replaced(tmp_path: Path) -> None:
    pcap, rules = make_case(tmp_path)
    dead = subprocess.Popen(["true"])
    dead.wait()
    pidfile = tmp_path / "e.pid"
    pidfile.write_text(f"{dead.pid}\n")
    done = engine("-r", str(pcap), "-S", str(rules), "-l", str(tmp_path / "log"),
                  "--pidfile", str(pidfile))
    assert done.returncode == 0, done.stderr
    assert not pidfile.exists()


def test_daemon_returns_and_runs_in_background(tmp_path: Path) -> None:
    pcap, rules = make_case(tmp_path, flows=300)
    pidfile, logdir = tmp_path / "e.pid", tmp_path / "log"
    # relative -r and -l: the daemon runs in "/", they are made absolute first
    done = engine("-D", "--pidfile", str(pidfile), "-r", pcap.name, "-S", str(rules),
                  "-l", "log", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    if pidfile.exists():  # still running: the daemon is its own session leader
        pid = int(pidfile.read_text())
        assert pid != os.getpid()
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        assert int(fields[3]) == pid  # session id == pid: setsid()
    assert wait_for(lambda: not pidfile.exists(), timeout=60)
    time.sleep(0.2)
    assert alerts(logdir) == 300


def test_daemon_errors_before_ready_reach_the_caller(tmp_path: Path) -> None:
    _, rules = make_case(tmp_path)
    bad = tmp_path / "not-a.pcap"
    bad.write_bytes(b"garbage that is no pcap")
    done = engine("-D", "--pidfile", str(tmp_path / "e.pid"), "-r", str(bad), "-S",
                  str(rules), "-l", str(tmp_path / "log"))
    assert done.returncode == 1
    assert "error:" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "e.pid").exists()


@pytest.mark.parametrize("flag", ["--user", "--group"])
def test_unknown_user_or_group_is_an_error(tmp_path: Path, flag: str) -> None:
    pcap, rules = make_case(tmp_path)
    done = engine("-r", str(pcap), "-S", str(rules), "-l", str(tmp_path / "log"),
                  flag, "no-such-name-ruleengine")
    assert done.returncode == 1
    assert f"{flag}: no such" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch users")
def test_user_nobody_on_a_pcap_run(tmp_path: Path) -> None:
    pcap, rules = make_case(tmp_path)
    done = engine("-r", str(pcap), "-S", str(rules), "-l", str(tmp_path / "log"),
                  "--user", "nobody")
    assert done.returncode == 0, done.stderr
    assert alerts(tmp_path / "log") == 1  # the logs were opened before the switch
