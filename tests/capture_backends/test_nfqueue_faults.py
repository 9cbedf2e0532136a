"""NFQUEUE faults on the real kernel (issue 15, section 3): an overloaded queue with
fail-open, and firewall rules removed under a running engine. Namespaces ``flt*``, queues
430-439 (other helpers run kernel tests at the same time)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from capture_backends.base import Verdict
from capture_backends.nfqueue import NfqBackend, NfqConfig
from tests import kernel
from tests.capture_backends import test_nfqueue_engine as nfq_engine
from tests.capture_backends.test_nfqueue_kernel import Consumer, _require, tcp_transfer

pytestmark = pytest.mark.kernel


class NsConsumer(Consumer):
    """A consumer whose thread lives in the engine's namespace, as the engine does: the
    periodic rule check runs iptables there."""

    def __init__(self, net: kernel.NetnsPair, backend: NfqBackend, policy: object = None
                 ) -> None:
        super().__init__(backend, policy)  # type: ignore[arg-type]
        self.net = net

    def _loop(self) -> None:
        with self.net.entered(self.net.ns_b):
            super()._loop()


def _slow(delay: float) -> object:
    def policy(_b: NfqBackend, _d: bytes, _p: int, _n: int) -> Verdict:
        time.sleep(delay)  # a slow rule set: the queue fills faster than we judge
        return Verdict.ACCEPT
    return policy


def test_fail_open_flood_with_a_slow_engine_passes_and_counts_the_kernel_accepts() -> None:
    _require()
    sent = 600
    with kernel.netns_pair("flt") as net:
        config = NfqConfig(queues=(430,), queue_maxlen=8, fail_open=True, install_rules=True)
        with net.entered(net.ns_b):
            backend = NfqBackend(config)
        consumer = NsConsumer(net, backend, _slow(0.004))
        consumer.start()
        try:
            rx = kernel.udp_socket(net, net.ns_b, net.v4_b, 7430)
            rx.setsockopt(socket.SOL_SOCKET, 33, 8 << 20)  # SO_RCVBUFFORCE: hold the flood
            tx = kernel.udp_socket(net, net.ns_a, net.v4_a, 0)
            got = kernel.udp_exchange(tx, rx, sent)
            sport = tx.getsockname()[1]
            assert kernel.wait_for(lambda: backend.pending == 0, timeout=10)
            time.sleep(0.3)  # quiet: the fail-open figure is exact
            with net.entered(net.ns_b):
                fail_open = backend.fail_open_accepted()
                stats = backend.stats()
                kernel_stats = backend.kernel_queue_stats()[430]
        finally:
            consumer.stop()
            with net.entered(net.ns_b):
                backend.close()
        judged = consumer.count(sport, 7430)
        counters = backend.counters()
        assert got == sent  # the traffic went on: the engine's verdicts plus the kernel's
        assert 0 < judged < sent, judged  # the engine saw some, the queue overflowed
        assert fail_open is not None
        # every datagram the engine did not judge was accepted by the kernel, counted
        # (plus a few IPv6 ND/MLD packets of the namespace, also queued by the rules)
        assert sent - judged <= fail_open <= sent - judged + 10, (fail_open, judged)
        # read a moment later: an IPv6 ND/MLD packet of the namespace may be in flight
        assert abs(dict(stats.extra)["nfq.fail_open_accepted"] - fail_open) <= 3
        # every packet read got exactly one verdict (one that came while closing: accepted
        # then), none left waiting in the kernel
        assert counters.received == sum(consumer.seen.values())
        assert counters.delivered == counters.received + counters.shutdown_accepted
        assert counters.accepted == counters.delivered and counters.verdict_errors == 0
        assert kernel_stats["dropped"] == 0 and kernel_stats["total"] == 0
        print(f"fail-open flood: {sent} sent, {judged} judged, {fail_open} kernel-accepted")


def _wait_reinstalled(backend: NfqBackend) -> float:
    start = time.monotonic()
    kernel.wait_for(lambda: backend.counters().rules_reinstalled >= 1, timeout=6)
    return time.monotonic() - start


def _flush(ns: str) -> None:
    for tool in ("iptables", "ip6tables"):
        subprocess.run(["ip", "netns", "exec", ns, tool, "-t", "mangle", "-F"], check=True)


def test_rules_flushed_during_a_download_are_reinstalled_once_warned() -> None:
    _require()
    nbytes = 48 << 20
    with kernel.netns_pair("flt") as net:
        config = NfqConfig(queues=(431,), install_rules=True)
        with net.entered(net.ns_b):
            backend = NfqBackend(config)
        notices: list[str] = []
        backend.notice = notices.append
        consumer = NsConsumer(net, backend)
        consumer.start()
        marks: dict[str, int] = {}

        def progress(done: int) -> None:
            if "flushed" not in marks and done >= nbytes // 8:
                _flush(net.ns_b)
                marks["flushed"] = consumer.count(40431, 8431)
                # the receiver stalls (the download goes on afterwards) until the periodic
                # check has put the rules back
                marks["waited_ms"] = int(1000 * _wait_reinstalled(backend))
            if "flushed" in marks and "late" not in marks and done >= nbytes * 7 // 8:
                marks["late"] = consumer.count(40431, 8431)

        try:
            got = tcp_transfer(net, False, 8431, nbytes, 40431, timeout=60, progress=progress)
            time.sleep(0.5)
            with net.entered(net.ns_b):
                complete = backend.rules.complete()
        finally:
            consumer.stop()
            with net.entered(net.ns_b):
                backend.close()
        counters = backend.counters()
        assert got == nbytes
        assert counters.rules_reinstalled >= 1 and complete
        assert len(notices) == 1 and "re-installed" in notices[0], notices
        # packets of the download were judged again after the re-install
        assert consumer.count(40431, 8431) > marks["late"] > marks["flushed"], marks
        assert counters.verdict_errors == 0 and backend.pending == 0
        print(f"rules flushed mid-download: re-installed {counters.rules_reinstalled}x, "
              f"{marks['late'] - marks['flushed']} packets judged between flush and 7/8, "
              f"re-installed {marks['waited_ms']} ms after the flush")


def _start_engine(net: kernel.NetnsPair, tmp: Path, queue: int, nrules: int
                  ) -> tuple[subprocess.Popen[bytes], Path]:
    rule_file = tmp / "many.rules"
    rule_file.write_text("".join(
        f'alert tcp any any -> any {1000 + i % 50000} (msg:"r{i}"; content:"needle{i}"; '
        f"sid:{i + 1}; rev:1;)\n" for i in range(nrules)))
    logdir = tmp / "log"
    logdir.mkdir(exist_ok=True)
    out = tmp / "engine.out"
    cmd = [sys.executable, "-c", nfq_engine._ENGINE, "run", "-S", str(rule_file), "-l",
           str(logdir), "--nfq-install-rules", "-q", str(queue)]
    env = dict(os.environ, PYTHONPATH=str(kernel.REPO_ROOT))
    with open(out, "wb") as fh:
        proc = net.popen(net.ns_b, *cmd, stdout=fh, stderr=subprocess.STDOUT, env=env)
    return proc, out


def test_sigterm_during_start_up_after_the_rules_went_in_removes_them(tmp_path: Path) -> None:
    """SIGTERM while the rule set compiles, after NfqBackend installed the firewall rules
    (before, the default action ended the process and left them behind)."""
    nfq_engine._require()
    queue = 433
    with kernel.netns_pair("flt") as net:
        proc, out = _start_engine(net, tmp_path, queue, nrules=4000)
        try:
            installed = kernel.wait_for(
                lambda: proc.poll() is not None or nfq_engine.rules_installed(net, queue),
                timeout=60, interval=0.01)
            assert installed and proc.poll() is None, out.read_text()
            proc.send_signal(signal.SIGTERM)
            rc = proc.wait(60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        left = [nfq_engine.mangle_rules(net, tool) for tool in ("iptables", "ip6tables")]
        text = out.read_text()
        assert rc == 0, text
        assert "Traceback" not in text
        assert not any(f"ruleengine-{queue}" in rules for rules in left), left
        assert (tmp_path / "log" / "eve.json").exists()  # outputs opened, flushed, closed


@pytest.mark.parametrize("delay", [0.0, 0.2, 0.5, 1.0])
def test_sigterm_at_any_moment_of_start_up_leaves_no_rules(delay: float, tmp_path: Path
                                                            ) -> None:
    nfq_engine._require()
    queue = 434
    with kernel.netns_pair("flt") as net:
        proc, out = _start_engine(net, tmp_path, queue, nrules=200)
        try:
            time.sleep(delay)
            proc.send_signal(signal.SIGTERM)
            rc = proc.wait(60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        left = [nfq_engine.mangle_rules(net, tool) for tool in ("iptables", "ip6tables")]
        text = out.read_text()
        assert rc in (0, -signal.SIGTERM), text  # -15: before any rule or output existed
        assert "Traceback" not in text
        assert not any(f"ruleengine-{queue}" in rules for rules in left), left


def test_a_unix_socket_eve_reader_that_never_reads_does_not_stall_verdicts(tmp_path: Path
                                                                           ) -> None:
    """EVE to a unix_stream socket whose reader accepted and then reads nothing: alerts on
    every packet (MBs, far beyond the socket buffer) do not block the engine, the download
    completes, drops still drop, every event is written, held or counted lost."""
    nfq_engine._require()
    queue = 435
    path = str(tmp_path / "eve.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)
    held: list[socket.socket] = []
    acceptor = threading.Thread(target=lambda: held.append(listener.accept()[0]), daemon=True)
    acceptor.start()
    yaml_text = ("outputs:\n  - eve-log:\n      enabled: yes\n      filetype: unix_stream\n"
                 f"      filename: {path}\n      types:\n        - alert\n"
                 "  - stats:\n      enabled: yes\n      filename: stats.log\n"
                 "stats:\n  enabled: yes\n  interval: 1\n")
    rules = ('drop http any any -> any any (msg:"blocked"; flow:to_server; http.uri; '
             'content:"/blocked"; sid:1; rev:1;)\n'
             'alert tcp any any -> any any (msg:"every packet"; dsize:>0; sid:2; rev:1;)\n')
    try:
        with kernel.netns_pair("flt") as net:
            server = nfq_engine.HttpServer(net, False)
            try:
                with nfq_engine.running_engine(net, tmp_path, rules, yaml_text,
                                               queues=(queue,)) as proc:
                    big = nfq_engine.http_get(net, False, "/big?size=20000000", timeout=30)
                    blocked = nfq_engine.http_get(net, False, "/blocked?size=500", timeout=2)
                    time.sleep(1.5)  # one stats interval
                    nfq_engine.stop_engine(proc, tmp_path)
            finally:
                server.close()
    finally:
        for conn in held:
            conn.close()
        listener.close()
    out = (tmp_path / "engine.out").read_text()
    stats = (tmp_path / "log" / "stats.log").read_text()
    last: dict[str, int] = {}
    for line in stats.splitlines():
        fields = [f.strip() for f in line.split("|")]
        if len(fields) == 3 and fields[2].isdigit():
            last[fields[0]] = int(fields[2])
    assert held, "the reader never got a connection"
    assert big.status == 200 and big.body_bytes == 20_000_000, (big, out)
    assert blocked.status is None, blocked  # the drop verdict still applied
    # every alert is accounted for: sent, held in the bounded backlog, or counted lost;
    # far more than the socket holds (the reader read nothing), yet no verdict waited
    alerts = last["detect.alert"]
    assert alerts > 2000, stats
    assert last["output.eve.written"] + last.get("output.eve.lost", 0) == alerts, stats
    assert last.get("output.eve.lost", 0) > 0, stats  # beyond the 4 MiB backlog: counted
    assert "Traceback" not in out
    print(f"reader that never reads: 20 MB in {big.seconds:.2f} s, {alerts} alerts, "
          f"{last.get('output.eve.lost', 0)} EVE events lost")
