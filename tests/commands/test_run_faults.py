"""``ruleengine run`` under faults: SIGTERM/SIGINT in the middle of a capture, EVE on a
full disk or in a removed directory. The run goes on judging packets, EVE keeps whole lines
and ends with the stats the signal flushed."""

from __future__ import annotations

import contextlib
import json
import signal
import struct
import subprocess
import time
from pathlib import Path

import pytest

from tests.commands.test_run_eve_sinks import run_cli, setup_run, yaml_with_eve
from tests.outputs.test_sink_faults import _fill, tiny_tmpfs  # noqa: F401 (fixture)

PACKETS = 200_000


def _wait_for_output(proc, path: Path) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + 120
    while not (path.exists() and path.stat().st_size > 0):
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, "no EVE output"
        time.sleep(0.02)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_mid_run_flushes_eve_and_stats(tmp_path: Path, sig: signal.Signals) -> None:
    pcap, rules, logdir = setup_run(tmp_path, PACKETS)
    eve = logdir / "eve.json"
    proc = run_cli(tmp_path, "-r", str(pcap), "-S", str(rules), "-l", str(logdir))
    try:
        _wait_for_output(proc, eve)
        proc.send_signal(sig)
        _out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    data = eve.read_bytes()
    assert data.endswith(b"\n")
    events = [json.loads(line) for line in data.splitlines()]  # every line whole JSON
    assert events[-1]["event_type"] == "stats", events[-1]
    alerts = [e["pcap_cnt"] for e in events if e["event_type"] == "alert"]
    assert alerts == list(range(1, len(alerts) + 1))  # every judged packet's alert, in order
    assert len(alerts) < PACKETS, "the signal stopped the run early"
    # the last stats count exactly the packets that were judged
    assert events[-1]["stats"]["decoder"]["pkts"] == len(alerts)
    assert "Traceback" not in err


@pytest.mark.kernel
def test_eve_on_a_full_disk_the_run_goes_on(tmp_path: Path, tiny_tmpfs: Path) -> None:  # noqa: F811
    packets = 20_000
    pcap, rules, logdir = setup_run(tmp_path, packets)
    eve = tiny_tmpfs / "eve.json"
    config = yaml_with_eve(tmp_path, f"      filetype: regular\n      filename: {eve}\n")
    _fill(tiny_tmpfs)
    proc = run_cli(tmp_path, "-c", config, "-r", str(pcap), "-S", str(rules), "-l", str(logdir))
    _out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    full = [ln for ln in err.splitlines() if "No space left on device" in ln]
    assert len(full) <= 2, err  # once when it starts, once in the end-of-run loss report
    assert f"Packets: {packets:,}" in err  # inspection went on for every packet
    assert f"Alerts: {packets:,}" in err
    # the loss is counted and said at the end (live runs: output.eve.lost in stats.log)
    assert "events lost" in err and "first error: writing" in err, err



@pytest.mark.kernel
def test_nfq_verdicts_go_on_while_eve_cannot_be_written(tmp_path: Path) -> None:
    """NFQUEUE inline, EVE on a full disk: every queued packet still gets its verdict (the
    drop rule drops, the rest passes), the loss is counted in stats.log, and once space is
    back the later alerts are written."""
    from tests import kernel
    from tests.capture_backends import test_nfqueue_engine as nfq

    nfq._require()
    queue = 47  # this test's own queue number and namespace names ("fzq")
    mnt = tmp_path / "tmpfs"
    mnt.mkdir()
    kernel.require_command("mount")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "fuzz-nfqfault", str(mnt)],
                   check=True)
    try:
        eve = mnt / "eve.json"
        yaml_text = ("outputs:\n  - eve-log:\n      enabled: yes\n      filetype: regular\n"
                     f"      filename: {eve}\n      types:\n        - alert\n"
                     "  - stats:\n      enabled: yes\n      filename: stats.log\n"
                     "stats:\n  enabled: yes\n  interval: 1\n")
        rules = ('drop http any any -> any any (msg:"blocked"; flow:to_server; http.uri; '
                 'content:"/blocked"; sid:1; rev:1;)\n'
                 'alert http any any -> any any (msg:"ok"; flow:to_server; http.uri; '
                 'content:"/ok"; sid:2; rev:1;)\n')
        filler = _fill(mnt)
        with kernel.netns_pair("fzq") as net:
            server = nfq.HttpServer(net, False)
            try:
                with nfq.running_engine(net, tmp_path, rules, yaml_text,
                                        queues=(queue,)) as proc:
                    full_ok = nfq.http_get(net, False, "/ok-full?size=50000")
                    full_blocked = nfq.http_get(net, False, "/blocked?size=5000", timeout=2.0)
                    time.sleep(1.5)  # a write attempt fails while the disk is full
                    filler.unlink()
                    time.sleep(1.5)  # the backlog is retried once a second
                    later_ok = nfq.http_get(net, False, "/ok-later?size=50000")
                    queued = nfq.queue_sequence(net, queue)
                    nfq.stop_engine(proc, tmp_path)
            finally:
                server.close()
        out = (tmp_path / "engine.out").read_text()
        assert full_ok.status == 200 and full_ok.body_bytes == 50000, (full_ok, out)
        assert full_blocked.status is None, full_blocked  # the drop verdict still applied
        assert later_ok.status == 200 and later_ok.body_bytes == 50000, later_ok
        assert out.count("No space left on device; inspection goes on") == 1, out
        assert "writing resumed" in out, out
        written = [json.loads(line) for line in eve.read_text().splitlines()]
        sids = [e["alert"]["signature_id"] for e in written if e["event_type"] == "alert"]
        # the alerts of the full disk (kept in the backlog) and the later one, whole lines
        assert sorted(sids) == [1, 2, 2], sids
        stats = (tmp_path / "log" / "stats.log").read_text()
        last = stats.rsplit("Date:", 1)[-1]
        rows = [ln.split("|") for ln in last.splitlines() if ln.count("|") == 2]
        counters = {r[0].strip(): int(r[2]) for r in rows if r[2].strip().isdigit()}
        assert counters.get("output.eve.errors", 0) >= 1, last
        # every packet the kernel had queued when the last fetch ended was decoded and judged
        # (a closing segment may follow before the stop); the fetches completing say the
        # verdicts reached the kernel
        assert counters.get("decoder.pkts", 0) >= queued > 0, (queued, last)
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


@pytest.mark.parametrize("delay", [0.3, 0.6, 1.0])
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_while_loading_rules_stops_cleanly(tmp_path: Path, sig: signal.Signals,
                                                  delay: float) -> None:
    """A signal during imports, configuration or the loading of 20,000 rules (before the
    run's own handlers; not in the interpreter's first milliseconds, before any of ours):
    exit 0 with one line saying so, no traceback, no half-written EVE (SIGTERM took its
    default action before, SIGINT printed a KeyboardInterrupt traceback)."""
    pcap, _rules, logdir = setup_run(tmp_path, 10)
    many = tmp_path / "many.rules"
    many.write_text("".join(
        f'alert tcp any any -> any {1000 + i % 50000} (msg:"r{i}"; content:"needle{i}"; '
        f"sid:{i + 1}; rev:1;)\n" for i in range(20_000)))
    proc = run_cli(tmp_path, "-r", str(pcap), "-S", str(many), "-l", str(logdir))
    try:
        time.sleep(delay)
        proc.send_signal(sig)
        _out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    name = "SIGTERM" if sig == signal.SIGTERM else "SIGINT"
    # stopped while starting, or (a fast machine) the run had begun and the signal ended it
    stopped = f"stopped by {name} before the run started; nothing was inspected" in err
    assert stopped or "Run summary" in err, err
    if delay < 0.5:
        assert stopped, err  # still importing or parsing
    eve = logdir / "eve.json"
    if eve.exists():
        data = eve.read_bytes()
        assert not data or data.endswith(b"\n")
        [json.loads(line) for line in data.splitlines()]


def _write_flows_pcap(path: Path, count: int) -> None:
    """``count`` UDP packets, each its own flow (the final flush logs ``count`` flows)."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for i in range(count):
        udp = struct.pack("!HHHH", 1024 + i % 60000, 9999, 13, 0) + b"hello"
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0,
                         bytes([10, 1 + i // 60000, 0, 1]), bytes([10, 0, 0, 2]))
        frame = b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00" + ip + udp
        out.append(struct.pack("<IIII", 1_700_000_000 + i // 10_000, (i % 10_000) * 100,
                               len(frame), len(frame)))
        out.append(frame)
    path.write_bytes(b"".join(out))


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_more_signals_during_the_final_flush_are_deferred(tmp_path: Path,
                                                          sig: signal.Signals) -> None:
    """A signal stops the run, then the same signal every millisecond until the process is
    gone (the final flush of thousands of flows, EVE and stats close, interpreter exit):
    the flush completes. Exit 0 (was -15: killed by a later SIGTERM), no traceback, every
    EVE line whole, one flow event per judged packet's flow, the stats event last counting
    exactly the judged packets."""
    pcap, rules, logdir = tmp_path / "flows.pcap", tmp_path / "udp.rules", tmp_path / "log"
    _write_flows_pcap(pcap, 120_000)
    rules.write_text('alert udp any any -> any any (msg:"u"; content:"hello"; sid:7;)\n')
    logdir.mkdir()
    eve = logdir / "eve.json"
    proc = run_cli(tmp_path, "-r", str(pcap), "-S", str(rules), "-l", str(logdir))
    sent = 0
    try:
        _wait_for_output(proc, eve)
        time.sleep(0.5)  # a few thousand flows in the table
        started = time.monotonic()
        while proc.poll() is None and time.monotonic() - started < 60:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(sig)
                sent += 1
            time.sleep(0.001)
        _out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "before the run started" not in err, err
    data = eve.read_bytes()
    assert data.endswith(b"\n")
    events = [json.loads(line) for line in data.splitlines()]  # every line whole JSON
    assert events[-1]["event_type"] == "stats", events[-1]
    judged = events[-1]["stats"]["decoder"]["pkts"]
    alerts = sum(e["event_type"] == "alert" for e in events)
    flows = sum(e["event_type"] == "flow" for e in events)
    assert 0 < judged < 120_000, "the first signal did not stop the run early"
    assert alerts == judged and flows == judged, (alerts, flows, judged)
    print(f"{sig.name}: {sent} signals after the first, {judged} packets judged, "
          f"{flows} flows flushed, exit 0")
