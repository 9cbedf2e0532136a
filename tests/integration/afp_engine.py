"""Run ``ruleengine run --af-packet`` for real between two network namespaces.

Used by the AF_PACKET end-to-end tests and by ``bench/bypass_afpacket.py``:

* ``Engine``: the engine as a subprocess inside a namespace (``ip netns exec``), capturing on
  that namespace's veth end; ``stop()`` sends SIGTERM, waits, and returns its CPU time; then
  ``events()`` reads ``eve.json`` and ``final_stats()`` the merged ``stats.log`` block.
* ``HttpServer`` / ``http_client``: a small HTTP/1.1 server and client, each a separate
  Python process in its own namespace, that report exactly what they sent. The client picks
  its source port so a test knows every flow's 5-tuple in advance.
* ``link_packets``: the veth's own rx/tx counters (an account of the traffic that is
  independent of the engine and of the eBPF maps).

Traffic only flows between the two namespaces of a ``tests.kernel.NetnsPair``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests import kernel

REPO = kernel.REPO_ROOT
DATA = Path(__file__).resolve().parent / "data"
ENGINE = [str(REPO / ".venv" / "bin" / "python"), "-m", "ruleengine"]
CLK_TCK = os.sysconf("SC_CLK_TCK")

# The server answers "GET|POST /<name>?size=N[&delay=S][&rate=R]": headers at once, then,
# S seconds later, N body bytes starting with "BODY-START", paced to R bytes/s if given
# (a POST body is read fully first: Content-Length). One request per connection, then close.
SERVER_CODE = r"""
import socket, sys, threading, time
from urllib.parse import parse_qs, urlsplit
host, port = sys.argv[1], int(sys.argv[2])
family = socket.AF_INET6 if ":" in host else socket.AF_INET
srv = socket.create_server((host, port), family=family, backlog=64)
print("ready", flush=True)
CHUNK = b"A" * (1 << 16)
MARKER = b"BODY-START"

def serve(conn):
    with conn:
        buf = b""
        while b"\r\n\r\n" not in buf:
            data = conn.recv(65536)
            if not data:
                return
            buf += data
        head, rest = buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        query = parse_qs(urlsplit(lines[0].split(" ")[1]).query)
        size = int(query.get("size", ["0"])[0])
        delay = float(query.get("delay", ["0"])[0])
        rate = float(query.get("rate", ["0"])[0])  # bytes/s of the body, 0: as fast as possible
        length = 0
        for line in lines[1:]:
            if line.lower().startswith("content-length:"):
                length = int(line.split(":", 1)[1])
        got = len(rest)
        while got < length:
            data = conn.recv(1 << 20)
            if not data:
                break
            got += len(data)
        # headers at once (they also ACK the request, which lets the engine's stream hand
        # it to the HTTP parser), the body after ``delay``: the engine has decided by then
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                     b"Content-Length: %d\r\nConnection: close\r\n\r\n" % size)
        time.sleep(delay)
        marker = MARKER[:size]
        conn.sendall(marker)
        left = size - len(marker)
        start, sent = time.monotonic(), 0
        while left > 0:
            n = min(left, len(CHUNK))
            conn.sendall(CHUNK[:n])
            left -= n
            sent += n
            if rate:
                ahead = sent / rate - (time.monotonic() - start)
                if ahead > 0:
                    time.sleep(ahead)
        conn.shutdown(socket.SHUT_WR)
        while conn.recv(65536):
            pass

while True:
    conn, _ = srv.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
"""

# argv: server_host server_port client_host client_port path upload_bytes pause_at pause
# (the upload stops for ``pause`` seconds once ``pause_at`` bytes are sent); prints one
# JSON line: bytes sent/received (application payload) and the seconds taken.
CLIENT_CODE = r"""
import json, socket, sys, time
host, port, local, lport, path, upload, pause_at, pause = sys.argv[1:9]
pause_at, pause = int(pause_at), float(pause)
family = socket.AF_INET6 if ":" in host else socket.AF_INET
upload = int(upload)
s = socket.socket(family, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((local, int(lport)))
t0 = time.perf_counter()
s.connect((host, int(port)))
method = "POST" if upload else "GET"
head = (f"{method} {path} HTTP/1.1\r\nHost: test.example\r\nUser-Agent: afp-test\r\n"
        f"Content-Length: {upload}\r\n\r\n").encode()
s.sendall(head)
sent = len(head)
chunk = b"B" * (1 << 16)
while sent - len(head) < upload:
    n = min(len(chunk), upload - (sent - len(head)))
    if pause and sent - len(head) < pause_at <= sent - len(head) + n:
        time.sleep(pause)
    s.sendall(chunk[:n])
    sent += n
received = 0
while True:
    data = s.recv(1 << 20)
    if not data:
        break
    received += len(data)
s.close()
print(json.dumps({"sent": sent, "received": received, "seconds": time.perf_counter() - t0}))
"""


@dataclass
class Transfer:
    """What one client connection sent and received (application bytes)."""

    sent: int
    received: int
    seconds: float


class HttpServer:
    """The HTTP server as a process in ``ns`` listening on ``(host, port)``."""

    def __init__(self, net: kernel.NetnsPair, ns: str, host: str, port: int) -> None:
        self.proc = net.popen(ns, sys.executable, "-c", SERVER_CODE, host, str(port),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if line.strip() != b"ready":
            raise RuntimeError(f"HTTP server did not start: {self.proc.stderr}")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=5)


def start_client(net: kernel.NetnsPair, ns: str, server: tuple[str, int],
                 local: tuple[str, int], path: str, upload: int = 0,
                 pause_at: int = 0, pause: float = 0.0) -> subprocess.Popen[bytes]:
    """Start one HTTP request from ``local`` (fixed source port) to ``server``; with
    ``pause``, the upload stops that long after about ``pause_at`` bytes."""
    return net.popen(ns, sys.executable, "-c", CLIENT_CODE, server[0], str(server[1]),
                     local[0], str(local[1]), path, str(upload), str(pause_at), str(pause),
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish_client(proc: subprocess.Popen[bytes], timeout: float = 60) -> Transfer:
    out, err = proc.communicate(timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(f"HTTP client failed ({proc.returncode}): {err.decode()}")
    data = json.loads(out)
    return Transfer(int(data["sent"]), int(data["received"]), float(data["seconds"]))


def http_client(net: kernel.NetnsPair, ns: str, server: tuple[str, int],
                local: tuple[str, int], path: str, upload: int = 0,
                pause_at: int = 0, pause: float = 0.0, timeout: float = 60) -> Transfer:
    """One HTTP request, waited for."""
    return finish_client(start_client(net, ns, server, local, path, upload, pause_at, pause),
                         timeout)


def link_packets(net: kernel.NetnsPair, ns: str, ifname: str) -> tuple[int, int]:
    """(rx_packets, tx_packets) of ``ifname`` as the kernel counts them."""
    out = net.run(ns, "cat", f"/sys/class/net/{ifname}/statistics/rx_packets",
                  f"/sys/class/net/{ifname}/statistics/tx_packets").stdout.split()
    return int(out[0]), int(out[1])


def write_config(path: Path, *, bypass: bool = True, threads: int = 1,
                 cluster_type: str = "cluster_flow",
                 xdp: bool = False, map_entries: int | None = None,
                 stream_bypass: bool = False, depth: str = "1mb",
                 bypassed_timeout: int = 2, extra_afp: dict[str, Any] | None = None) -> Path:
    """A suricata.yaml for one af-packet run (the ``interface: default`` entry applies to the
    interface given with ``--af-packet``). JSON is valid YAML 1.1."""
    afp: dict[str, Any] = {
        "interface": "default", "threads": threads, "cluster-id": 77,
        "cluster-type": cluster_type, "bypass": bypass,
        "ring-size": 16384, "block-size": 1 << 20, "block-timeout": 10,
    }
    if xdp:
        afp["xdp-filter-file"] = "xdp_filter.o"
        afp["xdp-mode"] = "soft"
    if map_entries is not None:
        afp["ebpf-map-entries"] = map_entries
    afp.update(extra_afp or {})
    timeouts = {"new": 5, "established": 30, "closed": 1, "bypassed": bypassed_timeout}
    config = {
        "af-packet": [afp],
        "stream": {"bypass": stream_bypass, "reassembly": {"depth": depth}},
        "flow-timeouts": {"default": timeouts, "tcp": timeouts, "udp": timeouts},
        "outputs": [{"stats": {"enabled": True, "filename": "stats.log", "append": False}}],
    }
    path.write_text("%YAML 1.1\n---\n" + json.dumps(config, indent=1) + "\n")
    return path


class Engine:
    """``ruleengine run --af-packet IFACE`` inside ``ns``; always stopped by the pair's
    teardown if a test fails before ``stop()``."""

    def __init__(self, net: kernel.NetnsPair, ns: str, ifname: str, rules: Path,
                 logdir: Path, config: Path, *, loader: str | None = None,
                 overrides: tuple[str, ...] = (), workers: int = 1,
                 extra_args: tuple[str, ...] = ()) -> None:
        self.logdir = logdir
        self.workers = workers  # capture sockets to wait for (the config's threads)
        logdir.mkdir(parents=True, exist_ok=True)
        cmd = [*ENGINE, "run", "--af-packet", ifname, "-S", str(rules), "-l", str(logdir),
               "-c", str(config), "--no-progress"]
        if loader:
            cmd += ["--bpf-loader", loader]
        for item in overrides:
            cmd += ["--set", item]
        cmd += list(extra_args)
        self._launch(net, ns, cmd)

    def _launch(self, net: kernel.NetnsPair, ns: str, cmd: list[str]) -> None:
        """Start ``cmd`` in ``ns`` with this checkout's code, stderr to the log dir."""
        self._stderr_path = self.logdir / "engine.stderr"
        self._stderr = open(self._stderr_path, "wb")  # noqa: SIM115 (closed in stop())
        env = dict(os.environ, PYTHONPATH=str(REPO))
        self.proc = net.popen(ns, *cmd, stdout=subprocess.DEVNULL, stderr=self._stderr,
                              env=env, cwd=str(REPO))
        self.cpu_seconds = 0.0
        self.returncode: int | None = None

    def wait_ready(self, net: kernel.NetnsPair, ns: str, ifname: str,
                   timeout: float = 15.0) -> None:
        """Wait until every capture socket is bound (``/proc/net/packet`` lists them) and
        the programs are loaded, so that no early packet is missed."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"engine exited {self.proc.returncode}: {self.stderr()}")
            sockets = net.run(ns, "cat", "/proc/net/packet").stdout.strip().splitlines()[1:]
            if len(sockets) >= self.workers:
                time.sleep(0.3)  # fanout join and the first poll
                return
            time.sleep(0.05)
        raise AssertionError(f"engine not capturing after {timeout}s: {self.stderr()}")

    def _cpu_of_tree(self) -> float:
        """CPU seconds (user + system) of the engine process and its workers so far,
        read from /proc (children that already exited are in cutime/cstime)."""
        total = 0
        for pid in _descendants(self.proc.pid):
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            # fields[11..14] = utime stime cutime cstime (stat fields 14-17)
            total += sum(int(x) for x in fields[11:15])
        return total / CLK_TCK

    def cpu_now(self) -> float:
        return self._cpu_of_tree()

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM the engine (`ip netns exec` execs it: same pid), wait for a clean exit
        and record its whole CPU time (``wait4`` rusage: the process plus its workers).
        Returns the exit status."""
        self.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        try:
            while True:
                pid, status, usage = os.wait4(self.proc.pid, os.WNOHANG)
                if pid:
                    break
                if time.monotonic() > deadline:
                    self.proc.kill()
                    self.proc.wait()
                    raise AssertionError(f"engine ignored SIGTERM for {timeout}s: "
                                         f"{self.stderr()}")
                time.sleep(0.05)
        finally:
            self._stderr.close()
        self.cpu_seconds = usage.ru_utime + usage.ru_stime
        self.returncode = os.waitstatus_to_exitcode(status)
        self.proc.returncode = self.returncode
        return self.returncode

    def stderr(self) -> str:
        try:
            return self._stderr_path.read_text(errors="replace")
        except OSError:
            return ""

    def events(self, event_type: str | None = None) -> list[dict[str, Any]]:
        path = self.logdir / "eve.json"
        if not path.exists():
            return []
        out = []
        lines = path.read_text().splitlines()
        for i, line in enumerate(lines):
            try:
                event = json.loads(line)
            except ValueError:
                if i == len(lines) - 1:  # being written right now
                    break
                raise
            if event_type is None or event.get("event_type") == event_type:
                out.append(event)
        return out

    def final_stats(self) -> dict[str, int]:
        """The merged counters of the run (the last ``stats.log`` block, every counter,
        the bypass insert results included)."""
        path = self.logdir / "stats.log"
        counters: dict[str, int] = {}
        if not path.exists():
            return counters
        for line in path.read_text().splitlines():
            if line.startswith("Date:"):
                counters = {}
            parts = [p.strip() for p in line.split("|")]
            if len(parts) == 3 and parts[2].lstrip("-").isdigit():
                counters[parts[0]] = int(parts[2])
        return counters


class NfqEngine(Engine):
    """``ruleengine run -q QUEUE --nfq-install-rules`` inside ``ns`` (stop, events and stats
    as for the AF_PACKET engine); killed by the pair's teardown if a test fails first."""

    def __init__(self, net: kernel.NetnsPair, ns: str, queue: int, rules: Path,
                 logdir: Path, config: Path, *, overrides: tuple[str, ...] = ()) -> None:
        self.queue = queue
        self.logdir = logdir
        self.workers = 1
        logdir.mkdir(parents=True, exist_ok=True)
        cmd = [*ENGINE, "run", "-q", str(queue), "-S", str(rules), "-l", str(logdir),
               "-c", str(config), "--no-progress", "--nfq-install-rules"]
        for item in overrides:
            cmd += ["--set", item]
        self._launch(net, ns, cmd)

    def wait_bound(self, net: kernel.NetnsPair, ns: str, timeout: float = 30.0) -> None:
        """Until the queue is bound and the engine's rules are in for both families (it
        installs IPv4 first), so the queue sees the connection from its SYN on."""
        deadline = time.monotonic() + timeout
        tag = f"ruleengine-{self.queue}"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"engine exited {self.proc.returncode}: {self.stderr()}")
            bound = any(line.split()[:1] == [str(self.queue)] for line in net.run(
                ns, "cat", "/proc/net/netfilter/nfnetlink_queue").stdout.splitlines())
            if bound and tag in net.run(ns, "ip6tables", "-w", "5", "-t", "mangle",
                                        "-S").stdout:
                return
            time.sleep(0.1)
        raise AssertionError(f"queue {self.queue} not bound after {timeout}s: {self.stderr()}")

    def kill(self) -> None:
        """For a failing test: no wait for a clean exit (teardown removes the namespace and
        with it the rules)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(5)
        self._stderr.close()


def _descendants(pid: int) -> list[int]:
    out = [pid]
    i = 0
    while i < len(out):
        try:
            children = Path(f"/proc/{out[i]}/task/{out[i]}/children").read_text().split()
        except OSError:
            children = []
        out.extend(int(c) for c in children)
        i += 1
    return out


def flow_events_for(events: list[dict[str, Any]], sport: int, dport: int,
                    proto: str = "TCP") -> list[dict[str, Any]]:
    """Flow events of the flow with these ports (client sport, server dport)."""
    return [e for e in events if e.get("event_type") == "flow" and e.get("proto") == proto
            and e.get("src_port") == sport and e.get("dest_port") == dport]


def alerts_by_sid(events: list[dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
    out: dict[int, list[dict[str, Any]]] = {}
    for e in events:
        if e.get("event_type") == "alert":
            out.setdefault(int(e["alert"]["signature_id"]), []).append(e)
    return out


def wait_for_event(engine: Engine, predicate: Any, timeout: float = 5.0) -> bool:
    """Poll eve.json (the engine flushes it when the capture is idle) for an event."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(predicate(e) for e in engine.events()):
            return True
        time.sleep(0.05)
    return False


def wait_for_alert(engine: Engine, sid: int, timeout: float = 5.0) -> bool:
    return wait_for_event(engine, lambda e: e.get("event_type") == "alert"
                          and e["alert"]["signature_id"] == sid, timeout)
