"""A live AF_PACKET run as a daemon that drops to ``nobody``: ``-D --pidfile --user nobody``
inside a network namespace. The daemon runs as uid/gid nobody with only CAP_NET_ADMIN,
CAP_NET_RAW and CAP_SYS_NICE, still captures (the socket was opened before the switch),
writes its alerts to the log opened before it, and removes its pidfile on SIGTERM.
Needs root (namespaces)."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests import kernel

pytestmark = pytest.mark.kernel
RULES = 'alert udp any any -> any 5002 (msg:"seen"; content:"SEEN"; sid:7;)\n'
KEPT = (1 << 12) | (1 << 13) | (1 << 23)


def _status(pid: int) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        out[key] = value.strip()
    return out


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(x) for x in path.read_text().split()] if path.exists() else []


@pytest.mark.parametrize("runmode", ["single", "workers"])
def test_daemon_as_nobody_keeps_capturing(tmp_path: Path, runmode: str) -> None:
    kernel.require_root()
    nobody = pwd.getpwnam("nobody")
    rules, logdir = tmp_path / "t.rules", tmp_path / "log"
    rules.write_text(RULES)
    # nobody removes its pidfile at exit: a directory it can reach and write
    rundir = Path(tempfile.mkdtemp(prefix="ruleengine-opsd-"))
    os.chmod(rundir, 0o777)
    pidfile = rundir / "engine.pid"
    try:
        _run_as_nobody(net_tag="opsd", rules=rules, logdir=logdir, pidfile=pidfile,
                       nobody=nobody, runmode=runmode)
    finally:
        shutil.rmtree(rundir, ignore_errors=True)


def _run_as_nobody(*, net_tag: str, rules: Path, logdir: Path, pidfile: Path,
                   nobody: pwd.struct_passwd, runmode: str) -> None:
    # net.run starts in this checkout's root: ``-m ruleengine`` imports its code
    with kernel.netns_pair(net_tag) as net:
        started = net.run(net.ns_b, sys.executable, "-m", "ruleengine", "run", "--af-packet",
                          net.if_b, "-S", str(rules), "-l", str(logdir), "--runmode", runmode,
                          "--set", "af-packet.1.threads=2", "--no-progress", "-D",
                          "--pidfile", str(pidfile), "--user", "nobody",
                          check=False, timeout=60)
        assert started.returncode == 0, started.stderr
        pid = int(pidfile.read_text())
        try:
            status = _status(pid)
            assert status["Uid"].split() == [str(nobody.pw_uid)] * 4
            assert status["Gid"].split() == [str(nobody.pw_gid)] * 4
            assert int(status["CapEff"], 16) == KEPT
            assert int(status["CapPrm"], 16) == KEPT
            assert len(_children(pid)) == (2 if runmode == "workers" else 0)
            for child in _children(pid):  # forked workers switched too
                assert _status(child)["Uid"].split() == [str(nobody.pw_uid)] * 4
            rx = kernel.udp_socket(net, net.ns_b, net.v4_b, 5002)
            tx = kernel.udp_socket(net, net.ns_a, net.v4_a, 0)
            for n in range(5):
                tx.sendto(b"SEEN %d" % n, (net.v4_b, 5002))
                time.sleep(0.01)
            time.sleep(1.0)
            rx.close()
            tx.close()
        finally:
            os.kill(pid, signal.SIGTERM)
        assert kernel.wait_for(lambda: not Path(f"/proc/{pid}").exists(), timeout=30)
    assert not pidfile.exists()
    events = [json.loads(x) for x in (logdir / "eve.json").read_text().splitlines()]
    assert sum(e.get("event_type") == "alert" for e in events) == 5


def test_pidfile_of_a_running_daemon_refuses_a_second_start(tmp_path: Path) -> None:
    kernel.require_root()
    rules = tmp_path / "t.rules"
    rules.write_text(RULES)
    pidfile = tmp_path / "engine.pid"
    with kernel.netns_pair("opsd") as net:
        cmd = [sys.executable, "-m", "ruleengine", "run", "--af-packet", net.if_b, "-S",
               str(rules), "-l", str(tmp_path / "log"), "--runmode", "single",
               "--no-progress", "-D", "--pidfile", str(pidfile)]
        first = net.run(net.ns_b, *cmd, check=False, timeout=60)
        assert first.returncode == 0, first.stderr
        pid = int(pidfile.read_text())
        try:
            second = net.run(net.ns_b, *cmd, check=False, timeout=60)
            assert second.returncode == 1
            assert "exists and process" in second.stderr
            assert Path(f"/proc/{pid}").exists()
        finally:
            os.kill(pid, signal.SIGTERM)
        assert kernel.wait_for(lambda: not pidfile.exists(), timeout=30)
