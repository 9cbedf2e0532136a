"""``ruleengine run --af-packet`` under kernel faults (issue 15, section 3): the interface
goes down and comes back up under the running engine; the workers' EVE on a filesystem
that fills. Needs root (namespaces ``f15-*``)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests import kernel
from tests.outputs.test_sink_faults import tiny_tmpfs  # noqa: F401 (fixture)

pytestmark = pytest.mark.kernel
RULES = 'alert udp any any -> any 5001 (msg:"seen"; content:"SEEN"; sid:2;)\n'


def _packet_sockets(net: kernel.NetnsPair) -> int:
    lines = net.run(net.ns_b, "cat", "/proc/net/packet").stdout.splitlines()
    return max(0, len(lines) - 1)


@contextmanager
def afp_engine(net: kernel.NetnsPair, tmp: Path, threads: int, outputs: str,
               afp_extra: str = "") -> Iterator[subprocess.Popen[bytes]]:
    """The engine (this checkout's code) capturing on ``net.if_b`` with ``threads`` workers
    (``afp_extra``: more af-packet keys, yaml lines); stopped with SIGINT at the end of the
    block (its output in ``tmp/engine.out``)."""
    kernel.require_root()
    rules, yaml_file, logdir = tmp / "t.rules", tmp / "s.yaml", tmp / "log"
    rules.write_text(RULES)
    logdir.mkdir(exist_ok=True)
    yaml_file.write_text(
        f"%YAML 1.1\n---\naf-packet:\n  - interface: default\n    threads: {threads}\n"
        f"    cluster-type: cluster_flow\n{afp_extra}outputs:\n{outputs}")
    env = dict(os.environ, PYTHONPATH=str(kernel.REPO_ROOT))
    with open(tmp / "engine.out", "wb") as out:
        proc = net.popen(net.ns_b, sys.executable, "-m", "ruleengine", "run", "--af-packet",
                         net.if_b, "-S", str(rules), "-l", str(logdir), "-c", str(yaml_file),
                         "--no-progress", stdout=out, stderr=subprocess.STDOUT, env=env,
                         cwd=str(kernel.REPO_ROOT))
    try:
        assert kernel.wait_for(lambda: _packet_sockets(net) >= threads
                               or proc.poll() is not None, timeout=30)
        assert proc.poll() is None, (tmp / "engine.out").read_text()
        time.sleep(0.5)  # every worker is in its capture loop
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _send(net: kernel.NetnsPair, sport: int, count: int, tag: bytes = b"") -> None:
    tx = kernel.udp_socket(net, net.ns_a, net.v4_a, sport)
    try:
        for n in range(count):
            tx.sendto(b"SEEN %s %d" % (tag, n), (net.v4_b, 5001))
            time.sleep(0.005)
    finally:
        tx.close()


def _alerts(path: Path) -> list[dict[str, Any]]:
    events = [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []
    return [e for e in events if e.get("event_type") == "alert"]


def _wait_link_up(net: kernel.NetnsPair) -> None:
    for ns, ifname in ((net.ns_a, net.if_a), (net.ns_b, net.if_b)):
        assert kernel.wait_for(lambda ns=ns, ifname=ifname: "LOWER_UP" in net.run(
            ns, "ip", "link", "show", ifname).stdout, timeout=5)


@pytest.mark.parametrize("threads", [1, 2], ids=["one-worker", "two-workers"])
def test_interface_down_and_up_under_the_engine_alerts_after_the_up(tmp_path: Path,
                                                                    threads: int) -> None:
    """Traffic, ``ip link set down``, ``up``, traffic: the alerts of the second burst are in
    EVE (capture re-attached by itself), the outage is warned once (not once per worker) with
    the fix, in the workers' log format (``W#01-<iface>``), and its end is noted once."""
    eve = tmp_path / "log" / "eve.json"
    outputs = "  - eve-log:\n      enabled: yes\n"
    rx = None
    with kernel.netns_pair("f15") as net:
        rx = kernel.udp_socket(net, net.ns_b, net.v4_b, 5001)  # no ICMP port unreachable
        with afp_engine(net, tmp_path, threads, outputs) as proc:
            _send(net, 6001, 5, b"before")
            assert kernel.wait_for(lambda: len(_alerts(eve)) >= 5, timeout=10)
            net.run(net.ns_b, "ip", "link", "set", net.if_b, "down")
            time.sleep(1.0)  # the workers see the error and wait
            net.run(net.ns_b, "ip", "link", "set", net.if_b, "up")
            _wait_link_up(net)
            time.sleep(0.3)
            _send(net, 6002, 5, b"after")
            assert kernel.wait_for(lambda: len(_alerts(eve)) >= 10, timeout=10), \
                (tmp_path / "engine.out").read_text()
            proc.send_signal(signal.SIGINT)
            rc = proc.wait(30)
        rx.close()
        iface = net.if_b
    output = (tmp_path / "engine.out").read_text()
    assert rc == 0, output
    assert "Traceback" not in output
    by_port: dict[int, int] = {}
    for alert in _alerts(eve):
        by_port[alert["src_port"]] = by_port.get(alert["src_port"], 0) + 1
    assert by_port == {6001: 5, 6002: 5}, (by_port, output)
    down = [ln for ln in output.splitlines() if "is down" in ln]
    assert len(down) == 1, output
    assert down[0].startswith(f"warning: af-packet: W#01-{iface}: interface {iface} is down")
    assert f"ip link set {iface} up" in down[0] and f"on {threads} worker(s)" in down[0]
    resumed = [ln for ln in output.splitlines() if "resumed after" in ln]
    assert len(resumed) == 1 and resumed[0].startswith(f"notice: af-packet: W#01-{iface}:"), \
        output


def _wait_full(mnt: Path, timeout: float = 20.0) -> bool:
    return kernel.wait_for(lambda: os.statvfs(mnt).f_bavail == 0, timeout=timeout,
                           interval=0.01)


def test_two_workers_eve_on_a_filesystem_that_fills_keeps_whole_lines(
        tmp_path: Path, tiny_tmpfs: Path) -> None:  # noqa: F811
    """``run --af-packet`` with 2 workers appending to one eve.json on a 256 KiB tmpfs:
    alerts fill it, room comes back twice and fills again. Every line in the file is whole
    JSON (no worker's line follows half of another's), the run goes on, the fault is said."""
    eve = tiny_tmpfs / "eve.json"
    ballast = [tiny_tmpfs / f"ballast{i}" for i in range(2)]
    for path in ballast:
        path.write_bytes(b"\0" * (40 << 10))
    outputs = (f"  - eve-log:\n      enabled: yes\n      filename: {eve}\n"
               "      types:\n        - alert:\n            payload-printable: yes\n")
    with kernel.netns_pair("f15") as net:
        rx = kernel.udp_socket(net, net.ns_b, net.v4_b, 5001)
        senders = [kernel.udp_socket(net, net.ns_a, net.v4_a, 6100 + i) for i in range(8)]
        sent = 0

        def burst(rounds: int, until_full: bool = False) -> None:
            nonlocal sent
            for _ in range(rounds):
                for tx in senders:  # 8 flows: both workers get some
                    tx.sendto(b"SEEN %06d " % sent + b"y" * 300, (net.v4_b, 5001))
                    sent += 1
                time.sleep(0.004)
                if until_full and os.statvfs(tiny_tmpfs).f_bavail == 0:
                    return

        try:
            with afp_engine(net, tmp_path, 2, outputs) as proc:
                for path in [*ballast, None]:
                    burst(2000, until_full=True)
                    assert _wait_full(tiny_tmpfs), (tmp_path / "engine.out").read_text()
                    burst(40)  # more alerts while it is full
                    if path is not None:
                        path.unlink()  # room again
                        time.sleep(1.2)  # the workers' retry period
                proc.send_signal(signal.SIGINT)
                rc = proc.wait(30)
        finally:
            rx.close()
            for tx in senders:
                tx.close()
    output = (tmp_path / "engine.out").read_text()
    assert rc == 0 and "Traceback" not in output, output
    data = eve.read_bytes()
    assert data.endswith(b"\n"), data[-200:]
    ports: set[int] = set()
    for number, line in enumerate(data.splitlines()):
        try:
            event = json.loads(line)
        except ValueError:
            pytest.fail(f"line {number + 1} is not whole: {line[:100]!r}...{line[-60:]!r}")
        assert event["event_type"] == "alert"
        ports.add(event["src_port"])
    assert len(data.splitlines()) > 100 and len(ports) > 1  # flows of both workers
    assert "No space left on device" in output, output
    print(f"2 workers on a full tmpfs: {sent} packets, {len(data.splitlines())} whole lines")


def test_interface_removed_and_created_again_the_engine_re_attaches(tmp_path: Path) -> None:
    """The veth is deleted under ``run --af-packet`` (2 workers) and created again with the
    same name: the workers wait, re-attach (a new fanout group on the new device) and the
    traffic after it alerts; said once when it went and once when capture is back."""
    eve = tmp_path / "log" / "eve.json"
    outputs = "  - eve-log:\n      enabled: yes\n"
    with kernel.netns_pair("f15") as net:
        rx = kernel.udp_socket(net, net.ns_b, net.v4_b, 5001)
        with afp_engine(net, tmp_path, 2, outputs) as proc:
            _send(net, 6001, 5, b"before")
            assert kernel.wait_for(lambda: len(_alerts(eve)) >= 5, timeout=10)
            rx.close()
            net.run(net.ns_a, "ip", "link", "del", net.if_a)  # both ends go
            assert kernel.wait_for(lambda: "is gone" in (tmp_path / "engine.out").read_text(),
                                   timeout=10)
            time.sleep(0.5)
            net.recreate_link()
            rx = kernel.udp_socket(net, net.ns_b, net.v4_b, 5001)
            assert kernel.wait_for(lambda: "re-attached to" in (tmp_path / "engine.out")
                                   .read_text() and _packet_sockets(net) >= 2, timeout=10), \
                (tmp_path / "engine.out").read_text()
            time.sleep(0.3)  # the second worker too
            _send(net, 6002, 5, b"after")
            assert kernel.wait_for(lambda: len(_alerts(eve)) >= 10, timeout=10), \
                (tmp_path / "engine.out").read_text()
            proc.send_signal(signal.SIGINT)
            rc = proc.wait(30)
        rx.close()
        iface = net.if_b
    output = (tmp_path / "engine.out").read_text()
    assert rc == 0 and "Traceback" not in output, output
    by_port: dict[int, int] = {}
    for alert in _alerts(eve):
        by_port[alert["src_port"]] = by_port.get(alert["src_port"], 0) + 1
    assert by_port == {6001: 5, 6002: 5}, (by_port, output)
    gone = [ln for ln in output.splitlines() if "is gone" in ln]
    back = [ln for ln in output.splitlines() if "re-attached to" in ln]
    assert len(gone) == 1 and gone[0].startswith(f"warning: af-packet: W#01-{iface}:"), output
    assert len(back) == 1 and back[0].startswith(f"notice: af-packet: W#01-{iface}:"), output
