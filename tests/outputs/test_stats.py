"""Stats counters: increments, merging worker snapshots, nesting, stats.log text."""

from __future__ import annotations

import time

from ruleengine.outputs.stats import BASE_COUNTERS, Stats, format_stats_log, nest


def test_base_counters_start_at_zero():
    stats = Stats()
    assert set(stats.snapshot()) == set(BASE_COUNTERS)
    assert not any(stats.snapshot().values())


def test_incr_set_merge():
    a, b = Stats(), Stats(())
    a.incr("decoder.pkts")
    a.incr("decoder.pkts", 4)
    a.set("flow.active", 3)
    b.incr("decoder.pkts", 10)
    b.incr("flow_bypassed.local_pkts", 2)
    a.merge(b.snapshot())
    a.merge({"bogus": "x", "flag": True})  # type: ignore[dict-item]
    assert a.get("decoder.pkts") == 15
    assert a.get("flow_bypassed.local_pkts") == 2
    assert a.get("flow.active") == 3
    assert "bogus" not in a.snapshot() and "flag" not in a.snapshot()


def test_nested_shape_and_filter():
    counters = {"decoder.pkts": 3, "decoder.ipv4": 2, "flow.end": 9,
                "flow.end.state.closed": 1, "ips.blocked": 4}
    assert nest(counters) == {
        "decoder": {"ipv4": 2, "pkts": 3},
        "flow": {"end": {"state": {"closed": 1}}},  # the group wins over the same-named leaf
        "ips": {"blocked": 4},
    }
    assert nest(counters, frozenset({"ips.blocked"})) == {"ips": {"blocked": 4}}


def test_stats_log_block():
    text = format_stats_log({"decoder.pkts": 12, "capture.bypass.ipv4_success": 1,
                             "flow.active": 0}, ts=0.0, uptime=90061)
    lines = text.splitlines()
    tm = time.localtime(0.0)  # local time, month and day unpadded (log-stats.c)
    assert lines[1] == (f"Date: {tm.tm_mon}/{tm.tm_mday}/{tm.tm_year} -- {tm.tm_hour:02d}:"
                        f"{tm.tm_min:02d}:{tm.tm_sec:02d} (uptime: 1d, 01h 01m 01s)")
    assert lines[3].split("|")[0].strip() == "Counter"
    body = [line.split("|") for line in lines[5:]]
    assert [(c.strip(), v.strip()) for c, _, v in body] == [
        ("capture.bypass.ipv4_success", "1"), ("decoder.pkts", "12")]


def test_stats_log_writer_appends_blocks(tmp_path):
    from ruleengine.outputs.stats import StatsLogWriter

    path = tmp_path / "stats.log"
    writer = StatsLogWriter(path, append=False)
    writer.write({"decoder.pkts": 1}, ts=0.0, uptime=1)
    writer.write({"decoder.pkts": 2}, ts=8.0, uptime=9)
    writer.close()
    writer.write({"decoder.pkts": 3}, ts=9.0, uptime=10)  # after close: ignored
    text = path.read_text()
    assert text.count("Date: ") == 2 and text.rstrip().endswith("| 2")
    StatsLogWriter(path).close()  # append keeps the content
    assert path.read_text() == text


def test_stats_log_totals_threads_and_null_values():
    counters = {"decoder.pkts": 3, "flow.active": 0}
    workers = {"W#01-eth0": {"decoder.pkts": 1, "flow.active": 0},
               "W#02-eth0": {"decoder.pkts": 2, "flow.active": 0}}
    body = [tuple(c.strip() for c in line.split("|"))
            for line in format_stats_log(counters, ts=0.0, uptime=1,
                                         threads=workers).splitlines()[5:]]
    assert body == [("decoder.pkts", "Total", "3"), ("decoder.pkts", "W#01-eth0", "1"),
                    ("decoder.pkts", "W#02-eth0", "2")]
    only_threads = format_stats_log(counters, ts=0.0, uptime=1, totals=False,
                                    threads=workers, null_values=True).splitlines()[5:]
    assert len(only_threads) == 4 and all("Total" not in line for line in only_threads)
