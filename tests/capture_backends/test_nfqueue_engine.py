"""End to end through the engine: ``ruleengine run -q 0 --nfq-install-rules`` in ``ns_b``,
an HTTP server beside it, a client in ``ns_a``. Traffic flows only between the two namespaces.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests import kernel

pytestmark = pytest.mark.kernel

QUEUE = 0
PORT = 8080
_ENGINE = "import sys; from ruleengine.cli import main; sys.exit(main())"


def _require() -> None:
    kernel.require_root()
    kernel.require_command("iptables", "ip6tables")
    try:
        import netfilterqueue  # noqa: F401
    except ImportError:
        kernel.skip("netfilterqueue binding not installed (pip install '.[nfq]')")
    problem = _engine_problem()
    if problem:
        kernel.skip(f"engine CLI has no working `run -q` yet: {problem}")


@functools.lru_cache(maxsize=1)
def _engine_problem() -> str:
    """Empty when ``ruleengine run --help`` works (the engine and its NFQ option exist)."""
    env = dict(os.environ, PYTHONPATH=str(kernel.REPO_ROOT))
    proc = subprocess.run([sys.executable, "-c", _ENGINE, "run", "--help"], capture_output=True,
                          text=True, env=env, timeout=60, check=False)
    if proc.returncode != 0 or "--nfq-install-rules" not in proc.stdout:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        return lines[-1] if lines else f"exit {proc.returncode}"
    return ""


# --------------------------------------------------------------------------------------------
# a tiny HTTP/1.1 server (in ns_b) and client (in ns_a)
# --------------------------------------------------------------------------------------------


class HttpServer:
    """Answers ``GET /<anything>[?size=N]`` with N bytes (default 64). One thread per
    connection; bound in ``ns_b``."""

    def __init__(self, net: kernel.NetnsPair, v6: bool) -> None:
        family = socket.AF_INET6 if v6 else socket.AF_INET
        with net.entered(net.ns_b):
            self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((net.v6_b if v6 else net.v4_b, PORT))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self._stop = False
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    @staticmethod
    def _answer(conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            conn.settimeout(10)
            request = b""
            while b"\r\n\r\n" not in request:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                request += chunk
            target = request.split(b" ", 2)[1]
            size = int(target.split(b"size=", 1)[1]) if b"size=" in target else 64
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                         b"Content-Length: %d\r\nConnection: close\r\n\r\n" % size)
            block = b"\x42" * (1 << 16)
            left = size
            while left > 0:
                conn.sendall(block[:min(left, len(block))])
                left -= min(left, len(block))

    def close(self) -> None:
        self._stop = True
        self._thread.join(2)
        self.sock.close()


@dataclass
class Fetch:
    status: int | None
    body_bytes: int
    error: str | None
    seconds: float


def http_get(net: kernel.NetnsPair, v6: bool, path: str, timeout: float = 3.0,
             progress: Callable[[int], None] | None = None) -> Fetch:
    family = socket.AF_INET6 if v6 else socket.AF_INET
    with net.entered(net.ns_a):
        sock = socket.socket(family, socket.SOCK_STREAM)
    t0 = time.monotonic()
    host = net.v6_b if v6 else net.v4_b
    status: int | None = None
    received = 0
    try:
        sock.settimeout(timeout)
        sock.connect((host, PORT))
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: test\r\nUser-Agent: nfq-test\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(4096)
            if not chunk:
                raise ConnectionError("closed before the response header")
            head += chunk
        header, _, rest = head.partition(b"\r\n\r\n")
        status = int(header.split(b" ", 2)[1])
        length = int(header.lower().split(b"content-length:", 1)[1].split(b"\r\n", 1)[0])
        received = len(rest)
        buf = bytearray(1 << 16)
        while received < length:
            n = sock.recv_into(buf)
            if not n:
                break
            received += n
            if progress is not None:
                progress(received)
        return Fetch(status, received, None, time.monotonic() - t0)
    except OSError as exc:
        return Fetch(status, received, type(exc).__name__, time.monotonic() - t0)
    finally:
        sock.close()


# --------------------------------------------------------------------------------------------
# the engine
# --------------------------------------------------------------------------------------------


def queue_sequence(net: kernel.NetnsPair, queue: int = QUEUE) -> int:
    """Packets queued so far on ``queue`` in ns_b (the kernel's id_sequence); 0 when unbound."""
    text = net.run(net.ns_b, "cat", "/proc/net/netfilter/nfnetlink_queue").stdout
    for line in text.splitlines():
        fields = line.split()
        if fields and fields[0] == str(queue):
            return int(fields[7])
    return 0


def mangle_rules(net: kernel.NetnsPair, binary: str = "iptables") -> str:
    return net.run(net.ns_b, binary, "-t", "mangle", "-S").stdout


def rules_installed(net: kernel.NetnsPair, queue: int) -> bool:
    """The engine's rules are in place for both families (installed IPv4 first, each family
    in one transaction), so the queue sees every packet of a connection from its start."""
    return f"ruleengine-{queue}" in mangle_rules(net, "ip6tables")


@contextlib.contextmanager
def running_engine(net: kernel.NetnsPair, tmp: Path, rules: str, yaml_text: str = "",
                   queues: tuple[int, ...] = (QUEUE,)) -> Iterator[subprocess.Popen[bytes]]:
    rule_file = tmp / "test.rules"
    rule_file.write_text(rules)
    logdir = tmp / "log"
    logdir.mkdir(exist_ok=True)
    cmd = [sys.executable, "-c", _ENGINE, "run", "-S", str(rule_file), "-l", str(logdir),
           "--nfq-install-rules"]
    for queue in queues:
        cmd += ["-q", str(queue)]
    if yaml_text:
        (tmp / "suricata.yaml").write_text("%YAML 1.1\n---\n" + yaml_text)
        cmd += ["-c", str(tmp / "suricata.yaml")]
    env = dict(os.environ, PYTHONPATH=str(kernel.REPO_ROOT))
    out = open(tmp / "engine.out", "wb")  # noqa: SIM115 - closed below
    proc = net.popen(net.ns_b, *cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        ready = kernel.wait_for(lambda: proc.poll() is not None or
                                rules_installed(net, min(queues)), timeout=30, interval=0.1)
        if not ready or proc.poll() is not None:
            raise AssertionError("engine did not start:\n" + (tmp / "engine.out").read_text())
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        out.close()


def stop_engine(proc: subprocess.Popen[bytes], tmp: Path, sig: int = signal.SIGTERM) -> None:
    """SIGTERM/SIGINT: the engine must give every pending packet its verdict and exit
    cleanly (removing the rules it installed)."""
    proc.send_signal(sig)
    code = proc.wait(20)
    assert code == 0, (tmp / "engine.out").read_text()


def events(tmp: Path, event_type: str) -> list[dict[str, Any]]:
    found = []
    eve = tmp / "log" / "eve.json"
    for line in eve.read_text().splitlines():
        event = json.loads(line)
        if event.get("event_type") == event_type:
            found.append(event)
    return found


def alerts(tmp: Path) -> list[dict[str, Any]]:
    return events(tmp, "alert")


def assert_bypassed_flow_logged(tmp: Path) -> None:
    """The download's flow is logged as a capture-bypassed flow (Suricata's EVE flow)."""
    flows = [e["flow"] for e in events(tmp, "flow") if e.get("dest_port") == PORT
             and e["flow"].get("bypass") == "capture"]
    assert flows and flows[0]["state"] == "bypassed", events(tmp, "flow")


# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("v6", [False, True], ids=["ipv4", "ipv6"])
def test_drop_rule_blocks_the_request_and_other_flows_pass(v6: bool, tmp_path: Path) -> None:
    _require()
    rules = ('drop http any any -> any any (msg:"blocked path"; flow:to_server; '
             'http.uri; content:"/blocked"; sid:1001; rev:1;)\n'
             'alert http any any -> any any (msg:"seen ok"; flow:to_server; '
             'http.uri; content:"/ok"; sid:1002; rev:1;)\n')
    with kernel.netns_pair("nfe") as net:
        server = HttpServer(net, v6)
        try:
            with running_engine(net, tmp_path, rules) as proc:
                ok = http_get(net, v6, "/ok?size=100000")
                blocked = http_get(net, v6, "/blocked?size=100000", timeout=2.0)
                again = http_get(net, v6, "/ok?size=5000")
                stop_engine(proc, tmp_path)
        finally:
            server.close()
        assert "ruleengine" not in mangle_rules(net)
    assert ok.status == 200 and ok.body_bytes == 100000, ok
    assert again.status == 200 and again.body_bytes == 5000, again
    assert blocked.status is None and blocked.error is not None, blocked
    by_sid = {a["alert"]["signature_id"]: a["alert"] for a in alerts(tmp_path)}
    assert by_sid[1001]["action"] == "blocked"
    assert by_sid[1002]["action"] == "allowed"


@pytest.mark.parametrize("v6", [False, True], ids=["ipv4", "ipv6"])
def test_reject_sends_a_tcp_reset(v6: bool, tmp_path: Path) -> None:
    _require()
    rules = ('reject http any any -> any any (msg:"reject path"; flow:to_server; '
             'http.uri; content:"/reject"; sid:2001; rev:1;)\n')
    with kernel.netns_pair("nfe") as net:
        server = HttpServer(net, v6)
        try:
            with running_engine(net, tmp_path, rules) as proc:
                rejected = http_get(net, v6, "/reject", timeout=5.0)
                ok = http_get(net, v6, "/fine")
                stop_engine(proc, tmp_path)
        finally:
            server.close()
    assert rejected.error == "ConnectionResetError", rejected
    assert rejected.seconds < 3.0, rejected  # the RST arrived; no timeout
    assert ok.status == 200, ok
    assert [a["alert"]["action"] for a in alerts(tmp_path)] == ["blocked"]


def test_reject_of_udp_sends_icmp_port_unreachable(tmp_path: Path) -> None:
    _require()
    rules = ('reject udp any any -> any 7009 (msg:"reject udp"; content:"knock"; '
             'sid:2101; rev:1;)\n')
    with kernel.netns_pair("nfe") as net:
        rx = kernel.udp_socket(net, net.ns_b, net.v4_b, 7009)
        with net.entered(net.ns_a):
            tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        tx.connect((net.v4_b, 7009))  # a connected UDP socket reports ICMP errors
        tx.settimeout(3)
        with running_engine(net, tmp_path, rules) as proc:
            tx.send(b"knock knock")
            try:
                tx.recv(100)
                outcome = "answer"
            except ConnectionRefusedError:
                outcome = "refused"
            except TimeoutError:
                outcome = "timeout"
            stop_engine(proc, tmp_path)
        rx.settimeout(0.2)
        with pytest.raises(TimeoutError):
            rx.recv(100)  # the datagram itself was dropped
        tx.close()
        rx.close()
    assert outcome == "refused"


BYPASS_YAML = "nfq:\n  mode: accept\n  bypass-mark: 1\n  bypass-mask: 1\n"


def test_bypass_rule_keeps_a_100mb_transfer_out_of_the_queue(tmp_path: Path) -> None:
    _require()
    size = 100 * 1000 * 1000
    rules = ('alert http any any -> any any (msg:"bypass big"; flow:to_server; '
             'http.uri; content:"/big"; bypass; sid:3001; rev:1;)\n')
    with kernel.netns_pair("nfe") as net:
        server = HttpServer(net, False)
        try:
            with running_engine(net, tmp_path, rules, BYPASS_YAML) as proc:
                before = queue_sequence(net)
                big = http_get(net, False, f"/big?size={size}", timeout=30)
                queued = queue_sequence(net) - before
                stop_engine(proc, tmp_path)
        finally:
            server.close()
    assert big.status == 200 and big.body_bytes == size, big
    assert_bypassed_flow_logged(tmp_path)
    print(f"bypass rule: {queued} packets of a {size} byte download reached the queue")
    assert queued <= 50, queued


def test_stream_bypass_at_depth_1mib_keeps_the_rest_out_of_the_queue(tmp_path: Path) -> None:
    _require()
    size = 100 * 1000 * 1000
    yaml_text = BYPASS_YAML + "stream:\n  bypass: yes\n  reassembly:\n    depth: 1mb\n"
    rules = ('alert http any any -> any any (msg:"never"; http.uri; content:"/nothing-here"; '
             'sid:4001; rev:1;)\n')
    with kernel.netns_pair("nfe") as net:
        server = HttpServer(net, False)
        try:
            with running_engine(net, tmp_path, rules, yaml_text) as proc:
                before = queue_sequence(net)
                big = http_get(net, False, f"/data?size={size}", timeout=30)
                queued = queue_sequence(net) - before
                stop_engine(proc, tmp_path, signal.SIGINT)
        finally:
            server.close()
        assert "ruleengine" not in mangle_rules(net)
    assert big.status == 200 and big.body_bytes == size, big
    assert_bypassed_flow_logged(tmp_path)
    # 1 MiB of response is ~725 full-size segments plus the ACKs; the other ~99 MB never
    # reach the queue (~70k packets without bypass)
    print(f"stream.bypass: {queued} packets of a {size} byte download reached the queue")
    assert queued <= 2000, queued


def test_engine_killed_mid_transfer_the_download_completes(tmp_path: Path) -> None:
    """SIGKILL: no clean-up runs; the kernel drops the queue with the process, and the
    --queue-bypass rule lets the rest of the flow through."""
    _require()
    size = 50 * 1000 * 1000
    rules = 'alert http any any -> any any (msg:"dl"; http.uri; content:"/dl"; sid:5001;)\n'
    with kernel.netns_pair("nfe") as net:
        server = HttpServer(net, False)
        try:
            with running_engine(net, tmp_path, rules) as proc:
                queued_at_kill: list[int] = []

                def kill_midway(received: int) -> None:
                    if received > 2_000_000 and not queued_at_kill:
                        queued_at_kill.append(queue_sequence(net))
                        proc.send_signal(signal.SIGKILL)

                download = http_get(net, False, f"/dl?size={size}", timeout=20,
                                    progress=kill_midway)
                assert proc.wait(5) == -signal.SIGKILL
        finally:
            server.close()
        assert "--queue-bypass" in mangle_rules(net)  # left behind, and harmless
    assert queued_at_kill and queued_at_kill[0] > 1000  # it went through the engine
    assert download.status == 200 and download.body_bytes == size, download


def test_bypassed_flow_times_out_by_the_bypassed_timeout(tmp_path: Path) -> None:
    """NFQ has no kernel counters: a capture-bypassed flow ends after
    flow-timeouts.tcp.bypassed, and is then logged."""
    _require()
    yaml_text = BYPASS_YAML + "flow-timeouts:\n  tcp:\n    bypassed: 1\n"
    rules = ('alert http any any -> any any (msg:"bypass"; flow:to_server; http.uri; '
             'content:"/big"; bypass; sid:6001; rev:1;)\n')
    with kernel.netns_pair("nfe") as net:
        server = HttpServer(net, False)
        try:
            with running_engine(net, tmp_path, rules, yaml_text) as proc:
                big = http_get(net, False, "/big?size=1000000", timeout=10)
                eve = tmp_path / "log" / "eve.json"
                logged = kernel.wait_for(
                    lambda: eve.exists() and f'"dest_port":{PORT}' in eve.read_text() and
                    any(e.get("dest_port") == PORT for e in events(tmp_path, "flow")),
                    timeout=8, interval=0.2)
                stop_engine(proc, tmp_path)
        finally:
            server.close()
    assert big.body_bytes == 1000000, big
    assert logged, "the bypassed flow was not logged while the engine ran"
    flow = next(e["flow"] for e in events(tmp_path, "flow") if e.get("dest_port") == PORT)
    assert (flow["state"], flow["bypass"], flow["reason"]) == ("bypassed", "capture", "timeout")


def test_two_queues_one_engine(tmp_path: Path) -> None:
    """-q 0 -q 1: --queue-balance spreads flows (by address) over both queues; one engine
    inspects both and drops by rule on each."""
    _require()
    rules = ('drop http any any -> any any (msg:"blocked"; flow:to_server; http.uri; '
             'content:"/blocked"; sid:7001; rev:1;)\n')
    with kernel.netns_pair("nfe") as net:
        prefix = net.v4_a.rsplit(".", 1)[0]
        sources = [f"{prefix}.{100 + i}" for i in range(12)]
        for src in sources:
            net.run(net.ns_a, "ip", "addr", "add", f"{src}/24", "dev", net.if_a)
        server = HttpServer(net, False)
        try:
            with running_engine(net, tmp_path, rules, queues=(0, 1)) as proc:
                assert "--queue-balance 0:1" in mangle_rules(net)
                ok = [_get_from(net, src, "/ok") for src in sources]
                by_queue = _queue_of_each_source(net, sources)
                # one blocked request per queue (each takes its timeout)
                blocked = [_get_from(net, by_queue[q], "/blocked", timeout=0.7)
                           for q in sorted(by_queue)]
                per_queue = [queue_sequence(net, 0), queue_sequence(net, 1)]
                stop_engine(proc, tmp_path)
        finally:
            server.close()
        assert "ruleengine" not in mangle_rules(net)
    assert ok == [200] * len(sources)
    assert min(per_queue) > 0, per_queue  # both queues carried flows
    assert blocked == [None, None]
    assert len(alerts(tmp_path)) == 2


def _queue_of_each_source(net: kernel.NetnsPair, sources: list[str]) -> dict[int, str]:
    """Queue number -> one source address whose flows land on it (probed one by one)."""
    found: dict[int, str] = {}
    for src in sources:
        before = (queue_sequence(net, 0), queue_sequence(net, 1))
        _get_from(net, src, "/probe")
        after = (queue_sequence(net, 0), queue_sequence(net, 1))
        queue = 0 if after[0] - before[0] > after[1] - before[1] else 1
        found.setdefault(queue, src)
        if len(found) == 2:
            break
    return found


def _get_from(net: kernel.NetnsPair, src: str, path: str, timeout: float = 3.0) -> int | None:
    """Status of GET ``path`` from source address ``src`` (None when it fails)."""
    with net.entered(net.ns_a):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.bind((src, 0))
        sock.connect((net.v4_b, PORT))
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: test\r\n\r\n".encode())
        head = sock.recv(4096)
        return int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else None
    except OSError:
        return None
    finally:
        sock.close()
