"""``ruleengine run -q N --nfq-install-rules`` under signals while traffic is queued (issue 15,
section 3): SIGTERM/SIGINT at any moment flush EVE and stats, remove the firewall rules, and
every packet the kernel queued got exactly one verdict (the engine's accounting checked
against the kernel's /proc/net/netfilter/nfnetlink_queue figures and against what the
receiver got); SIGKILL leaves rules that the next start removes before installing its own,
once. Namespaces ``f15-*``, queues 51-52."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests import kernel
from tests.capture_backends import test_nfqueue_engine as nfq_engine

pytestmark = pytest.mark.kernel
PORT = 5051
RULES = (f'drop udp any any -> any {PORT} (msg:"blocked"; content:"DROPME"; sid:1;)\n'
         f'alert udp any any -> any {PORT} (msg:"seen"; content:"PKT"; sid:2;)\n')
YAML = ("outputs:\n  - eve-log:\n      enabled: yes\n      filename: eve.json\n"
        "      types:\n        - alert:\n            payload-printable: yes\n        - stats\n"
        "  - stats:\n      enabled: yes\n      filename: stats.log\n"
        "stats:\n  enabled: yes\n  interval: 1\n")
SUMMARY = re.compile(
    r"nfq: queue (\d+): (\d+) packets queued by the kernel, (\d+) read, (\d+) verdicts "
    r"\((\d+) accepted, (\d+) dropped, (\d+) repeated; (\d+) accepted at shutdown unjudged\), "
    r"(\d+) still waiting, (\d+) dropped by the kernel \(queue full\), (\d+) \(socket full\), "
    r"(\d+) verdict errors")


def start_engine(net: kernel.NetnsPair, tmp: Path, queue: int, said: str = ""
                 ) -> subprocess.Popen[bytes]:
    """This checkout's engine in ``ns_b``, once its rules are in and it ``said`` that
    (output: tmp/engine.out)."""
    nfq_engine._require()
    (tmp / "test.rules").write_text(RULES)
    (tmp / "suricata.yaml").write_text("%YAML 1.1\n---\n" + YAML)
    logdir = tmp / "log"
    logdir.mkdir(exist_ok=True)
    env = dict(os.environ, PYTHONPATH=str(kernel.REPO_ROOT))
    with open(tmp / "engine.out", "ab") as out:
        proc = net.popen(net.ns_b, sys.executable, "-m", "ruleengine", "run",
                         "-S", str(tmp / "test.rules"), "-c", str(tmp / "suricata.yaml"),
                         "-l", str(logdir), "--nfq-install-rules", "-q", str(queue),
                         stdout=out, stderr=subprocess.STDOUT, env=env,
                         cwd=str(kernel.REPO_ROOT))
    # bound (the kernel lists the queue) and the rules in: rules alone may be a killed
    # run's leftovers
    ready = kernel.wait_for(lambda: proc.poll() is not None or (
        _bound(net, queue) and nfq_engine.rules_installed(net, queue)
        and said in (tmp / "engine.out").read_text()), timeout=60,
        interval=0.05)
    assert ready and proc.poll() is None, (tmp / "engine.out").read_text()
    return proc


def _bound(net: kernel.NetnsPair, queue: int) -> bool:
    text = net.run(net.ns_b, "cat", "/proc/net/netfilter/nfnetlink_queue").stdout
    return any(line.split()[:1] == [str(queue)] for line in text.splitlines())


@dataclass
class Flood:
    """Datagrams ``PKT n`` (and every 10th ``DROPME n``) from ns_a to a receiver in ns_b,
    one every ~0.5 ms, until ``stop()``; ``received`` holds the numbers that arrived."""

    net: kernel.NetnsPair
    sent: list[int] = field(default_factory=list)
    received: set[int] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self.rx = kernel.udp_socket(self.net, self.net.ns_b, self.net.v4_b, PORT)
        self.rx.setsockopt(socket.SOL_SOCKET, 33, 8 << 20)  # SO_RCVBUFFORCE
        self.tx = kernel.udp_socket(self.net, self.net.ns_a, self.net.v4_a, 0)
        self._thread = threading.Thread(target=self._send, daemon=True)
        self._thread.start()

    @staticmethod
    def payload(n: int) -> bytes:
        return (b"DROPME %06d" if n % 10 == 9 else b"PKT %06d") % n

    def _send(self) -> None:
        n = 0
        while not self._stop.is_set():
            self.tx.sendto(self.payload(n), (self.net.v4_b, PORT))
            self.sent.append(n)
            n += 1
            time.sleep(0.0005)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.rx.settimeout(1.0)
        while True:
            try:
                data = self.rx.recv(256)
            except TimeoutError:
                break
            self.received.add(int(data.split()[1]))
        self.rx.close()
        self.tx.close()


def _eve(tmp: Path) -> list[dict[str, Any]]:
    data = (tmp / "log" / "eve.json").read_bytes()
    assert not data or data.endswith(b"\n"), data[-200:]
    return [json.loads(line) for line in data.splitlines()]  # every line whole JSON


def _alerted(events: list[dict[str, Any]], sid: int) -> list[int]:
    return [int(e["payload_printable"].split()[1]) for e in events
            if e["event_type"] == "alert" and e["alert"]["signature_id"] == sid]


def _summary(output: str) -> dict[str, int]:
    match = SUMMARY.search(output)
    assert match, output
    names = ("queue", "queued", "read", "verdicts", "accepted", "dropped", "repeated",
             "shutdown", "waiting", "kernel_dropped", "user_dropped", "verdict_errors")
    return dict(zip(names, (int(g) for g in match.groups()), strict=True))


@pytest.mark.parametrize("delay", [0.3, 1.5], ids=["early", "later"])
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_under_nfq_traffic_loses_no_packet_and_skips_no_verdict(
        tmp_path: Path, sig: signal.Signals, delay: float) -> None:
    queue = 51
    with kernel.netns_pair("f15") as net:
        proc = start_engine(net, tmp_path, queue)
        flood = Flood(net)
        try:
            time.sleep(delay)
            queued_before = nfq_engine.queue_sequence(net, queue)
            proc.send_signal(sig)
            rc = proc.wait(30)
            time.sleep(0.3)  # the rules are gone: these pass without the engine
        finally:
            flood.stop()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        left = [nfq_engine.mangle_rules(net, tool) for tool in ("iptables", "ip6tables")]
    output = (tmp_path / "engine.out").read_text()
    assert rc == 0, output
    assert "Traceback" not in output
    assert not any(f"ruleengine-{queue}" in rules for rules in left), left
    events = _eve(tmp_path)
    assert events[-1]["event_type"] == "stats", events[-1]  # flushed by the signal
    blocked, seen = set(_alerted(events, 1)), set(_alerted(events, 2))
    sent = set(flood.sent)
    drops = {n for n in sent if n % 10 == 9}
    assert blocked <= drops and seen <= sent - drops
    # every DROPME the engine judged was dropped, every other one arrived: no verdict was
    # skipped, and no accept was lost, before, during or after the shutdown
    assert blocked.isdisjoint(flood.received), sorted(blocked & flood.received)[:10]
    assert drops - blocked <= flood.received, sorted(drops - blocked - flood.received)[:10]
    assert sent - drops <= flood.received, sorted(sent - drops - flood.received)[:10]
    # the engine's accounting against the kernel's: each queued packet read, each read one
    # got one verdict, nothing left in the queue or dropped by the kernel
    s = _summary(output)
    assert s["queue"] == queue
    assert s["queued"] == s["read"] == s["verdicts"] >= queued_before, s
    assert s["waiting"] == s["kernel_dropped"] == s["user_dropped"] == s["verdict_errors"] == 0
    assert s["dropped"] == len(blocked), (s, len(blocked))
    judged = len(blocked) + len(seen)
    assert judged + s["shutdown"] <= s["verdicts"], s
    assert len(blocked) > 0 and len(seen) > 0
    stats = events[-1]["stats"]
    assert stats["detect"]["alert"] == judged, stats["detect"]  # none lost on the way to EVE
    print(f"{sig.name} after {delay} s: {len(sent)} sent, {s['queued']} queued, {judged} "
          f"judged, {s['shutdown']} accepted at shutdown, {len(sent) - s['queued']} "
          "passed after the rules went out")


def _tagged(net: kernel.NetnsPair, queue: int) -> int:
    return sum(line.count(f"ruleengine-{queue}") for tool in ("iptables", "ip6tables")
               for line in nfq_engine.mangle_rules(net, tool).splitlines())


def test_sigkill_leaves_rules_the_next_start_removes_once(tmp_path: Path) -> None:
    queue = 52
    with kernel.netns_pair("f15") as net:
        first = start_engine(net, tmp_path, queue)
        installed = _tagged(net, queue)
        flood = Flood(net)
        try:
            time.sleep(0.5)
            first.send_signal(signal.SIGKILL)
            assert first.wait(10) == -signal.SIGKILL
            time.sleep(0.3)
            left = _tagged(net, queue)  # no clean-up ran; --queue-bypass lets packets pass
            (tmp_path / "second").mkdir()
            second = start_engine(net, tmp_path / "second", queue, "left by an earlier run")
            after_start = _tagged(net, queue)
            mark = len(flood.sent)
            time.sleep(0.5)
            second.send_signal(signal.SIGTERM)
            rc = second.wait(30)
        finally:
            flood.stop()
        gone = _tagged(net, queue)
    output = (tmp_path / "second" / "engine.out").read_text()
    assert installed > 0 and left == installed
    assert after_start == installed, (after_start, installed)  # re-installed once, no doubles
    assert rc == 0 and "Traceback" not in output, output
    assert gone == 0
    notes = [ln for ln in output.splitlines() if "left by an earlier run" in ln]
    assert len(notes) == 1 and f"removed {installed} firewall rules" in notes[0], output
    # packets the kernel held for the killed engine die with its queue (UDP: lost, TCP
    # retransmits); from the restart on nothing is lost and the new engine judges traffic
    later = {n for n in flood.sent if n >= mark and n % 10 != 9}
    assert later and later <= flood.received, sorted(later - flood.received)[:10]
    events = _eve(tmp_path / "second")
    assert any(n >= mark for n in _alerted(events, 2)), "the second engine judged nothing"
    assert _summary(output)["verdict_errors"] == 0
