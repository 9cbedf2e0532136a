"""``ruleengine run --af-packet`` with the options of the Suricata command line: forked
workers share one fast.log (truncated once with ``append: no``, one line per alert), and
``--runmode single`` runs one worker where the yaml asks for two; SIGHUP reaches every worker.
Needs root (namespaces)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests import kernel

pytestmark = pytest.mark.kernel
RULES = 'alert udp any any -> any 5001 (msg:"seen"; content:"SEEN"; sid:2;)\n'
FLOWS, PER_FLOW = 8, 5


def _packet_sockets(net: kernel.NetnsPair) -> int:
    lines = net.run(net.ns_b, "cat", "/proc/net/packet").stdout.splitlines()
    return max(0, len(lines) - 1)


def _run_engine(tmp_path: Path, extra: list[str]) -> tuple[Path, str, int]:
    kernel.require_root()
    exe = Path(sys.executable).with_name("ruleengine")
    if not exe.exists():
        kernel.skip(f"{exe} not installed (make setup)")
    rules, yaml_file, logdir = tmp_path / "t.rules", tmp_path / "s.yaml", tmp_path / "log"
    rules.write_text(RULES)
    logdir.mkdir()
    (logdir / "fast.log").write_text("a line from an earlier run\n")
    yaml_file.write_text(
        "%YAML 1.1\n---\naf-packet:\n  - interface: default\n    threads: 2\n"
        "    cluster-type: cluster_flow\noutputs:\n  - eve-log:\n      enabled: yes\n"
        "  - fast:\n      enabled: yes\n      append: no\n")
    with kernel.netns_pair() as net:
        proc = net.popen(net.ns_b, str(exe), "run", "--af-packet", net.if_b, "-S", str(rules),
                         "-l", str(logdir), "-c", str(yaml_file), "--no-progress", *extra,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        sockets_opened = []
        try:
            expected = 1 if "single" in extra else 2
            assert kernel.wait_for(lambda: _packet_sockets(net) >= expected
                                   or proc.poll() is not None, timeout=20)
            assert proc.poll() is None, proc.communicate()[0].decode(errors="replace")
            time.sleep(0.5)
            sockets = _packet_sockets(net)
            sockets_opened.append(kernel.udp_socket(net, net.ns_b, net.v4_b, 5001))
            senders = [kernel.udp_socket(net, net.ns_a, net.v4_a, 6000 + i)
                       for i in range(FLOWS)]
            sockets_opened.extend(senders)
            for n in range(PER_FLOW):
                for tx in senders:
                    tx.sendto(b"SEEN %d" % n, (net.v4_b, 5001))
                    time.sleep(0.002)
            time.sleep(1.0)
        finally:
            proc.send_signal(signal.SIGINT)
            output = proc.communicate(timeout=30)[0].decode(errors="replace")
        for sock in sockets_opened:
            sock.close()
    assert proc.returncode == 0, output
    return logdir, output, sockets


def test_workers_share_one_fast_log(tmp_path: Path) -> None:
    logdir, output, sockets = _run_engine(tmp_path, ["--runmode", "workers"])
    assert sockets == 2, output
    lines = (logdir / "fast.log").read_text().splitlines()
    events = [json.loads(x) for x in (logdir / "eve.json").read_text().splitlines()]
    alerts = [e for e in events if e.get("event_type") == "alert"]
    assert len(alerts) == FLOWS * PER_FLOW, output
    assert len(lines) == len(alerts)  # the earlier run's line is gone (append: no)
    assert all("[1:2:0] seen [**]" in x and "{UDP}" in x for x in lines)
    assert {x.split(" -> ")[0].rsplit(":", 1)[1] for x in lines} == {
        str(6000 + i) for i in range(FLOWS)}


def test_runmode_single_runs_one_worker(tmp_path: Path) -> None:
    logdir, output, sockets = _run_engine(tmp_path, ["--runmode", "single"])
    assert sockets == 1, output
    assert len((logdir / "fast.log").read_text().splitlines()) == FLOWS * PER_FLOW


def _alerts(path: Path) -> list[dict[str, object]]:
    events = [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []
    return [e for e in events if e.get("event_type") == "alert"]


def test_sighup_reaches_every_worker_after_logrotate(tmp_path: Path) -> None:
    """logrotate moves eve.json and fast.log and signals the parent: both workers reopen
    their files, so the alerts before the signal are in the moved files and those after it
    in new ones, none lost."""
    kernel.require_root()
    exe = Path(sys.executable).with_name("ruleengine")
    if not exe.exists():
        kernel.skip(f"{exe} not installed (make setup)")
    rules, yaml_file, logdir = tmp_path / "t.rules", tmp_path / "s.yaml", tmp_path / "log"
    rules.write_text(RULES)
    logdir.mkdir()
    yaml_file.write_text(
        "%YAML 1.1\n---\naf-packet:\n  - interface: default\n    threads: 2\n"
        "    cluster-type: cluster_flow\noutputs:\n  - eve-log:\n      enabled: yes\n"
        "  - fast:\n      enabled: yes\n")
    eve, fast = logdir / "eve.json", logdir / "fast.log"
    with kernel.netns_pair() as net:
        proc = net.popen(net.ns_b, str(exe), "run", "--af-packet", net.if_b, "-S", str(rules),
                         "-l", str(logdir), "-c", str(yaml_file), "--no-progress",
                         "--runmode", "workers",
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        opened = []
        try:
            assert kernel.wait_for(lambda: _packet_sockets(net) >= 2
                                   or proc.poll() is not None, timeout=20)
            assert proc.poll() is None, proc.communicate()[0].decode(errors="replace")
            time.sleep(0.5)
            opened.append(kernel.udp_socket(net, net.ns_b, net.v4_b, 5001))
            senders = [kernel.udp_socket(net, net.ns_a, net.v4_a, 6000 + i)
                       for i in range(FLOWS)]
            opened.extend(senders)

            def send_round(n: int) -> None:
                for tx in senders:
                    tx.sendto(b"SEEN %d" % n, (net.v4_b, 5001))
                    time.sleep(0.002)

            send_round(0)
            assert kernel.wait_for(lambda: len(_alerts(eve)) >= FLOWS, timeout=10)
            eve.rename(logdir / "eve.json.1")
            fast.rename(logdir / "fast.log.1")
            proc.send_signal(signal.SIGHUP)
            time.sleep(0.5)
            send_round(1)
            assert kernel.wait_for(lambda: len(_alerts(eve)) >= FLOWS, timeout=10)
        finally:
            proc.send_signal(signal.SIGINT)
            output = proc.communicate(timeout=30)[0].decode(errors="replace")
        for sock in opened:
            sock.close()
    assert proc.returncode == 0, output
    assert len(_alerts(logdir / "eve.json.1")) == FLOWS, output
    assert len(_alerts(eve)) == FLOWS, output
    assert len((logdir / "fast.log.1").read_text().splitlines()) == FLOWS
    assert len(fast.read_text().splitlines()) == FLOWS
