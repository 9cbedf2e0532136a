"""``ruleengine hunt`` on a real Dask ``LocalCluster`` (2 worker processes): the alerts of a
hunt over many pcaps are those of plain sequential ``ruleengine run -r`` of each file,
flow-hash shards of a big file give the alerts of the whole file, and bad input is
reported without stopping the rest of the archive."""

from __future__ import annotations

import dataclasses
import json
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

distributed = pytest.importorskip("distributed")

from scapy.layers.inet import ICMP, IP, TCP, UDP, fragment  # noqa: E402
from scapy.layers.inet6 import IPv6  # noqa: E402
from scapy.layers.l2 import ARP, Ether  # noqa: E402
from scapy.packet import Packet, Raw  # noqa: E402
from scapy.utils import wrpcap  # noqa: E402

from ruleengine.cli import main  # noqa: E402
from ruleengine.commands import hunt as hunt_module  # noqa: E402
from ruleengine.commands.hunt_shard import flow_key, shard_of  # noqa: E402

CORPUS = Path("/work/shared/corpus/suricata-verify")
MACS = {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:02"}  # no ARP lookups by scapy
RULES = """\
alert http any any -> any any (msg:"HTTP GET"; flow:to_server,established; http.method; \
content:"GET"; sid:1000001;)
alert tcp any any -> any any (msg:"TCP SYN"; flags:S; sid:1000002;)
alert http any any -> any any (msg:"HTTP 200"; http.stat_code; content:"200"; sid:1000003;)
alert tcp any any -> any any (msg:"HTTP/1 in stream"; flow:established; content:"HTTP/1."; \
sid:1000004;)
alert http any any -> any any (msg:"uri seen"; http.uri; content:"/"; flowbits:set,hunt.uri; \
flowbits:noalert; sid:1000005;)
alert http any any -> any any (msg:"body after uri"; flowbits:isset,hunt.uri; file_data; \
content:"e"; sid:1000006;)
alert udp any any -> any any (msg:"UDP marker"; content:"HUNT"; sid:1000007;)
alert http any any -> any any (msg:"EICAR"; file_data; content:"EICAR"; sid:1000008;)
"""

AlertKey = tuple[int, str, int, str, int, int, str]


def corpus_pcaps(count: int) -> list[Path]:
    """``count`` different pcaps spread over the corpus (its _ext copies left out)."""
    found = sorted(p for p in CORPUS.rglob("*.pcap") if "_ext" not in p.parts)
    if len(found) < count:
        pytest.skip(f"the corpus holds {len(found)} pcaps, {count} needed")
    step = len(found) / count
    return [found[int(i * step)] for i in range(count)]


def tcp_session(client: str, server: str, sport: int, request: bytes,
                response: bytes) -> list[Packet]:
    """A complete TCP session: handshake, one request, one response, FIN both ways."""
    c, s = 1000 + sport, 50000 + sport
    up = IP(src=client, dst=server)
    down = IP(src=server, dst=client)
    return [
        Ether(**MACS) / up / TCP(sport=sport, dport=80, flags="S", seq=c),
        Ether(**MACS) / down / TCP(sport=80, dport=sport, flags="SA", seq=s, ack=c + 1),
        Ether(**MACS) / up / TCP(sport=sport, dport=80, flags="A", seq=c + 1, ack=s + 1),
        Ether(**MACS) / up / TCP(sport=sport, dport=80, flags="PA", seq=c + 1, ack=s + 1) / request,
        Ether(**MACS) / down / TCP(sport=80, dport=sport, flags="A", seq=s + 1,
                             ack=c + 1 + len(request)),
        Ether(**MACS) / down / TCP(sport=80, dport=sport, flags="PA", seq=s + 1,
                             ack=c + 1 + len(request)) / response,
        Ether(**MACS) / up / TCP(sport=sport, dport=80, flags="FA", seq=c + 1 + len(request),
                           ack=s + 1 + len(response)),
        Ether(**MACS) / down / TCP(sport=80, dport=sport, flags="FA", seq=s + 1 + len(response),
                             ack=c + 2 + len(request)),
        Ether(**MACS) / up / TCP(sport=sport, dport=80, flags="A", seq=c + 2 + len(request),
                           ack=s + 2 + len(response)),
    ]


def write_archive_pcap(path: Path, flows: int = 24) -> Path:
    """Many interleaved HTTP sessions between several hosts, UDP with and without the
    marker, a fragmented UDP datagram, IPv6 UDP and ARP: every kind of frame the flow hash
    sorts (ports, no ports, fragments, not IP)."""
    sessions = []
    for i in range(flows):
        body = b"hello there " * (i % 3 + 1)
        request = f"GET /item/{i} HTTP/1.1\r\nHost: h{i}\r\n\r\n".encode()
        response = (b"HTTP/1.1 200 OK\r\nContent-Length: " + str(len(body)).encode()
                    + b"\r\n\r\n" + body)
        sessions.append(tcp_session(f"10.0.{i % 4}.{i + 1}", f"192.0.2.{i % 5 + 1}",
                                    20000 + i, request, response))
    packets: list[Packet] = []
    for step in range(max(len(s) for s in sessions)):  # interleaved, as real traffic is
        packets.extend(s[step] for s in sessions if step < len(s))
        if step % 3 == 0:
            packets.append(Ether(**MACS) / IP(src="10.9.0.1", dst="10.9.0.2")
                           / UDP(sport=5000 + step, dport=53) / Raw(b"HUNT %d" % step))
            packets.append(Ether(**MACS) / ARP(hwsrc=MACS["src"], hwdst=MACS["dst"],
                                               psrc="10.9.0.1", pdst="10.9.0.2"))
    big = IP(src="10.8.0.1", dst="10.8.0.2", id=7) / UDP(sport=9, dport=9) / (
        b"x" * 2000 + b"HUNT in fragments")
    packets.extend(Ether(**MACS) / frag for frag in fragment(big, fragsize=800))
    packets.append(Ether(**MACS) / IPv6(src="2001:db8::1", dst="2001:db8::2")
                   / UDP(sport=7, dport=7) / Raw(b"HUNT over v6"))
    for n, pkt in enumerate(packets):
        pkt.time = 1_700_000_000 + n * 0.001
    wrpcap(str(path), packets)
    return path


# --- running the commands -------------------------------------------------------------


def alerts_of(eve: Path, name: str | None = None) -> Counter[AlertKey]:
    """The alerts of an EVE file as (sid, src, sport, dst, dport, pcap_cnt, pcap file);
    ``name`` is the file a plain run read (its events carry no pcap_filename)."""
    found: Counter[AlertKey] = Counter()
    for line in eve.read_text().splitlines():
        event = json.loads(line)
        if event["event_type"] != "alert":
            continue
        found[(event["alert"]["signature_id"], event["src_ip"], event.get("src_port", 0),
               event["dest_ip"], event.get("dest_port", 0), event["pcap_cnt"],
               name if name is not None else event["pcap_filename"])] += 1
    return found


def sequential(pcaps: list[Path], rules: Path, tmp: Path) -> Counter[AlertKey]:
    """``ruleengine run -r`` of each file, one after the other."""
    total: Counter[AlertKey] = Counter()
    for i, pcap in enumerate(pcaps):
        logdir = tmp / f"seq-{i}"
        code = main(["run", "-r", str(pcap), "-S", str(rules), "-l", str(logdir),
                     "--no-progress"])
        assert code == 0
        total += alerts_of(logdir / "eve.json", str(pcap))
    return total


def hunt(*args: str) -> int:
    return main(["hunt", "--no-progress", *args])


@pytest.fixture(scope="module")
def scheduler(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real LocalCluster of 2 worker processes, shared by this module's tests."""
    cache = tmp_path_factory.mktemp("cache")
    old = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(cache)  # the workers inherit it
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None, silence_logs=40)
    try:
        yield str(cluster.scheduler_address)
    finally:
        cluster.close()
        if old is None:
            os.environ.pop("XDG_CACHE_HOME", None)
        else:
            os.environ["XDG_CACHE_HOME"] = old


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    path = tmp_path / "hunt.rules"
    path.write_text(RULES)
    return path


# --- the "done means": 20 pcaps, 2 workers, the alerts of 20 sequential runs -----


def test_twenty_pcaps_on_two_workers_give_the_alerts_of_twenty_runs(
        tmp_path: Path, rules: Path, scheduler: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    pcaps = [*corpus_pcaps(19), write_archive_pcap(tmp_path / "scapy.pcap")]
    out = tmp_path / "hunt"
    code = hunt("--scheduler", scheduler, "-S", str(rules), "-l", str(out),
                *map(str, pcaps))
    assert code == 0
    summary = capsys.readouterr().out
    hunted = alerts_of(out / "eve.json")
    expected = sequential(pcaps, rules, tmp_path)
    assert hunted == expected
    assert len({key[6] for key in hunted}) >= 10  # alerts from many files, not a few
    assert {key[0] for key in hunted} >= {1000001, 1000002, 1000003, 1000007}
    assert "20 file(s) in 20 task(s) on 2 worker(s)" in summary
    top_sid = Counter(key[0] for key in expected.elements()).most_common(1)[0]
    assert f"{top_sid[1]:>8}  {top_sid[0]:<10}" in summary  # the per-sid table


def test_every_event_names_its_pcap(tmp_path: Path, rules: Path, scheduler: str) -> None:
    pcaps = corpus_pcaps(3)
    out = tmp_path / "hunt"
    assert hunt("--scheduler", scheduler, "-S", str(rules), "-l", str(out),
                *map(str, pcaps)) == 0
    events = [json.loads(line) for line in (out / "eve.json").read_text().splitlines()]
    assert {e["pcap_filename"] for e in events} == set(map(str, pcaps))
    # one stats event per file, each file's events together and in the order run wrote them
    assert sum(e["event_type"] == "stats" for e in events) == 3
    order = [e["pcap_filename"] for e in events]
    assert order == sorted(order, key=[str(p) for p in pcaps].index)


# --- flow-hash shards of a big file ------------------------------------------------------


def test_flow_hash_shards_give_the_alerts_of_the_whole_file(
        tmp_path: Path, rules: Path, scheduler: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    pcaps = [write_archive_pcap(tmp_path / "big.pcap", flows=40),
             CORPUS / "bug-4663" / "input.pcap"]
    whole, sharded = tmp_path / "whole", tmp_path / "sharded"
    assert hunt("--scheduler", scheduler, "-S", str(rules), "-l", str(whole),
                "--shard-size", "0", *map(str, pcaps)) == 0
    assert "2 file(s) in 2 task(s)" in capsys.readouterr().out
    assert hunt("--scheduler", scheduler, "-S", str(rules), "-l", str(sharded),
                "--shard-size", "1", "--shards", "3", *map(str, pcaps)) == 0
    assert "2 file(s) in 6 task(s)" in capsys.readouterr().out
    expected = alerts_of(whole / "eve.json")
    assert alerts_of(sharded / "eve.json") == expected
    assert expected == sequential(pcaps, rules, tmp_path)
    assert {1000001, 1000006, 1000007} <= {key[0] for key in expected}


def test_shards_keep_flows_whole_and_fragments_in_shard_zero() -> None:
    request = Ether(**MACS) / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=1234, dport=80)
    reply = Ether(**MACS) / IP(src="10.0.0.2", dst="10.0.0.1") / TCP(sport=80, dport=1234)
    assert flow_key(1, bytes(request)) == flow_key(1, bytes(reply))
    other = Ether(**MACS) / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=1235, dport=80)
    assert flow_key(1, bytes(request)) != flow_key(1, bytes(other))
    frags = fragment(IP(src="10.0.0.1", dst="10.0.0.2") / UDP() / (b"y" * 3000), 1000)
    assert len(frags) > 1
    assert all(flow_key(1, bytes(Ether(**MACS) / f)) is None for f in frags)
    assert flow_key(1, bytes(Ether(**MACS) / ARP(hwsrc=MACS["src"], hwdst=MACS["dst"]))) is None
    v6 = Ether(**MACS) / IPv6(src="2001:db8::1", dst="2001:db8::2") / UDP(sport=1, dport=2)
    v6_back = Ether(**MACS) / IPv6(src="2001:db8::2", dst="2001:db8::1") / UDP(sport=2, dport=1)
    assert flow_key(1, bytes(v6)) == flow_key(1, bytes(v6_back)) is not None
    # an ICMP error goes with the flow it quotes, as the flow table files it
    udp = IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=5353, dport=53)
    error = Ether(**MACS) / IP(src="10.0.0.9", dst="10.0.0.1") / ICMP(type=3, code=3) / udp
    assert flow_key(1, bytes(error)) == flow_key(1, bytes(Ether(**MACS) / udp)) is not None
    shards = {shard_of(1, bytes(Ether(**MACS) / IP(src=f"10.1.0.{i}", dst="10.2.0.1")
                                / TCP(sport=i, dport=80)), 4) for i in range(1, 60)}
    assert shards == {0, 1, 2, 3}


def test_rules_with_state_across_flows_are_not_sharded(
        tmp_path: Path, scheduler: str, capsys: pytest.CaptureFixture[str]) -> None:
    rules = tmp_path / "threshold.rules"
    rules.write_text('alert tcp any any -> any any (msg:"syn by src"; flags:S; '
                     'threshold:type limit, track by_src, count 1, seconds 60; sid:7;)\n')
    pcap = write_archive_pcap(tmp_path / "t.pcap")
    assert hunt("--scheduler", scheduler, "-S", str(rules), "-l", str(tmp_path / "o"),
                "--shard-size", "1", "--shards", "3", str(pcap)) == 0
    captured = capsys.readouterr()
    assert "threshold (state across flows): files are not split" in captured.err
    assert "1 file(s) in 1 task(s)" in captured.out
    assert alerts_of(tmp_path / "o" / "eve.json") == sequential([pcap], rules, tmp_path)


STATEFUL_RULES = """\
alert tcp any any -> any any (msg:"syn by src"; flags:S; \
threshold:type limit, track by_src, count 1, seconds 600; sid:11;)
alert tcp any any -> any 80 (msg:"mark host"; flags:S; xbits:set,hunt.seen,track ip_src; \
xbits:noalert; sid:12;)
alert tcp any any -> any 80 (msg:"host seen before"; flags:PA; \
xbits:isset,hunt.seen,track ip_src; sid:13;)
"""


def test_tasks_in_one_worker_start_with_fresh_run_state(
        tmp_path: Path, scheduler: str) -> None:
    # the engine is built once per worker and reused: six copies of one capture on two
    # workers (three tasks each) must each give what a run of its own gives, so
    # thresholds and xbits of one task never reach the next
    rules = tmp_path / "state.rules"
    rules.write_text(STATEFUL_RULES)
    first = write_archive_pcap(tmp_path / "c0.pcap", flows=8)
    pcaps = [first]
    for i in range(1, 6):
        copy = tmp_path / f"c{i}.pcap"
        copy.write_bytes(first.read_bytes())
        pcaps.append(copy)
    assert hunt("--scheduler", scheduler, "-S", str(rules), "-l", str(tmp_path / "o"),
                *map(str, pcaps)) == 0
    found = alerts_of(tmp_path / "o" / "eve.json")
    assert found == sequential(pcaps, rules, tmp_path)
    assert {key[0] for key in found} == {11, 13}
    assert len({key[6] for key in found}) == 6  # every copy alerts


def test_the_engine_is_built_once_and_each_task_gets_its_own_state(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rules = tmp_path / "state.rules"
    rules.write_text(STATEFUL_RULES)
    pcap = write_archive_pcap(tmp_path / "c.pcap", flows=8)
    built: list[object] = []
    real = hunt_module.run._detect_engine

    def counting(*args: Any) -> Any:
        built.append(real(*args))
        return built[-1]

    monkeypatch.setattr(hunt_module.run, "_detect_engine", counting)
    spec = hunt_module.HuntSpec(None, (), (str(rules),), (), None, digest="test-once")
    results = [hunt_module.run_task(spec, hunt_module.Task(str(pcap), "c.pcap"))
               for _ in range(3)]
    assert len(built) == 1
    assert all(r.error is None for r in results)
    assert len({r.eve.count(b'"event_type":"alert"') for r in results}) == 1
    assert results[0].eve.count(b'"event_type":"alert"') > 0
    other = dataclasses.replace(spec, digest="other rules, same names")
    assert hunt_module.run_task(other, hunt_module.Task(str(pcap), "c.pcap")).error is None
    assert len(built) == 2  # another digest: another engine
    assert [k[0] for k in hunt_module._ENGINES] == [other]  # and the last one is freed


def test_a_rule_file_changed_between_hunts_is_read_anew(tmp_path: Path, scheduler: str) -> None:
    # the cluster outlives a hunt: its cached engine must not serve the next one
    rules = tmp_path / "same-name.rules"
    pcap = write_archive_pcap(tmp_path / "a.pcap", flows=4)
    rules.write_text('alert tcp any any -> any any (msg:"syn"; flags:S; sid:21;)\n')
    assert hunt("--scheduler", scheduler, "-S", str(rules), "-l", str(tmp_path / "o1"),
                str(pcap)) == 0
    rules.write_text('alert tcp any any -> any any (msg:"synack"; flags:SA; sid:22;)\n')
    assert hunt("--scheduler", scheduler, "-S", str(rules), "-l", str(tmp_path / "o2"),
                str(pcap)) == 0
    assert {k[0] for k in alerts_of(tmp_path / "o1" / "eve.json")} == {21}
    assert {k[0] for k in alerts_of(tmp_path / "o2" / "eve.json")} == {22}


# --- bad input ---------------------------------------------------------------------------


def test_a_bad_file_is_reported_and_the_rest_still_runs(
        tmp_path: Path, rules: Path, scheduler: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    good = corpus_pcaps(2)
    not_pcap = tmp_path / "notes.pcap"
    not_pcap.write_text("not a capture at all\n")
    missing = tmp_path / "gone.pcap"
    out = tmp_path / "hunt"
    code = hunt("--scheduler", scheduler, "-S", str(rules), "-l", str(out),
                str(good[0]), str(not_pcap), str(missing), str(good[1]))
    assert code == 1
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert lines == [f"error: {missing}: no such file or directory",
                     f"error: {not_pcap}: not a pcap/pcapng file (unknown magic 0x6e6f7420)"]
    assert "Traceback" not in err
    assert alerts_of(out / "eve.json") == sequential(good, rules, tmp_path)


def test_a_directory_is_searched_and_its_other_files_skipped(
        tmp_path: Path, rules: Path, scheduler: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    archive = tmp_path / "archive"
    (archive / "day2").mkdir(parents=True)
    write_archive_pcap(archive / "day1.pcap", flows=3)
    write_archive_pcap(archive / "day2" / "b.pcap", flows=5)
    (archive / "README").write_text("captures of the week\n")
    assert hunt("--scheduler", scheduler, "-S", str(rules), "-l", str(tmp_path / "o"),
                str(archive)) == 0
    captured = capsys.readouterr()
    assert "skipped 1 file(s) that are not pcap/pcapng captures" in captured.err
    files = {key[6] for key in alerts_of(tmp_path / "o" / "eve.json")}
    assert files == {str(archive / "day1.pcap"), str(archive / "day2" / "b.pcap")}


def test_an_unreachable_scheduler_is_one_line(
        tmp_path: Path, rules: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = hunt("--scheduler", "tcp://127.0.0.1:9", "--timeout", "1", "-S", str(rules),
                "-l", str(tmp_path / "o"), str(corpus_pcaps(1)[0]))
    assert code == 1
    err = capsys.readouterr().err
    assert "error: cannot reach the Dask scheduler at tcp://127.0.0.1:9" in err
    assert "Traceback" not in err


# --- the default local cluster and Parquet ---------------------------------------------


def test_default_local_cluster_and_parquet(tmp_path: Path, rules: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    pcaps = [*corpus_pcaps(3), write_archive_pcap(tmp_path / "s.pcap", flows=4)]
    out = tmp_path / "hunt"
    os.environ.setdefault("XDG_CACHE_HOME", str(tmp_path / "cache"))
    code = hunt("--workers", "2", "-S", str(rules), "-l", str(out),
                "--parquet", str(tmp_path / "events.parquet"), *map(str, pcaps))
    assert code == 0
    assert "on 2 worker(s)" in capsys.readouterr().out
    assert alerts_of(out / "eve.json") == sequential(pcaps, rules, tmp_path)
    table: Any = pq.read_table(tmp_path / "events.parquet")
    lines = (out / "eve.json").read_text().splitlines()
    assert table.num_rows == len(lines)
    rows = table.to_pylist()
    alerts = [r for r in rows if r["event_type"] == "alert"]
    assert alerts and all(r["signature_id"] and r["pcap_filename"] for r in alerts)
    assert json.loads(rows[0]["event"]) == json.loads(lines[0])
