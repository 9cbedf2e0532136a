"""``ruleengine run -r`` with ``--runmode autofp|workers``: a reading process and forked
workers give the events of a run in one process (alert, flow, http, ... modulo order and
flow_id), one whole JSON object per EVE line, one stats event, the same fast.log lines;
the unix socket is answered by the reading process. Real command in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from scapy.layers.inet import IP, TCP, UDP, fragment
from scapy.layers.l2 import Ether
from scapy.packet import Packet, Raw
from scapy.utils import wrpcap

from ruleengine.control.client import CommandClient
from tests.rules.helpers import REPO
from tests.shared import SV_CORPUS

DATA = REPO / "tests" / "data" / "pcaps"
COMPARED = {"alert", "flow", "http", "dns", "tls", "fileinfo", "anomaly", "drop", "netflow"}
# suricata-verify cases with several packets, alerts, drops, flowbits, streams
SV_CASES = ["bug-4663", "alert-distance-within-1", "http-async", "tcp-fastopen-08",
            "flowbit-oring", "detect-bytetest-02", "http-request-header", "bug-4376",
            "http-encoding-gzip-uncompressed", "prefilter-multibuf-multipkts"]
MAC_C, MAC_S = "02:00:00:00:00:01", "02:00:00:00:00:02"
RULES = """\
alert http any any -> any any (msg:"admin uri"; flow:to_server; http.uri; content:"/admin"; sid:10;)
alert http any any -> any any (msg:"ua"; http.user_agent; content:"scanner"; sid:11;)
alert tcp any any -> any 80 (msg:"set"; flow:to_server; content:"POST"; flowbits:set,post; \
flowbits:noalert; sid:12;)
alert http any any -> any any (msg:"post answered"; flow:to_client; flowbits:isset,post; \
http.stat_code; content:"200"; sid:13;)
alert udp any any -> any 53 (msg:"big udp"; content:"|ab ab ab ab|"; sid:14;)
alert tcp any any -> any any (msg:"body"; flow:to_client; content:"secret"; sid:15;)
"""


def _workers_args(workers: int) -> list[str]:
    cpus = len(os.sched_getaffinity(0))
    return ["--runmode", "autofp", "--set",
            f"threading.detect-thread-ratio={(workers + 0.5) / cpus}"]


def _run(tmp: Path, logdir: Path, args: list[str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp / "cache")}
    return subprocess.run([sys.executable, "-m", "ruleengine", "run", "-l", str(logdir),
                           "--no-progress", *args], capture_output=True, text=True,
                          cwd=REPO, env=env, timeout=300)


def _events(logdir: Path) -> tuple[list[str], int]:
    """The compared events (flow_id left out, sorted) and the number of stats events;
    every line must be one whole JSON object."""
    events, stats = [], 0
    for line in (logdir / "eve.json").read_bytes().splitlines():
        event = json.loads(line)
        if event.get("event_type") == "stats":
            stats += 1
        if event.get("event_type") in COMPARED:
            event.pop("flow_id", None)
            event.pop("parent_id", None)
            events.append(json.dumps(event, sort_keys=True))
    return sorted(events), stats


def _fast(logdir: Path) -> list[str]:
    path = logdir / "fast.log"
    return sorted(path.read_text().splitlines()) if path.exists() else []


def _compare(tmp: Path, args: list[str], workers: int) -> list[str]:
    one, many = tmp / "single", tmp / f"w{workers}"
    first = _run(tmp, one, [*args, "--runmode", "single"])
    second = _run(tmp, many, [*args, *_workers_args(workers)])
    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    assert f"{workers} worker processes" in second.stderr
    assert "not honoured" not in second.stderr
    events, stats = _events(one)
    assert (events, stats) == _events(many)
    assert _fast(one) == _fast(many)
    assert not list(many.glob("*.part"))  # the workers' parts were merged and removed
    return events


def _sv_args(case: str) -> list[str]:
    sv = SV_CORPUS / case
    pcap = sorted([*sv.glob("*.pcap"), *sv.glob("*.pcapng")])[0]
    args = ["-r", str(pcap), "-S", str(sv / "test.rules") if (sv / "test.rules").exists()
            else "/dev/null"]
    if (sv / "suricata.yaml").exists():
        args += ["-c", str(sv / "suricata.yaml")]
    spec = yaml.safe_load((sv / "test.yaml").read_text()) or {}
    extra = spec.get("args") or []
    args += [word for item in ([extra] if isinstance(extra, str) else extra)
             for word in str(item).split()]
    return args


@pytest.mark.parametrize("case", SV_CASES)
def test_suricata_verify_case_gives_the_single_run_events(tmp_path: Path, case: str) -> None:
    if not (SV_CORPUS / case).is_dir():
        pytest.skip(f"suricata-verify case {case} not in the shared corpus")
    _compare(tmp_path, _sv_args(case), 3)


@pytest.mark.parametrize("pcap", ["fragments.pcap", "http-get-qinq.pcap", "http-get-sll.pcap",
                                  "http-get.pcapng", "http-get-raw.pcap"])
def test_fixture_pcap_gives_the_single_run_events(tmp_path: Path, pcap: str) -> None:
    rules = tmp_path / "r.rules"
    rules.write_text('alert http any any -> any any (msg:"get"; http.method; content:"GET"; '
                     'sid:1;)\nalert udp any any -> any 53 (msg:"frag"; content:"|10 11 12|"; '
                     'sid:2;)\n')
    _compare(tmp_path, ["-r", str(DATA / pcap), "-S", str(rules)], 2)


def _conversation(n: int, start: float) -> list[Packet]:
    client, server = f"10.1.{n // 250}.{n % 250 + 1}", f"198.51.100.{n % 7 + 1}"
    cp = 30000 + n
    post = n % 3 == 0
    uri = "/admin/panel" if n % 5 == 0 else f"/page/{n}"
    ua = "scanner/1.0" if n % 11 == 0 else "curl/8.5.0"
    body = b"x=1" if post else b""
    request = (f"{'POST' if post else 'GET'} {uri} HTTP/1.1\r\nHost: h{n}.test\r\n"
               f"User-Agent: {ua}\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
    content = (b"secret " if n % 4 == 0 else b"public ") * (200 + n * 13)
    response = (f"HTTP/1.1 200 OK\r\nContent-Length: {len(content)}\r\n\r\n").encode() + content
    cseq, sseq = 1000 + n, 900_000 + n

    def c(flags: str, data: bytes = b"") -> Packet:
        return Ether(src=MAC_C, dst=MAC_S) / IP(src=client, dst=server) / TCP(
            sport=cp, dport=80, flags=flags, seq=cseq, ack=sseq) / Raw(data)

    def s(flags: str, data: bytes = b"") -> Packet:
        return Ether(src=MAC_S, dst=MAC_C) / IP(src=server, dst=client) / TCP(
            sport=80, dport=cp, flags=flags, seq=sseq, ack=cseq) / Raw(data)

    pkts = [c("S")]
    cseq += 1
    pkts.append(s("SA"))
    sseq += 1
    pkts += [c("A"), c("PA", request)]
    cseq += len(request)
    for i in range(0, len(response), 1400):
        pkts.append(s("PA", response[i:i + 1400]))
        sseq += len(response[i:i + 1400])
        pkts.append(c("A"))
    pkts.append(c("FA"))
    cseq += 1
    pkts.append(s("FA"))
    sseq += 1
    pkts.append(c("A"))
    for i, p in enumerate(pkts):
        p.time = start + i * 0.05
    return pkts


@pytest.fixture(scope="module")
def many_flows(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60 overlapping HTTP connections over ~3 minutes of capture time (flow timeouts
    and ticks matter), fragmented UDP datagrams and small UDP flows, in time order."""
    pkts: list[Packet] = []
    for n in range(60):
        pkts += _conversation(n, 1_700_000_000.0 + n * 3.0)
    for n in range(12):
        udp = IP(src=f"10.2.0.{n + 1}", dst="192.0.2.53", id=100 + n) / UDP(
            sport=4000 + n, dport=53) / Raw(b"\xab" * (900 + 400 * (n % 3)))
        frags = fragment(udp, fragsize=512) if n % 2 else [udp]
        for i, frag in enumerate(frags):
            p = Ether(src=MAC_C, dst=MAC_S) / frag
            p.time = 1_700_000_000.0 + n * 15.0 + i * 0.01
            pkts.append(p)
    pkts.sort(key=lambda p: float(p.time))
    path = tmp_path_factory.mktemp("pcap") / "many.pcap"
    wrpcap(str(path), pkts)
    return path


@pytest.mark.parametrize("workers", [2, 3])
def test_many_flows_give_the_single_run_events(tmp_path: Path, many_flows: Path,
                                               workers: int) -> None:
    rules = tmp_path / "r.rules"
    rules.write_text(RULES)
    fast = tmp_path / "fast.yaml"
    fast.write_text("%YAML 1.1\n---\noutputs:\n  - fast:\n      enabled: yes\n"
                    "  - eve-log:\n      enabled: yes\n      types:\n        - alert\n"
                    "        - http\n        - flow\n        - stats\n")
    events = _compare(tmp_path, ["-r", str(many_flows), "-S", str(rules), "-c", str(fast),
                                 "-k", "none"], workers)
    sids = {json.loads(e)["alert"]["signature_id"] for e in events if '"alert"' in e}
    assert sids == {10, 11, 13, 14, 15}
    assert len([e for e in events if '"event_type": "flow"' in e]) == 60 + 12
    assert _fast(tmp_path / "single")


def test_yaml_runmode_is_honoured_and_single_stays_single(tmp_path: Path,
                                                         many_flows: Path) -> None:
    cpus = len(os.sched_getaffinity(0))
    conf = tmp_path / "c.yaml"
    conf.write_text(f"%YAML 1.1\n---\nrunmode: workers\nthreading:\n"
                    f"  detect-thread-ratio: {2.5 / cpus}\n")
    proc = _run(tmp_path, tmp_path / "a", ["-r", str(many_flows), "-S", "/dev/null",
                                           "-c", str(conf)])
    assert proc.returncode == 0, proc.stderr
    assert "runmode workers:" in proc.stderr and "2 worker processes" in proc.stderr
    proc = _run(tmp_path, tmp_path / "b", ["-r", str(many_flows), "-S", "/dev/null",
                                           "-c", str(conf), "--runmode", "single"])
    assert proc.returncode == 0, proc.stderr
    assert "worker processes" not in proc.stderr


def test_unknown_scheduler_warns_and_hashes_flows(tmp_path: Path, many_flows: Path) -> None:
    rules = tmp_path / "r.rules"
    rules.write_text(RULES)
    base = ["-r", str(many_flows), "-S", str(rules), "-k", "none"]
    proc = _run(tmp_path, tmp_path / "a", [*base, *_workers_args(2), "--set",
                                           "autofp-scheduler=active-packets"])
    assert proc.returncode == 0, proc.stderr
    assert "autofp-scheduler active-packets is not implemented" in proc.stderr
    ippair = _run(tmp_path, tmp_path / "b", [*base, *_workers_args(2), "--set",
                                             "autofp-scheduler=ippair"])
    assert ippair.returncode == 0, ippair.stderr
    assert _events(tmp_path / "a") == _events(tmp_path / "b")


def test_unix_socket_is_answered_by_the_reading_process(tmp_path: Path,
                                                        many_flows: Path) -> None:
    # a pcap that takes a while: the same flows many times over, later in time
    socket_path = str(tmp_path / "s.sock")
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    big = tmp_path / "big.pcap"
    from scapy.utils import rdpcap
    base = rdpcap(str(many_flows))
    pkts = []
    for round_ in range(48):  # long enough that the run outlives the questions
        for p in base:
            q = p.copy()
            q.time = float(p.time) + round_ * 400.0
            pkts.append(q)
    wrpcap(str(big), pkts)
    proc = subprocess.Popen(
        [sys.executable, "-m", "ruleengine", "run", "-r", str(big), "-S", "/dev/null",
         "-l", str(tmp_path / "log"), "--no-progress", "--unix-socket", socket_path,
         *_workers_args(2)], cwd=REPO, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not os.path.exists(socket_path) and proc.poll() is None:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        if proc.poll() is not None:
            pytest.fail(f"the run ended before the socket could be used: {proc.stderr}")
        client = CommandClient(socket_path, timeout=30)
        client.connect()
        mode = client.send("running-mode")
        assert mode == {"return": "OK", "message": "autofp"}
        assert client.send("capture-mode")["message"] == "PCAP_FILE"
        assert client.send("uptime")["return"] == "OK"
        assert client.send("version")["return"] == "OK"
        assert client.send("iface-list")["message"]["count"] == 0
        client.close()
    finally:
        _out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
