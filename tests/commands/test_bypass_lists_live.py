"""Live bypass lists in a run (``ruleengine.commands.bypass_lists_live``): the config key,
reload on change and on SIGHUP's request, bad lines reported and skipped, counters, the
parent's increments with several workers, and ``sni`` entries bypassing a TLS flow in the
pipeline (reason ``list``)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from capture_backends.base import Capability
from capture_backends.memory import MemoryBackend
from ruleengine.commands import bypass_lists_live as bl
from ruleengine.config import Config
from ruleengine.detect.engine import DetectEngine
from ruleengine.outputs.eve import EveWriter
from ruleengine.outputs.stats import Stats
from ruleengine.pipeline import Pipeline
from ruleengine.rules.loader import load_rule_text
from ruleengine.settings import EngineSettings


def _live(path: Path, text: str, warnings: list[str] | None = None) -> bl.LiveLists:
    path.write_text(text)
    return bl.LiveLists((str(path),), (warnings if warnings is not None else []).append)


def _poll_now(live: bl.LiveLists) -> bool:
    live._next_poll = 0.0  # the next look at the watcher is due (instead of waiting 1 s)
    return live.poll()


def test_config_key_paths_relative_to_the_config_and_bad_items(tmp_path: Path) -> None:
    (tmp_path / "a.list").write_text("10.0.0.0/8\n")
    cfg = tmp_path / "suricata.yaml"
    cfg.write_text('%YAML 1.1\n---\nbypass-lists:\n  - a.list\n  - /abs/b.list\n  - 7\n')
    config, warnings = Config.load(cfg)
    assert not [w for w in warnings if "bypass-lists" in w]  # a known key
    said: list[str] = []
    live = bl.from_config(config, said.append)
    assert live is not None
    assert live.paths == (str(tmp_path / "a.list"), "/abs/b.list")
    assert said[0] == "bypass-lists: 7 is not a file name, ignored"
    assert said[1].startswith("/abs/b.list: cannot read bypass list")  # the run goes on
    assert [e.value for e in live.lists.entries] == ["10.0.0.0/8"]
    assert bl.list_paths("one.list", None, said.append) == ("one.list",)
    assert bl.from_config(Config({}), said.append) is None


def test_bad_lines_are_reported_as_file_line_reason_and_capped(tmp_path: Path) -> None:
    said: list[str] = []
    text = "10.1.0.0/16\nport 99999\n" + "bogus entry here\n" * 30
    live = _live(tmp_path / "x.list", text, said)
    assert [e.value for e in live.lists.entries] == ["10.1.0.0/16"]
    assert said[0] == "x.list:2: port '99999' out of range 1-65535"
    assert said[1].startswith("x.list:3: unknown entry 'bogus entry here'")
    assert len(said) == bl.MAX_REPORTED + 1
    assert said[-1].startswith(f"bypass-lists: {31 - bl.MAX_REPORTED} more bad line(s)")
    assert live.counters()["bypass_list.errors"] == 31


def test_a_changed_file_is_reloaded_at_the_next_poll(tmp_path: Path) -> None:
    path = tmp_path / "c.list"
    live = _live(path, "port 8000\n")
    assert not _poll_now(live)  # nothing changed
    entry = live.lists.entries[0]
    live.lists.count(entry, 3, 300)
    # an editor's write-to-temp and rename over the file
    tmp = tmp_path / "c.list.tmp"
    tmp.write_text("port 8000\nsni *.example.org\n")
    os.replace(tmp, path)
    assert _poll_now(live)
    assert [e.value for e in live.lists.entries] == ["8000", "*.example.org"]
    counters = live.counters()
    assert counters["bypass_list.c.list:1.pkts"] == 3  # the kept entry kept its counters
    assert counters["bypass_list.reloads"] == 1 and counters["bypass_list.entries"] == 2
    assert live.has_sni
    # polls come at most once a POLL_INTERVAL: a change right after waits for the next one
    path.write_text("port 9000\n")
    assert not live.poll()
    assert _poll_now(live)
    assert [e.value for e in live.lists.entries] == ["9000"]
    live.close()


def test_sighup_request_rereads_without_a_change(tmp_path: Path) -> None:
    said: list[str] = []
    live = _live(tmp_path / "h.list", "10.0.0.0/8\nnot-an-address\n", said)
    assert len(said) == 1
    bl.request_reload()
    assert live.poll()  # not held back by the poll interval
    assert live.reloads == 1
    assert said[1] == "h.list:2: 'not-an-address' is not an IP address or CIDR"
    assert not live.poll()
    live.close()


def test_worker_copy_is_quiet_and_leaves_the_gauges_to_the_owner(tmp_path: Path) -> None:
    said: list[str] = []
    live = _live(tmp_path / "w.list", "10.0.0.0/8\nbad line\n", said)
    copy = live.worker_copy()
    assert len(said) == 1  # the owner said it; the copy reread the file quietly
    assert copy.kernel is None and copy.lists.entries == live.lists.entries
    assert set(copy.counters()) == {"bypass_list.w.list:1.pkts", "bypass_list.w.list:1.bytes"}


def test_parent_housekeeping_returns_increments_and_sweeps_less_often(tmp_path: Path) -> None:
    path = tmp_path / "p.list"
    live = _live(path, "port 8000\nport 8001\n")
    sweeps: list[int] = []

    def sweep() -> dict[str, int]:
        sweeps.append(1)
        return {"flow_bypassed.orphans_expired": 0}

    run = bl.with_housekeeping(sweep, live, sweep_interval=3600)
    assert bl.with_housekeeping(sweep, None) is sweep
    assert bl.housekeeping_interval(live) == bl.POLL_INTERVAL
    total: dict[str, int] = {}

    def add(delta: dict[str, int]) -> None:  # as WorkerHub.own sums them
        for k, v in delta.items():
            total[k] = total.get(k, 0) + v

    first, second = live.lists.entries
    live.lists.count(first, 5, 500)
    add(run())
    live.lists.count(first, 2, 200)
    live.lists.count(second, 1, 60)
    add(run())
    assert total["bypass_list.p.list:1.pkts"] == 7 and total["bypass_list.p.list:1.bytes"] == 700
    assert total["bypass_list.p.list:2.pkts"] == 1
    assert total["bypass_list.entries"] == 2
    path.write_text("port 8001\n")  # entry 1 goes; 8001 moves to line 1 (counters anew)
    add(run())
    assert total["bypass_list.entries"] == 1 and total["bypass_list.reloads"] == 1
    assert total["bypass_list.p.list:1.pkts"] == 7  # a new entry at 0: nothing added
    assert sweeps == []  # not yet due
    live.close()


# --- sni entries in the pipeline --------------------------------------------------------


def _tls_run(tmp_path: Path, lists: bl.LiveLists | None, *, capture: bool
             ) -> tuple[list[dict[str, Any]], Pipeline, MemoryBackend]:
    pytest.importorskip("cryptography")
    from tests.test_pipeline_applayer import _session

    rules = load_rule_text('alert tls any any -> any any (msg:"sni"; tls.sni; '
                           'content:"big.example"; sid:1;)\n')
    eve = EveWriter(tmp_path / "eve.json")
    caps = Capability.OFFLINE | (Capability.BYPASS if capture else Capability.OFFLINE)
    backend = MemoryBackend(_session(), capabilities=caps, bypass_result=capture)
    pipeline = Pipeline(EngineSettings(), DetectEngine(rules.rules), eve=eve, stats=Stats(),
                        classify=lambda _c: None)
    pipeline.bypass_lists = lists
    pipeline.run(backend)
    pipeline.collect_counters()
    eve.close()
    events = [json.loads(line) for line in (tmp_path / "eve.json").read_text().splitlines()]
    return events, pipeline, backend


@pytest.mark.parametrize("pattern", ["big.example", "*.example", "BIG.example."])
def test_sni_entry_bypasses_the_tls_flow_with_reason_list(tmp_path: Path, pattern: str) -> None:
    live = _live(tmp_path / "sni.list", f"10.99.0.0/16\nsni {pattern}\n")
    events, pipeline, _ = _tls_run(tmp_path, live, capture=False)
    (flow,) = [e for e in events if e["event_type"] == "flow"]
    assert flow["flow"]["state"] == "bypassed" and flow["flow"]["bypass"] == "local"
    assert flow["metadata"]["flowvars"][0] == {"bypass_reason": "list"}
    stats = pipeline.stats.snapshot()
    assert stats["flow_bypassed.reason.list"] == 1
    assert stats["flow_bypassed.by_reason.list.flows"] == 1
    # the client hello was inspected before the bypass: the SNI rule alerted
    assert [e["alert"]["signature_id"] for e in events if e["event_type"] == "alert"] == [1]
    # the flow's bypassed packets (here the local ones: a pcap has no kernel) are the entry's
    bypassed = flow["flow"]["bypassed"]
    want = int(bypassed["pkts_toserver"]) + int(bypassed["pkts_toclient"])
    assert want > 10
    assert stats["bypass_list.sni.list:2.pkts"] == want
    assert stats["bypass_list.sni.list:2.bytes"] == (int(bypassed["bytes_toserver"])
                                                     + int(bypassed["bytes_toclient"]))
    assert stats["bypass_list.sni.list:1.pkts"] == 0  # the CIDR is not the pipeline's


def test_sni_bypass_goes_to_the_capture_backend(tmp_path: Path) -> None:
    live = _live(tmp_path / "sni.list", "sni big.example\n")
    events, pipeline, backend = _tls_run(tmp_path, live, capture=True)
    assert len(backend.bypass_calls) == 1
    (flow,) = [e for e in events if e["event_type"] == "flow"]
    assert flow["flow"]["bypass"] == "capture"
    assert pipeline.report.bypassed_flows_capture == 1


def test_a_name_not_listed_and_non_tls_flows_are_inspected(tmp_path: Path) -> None:
    live = _live(tmp_path / "sni.list", "sni other.example\nsni *.big.example\n")
    events, pipeline, backend = _tls_run(tmp_path, live, capture=True)
    (flow,) = [e for e in events if e["event_type"] == "flow"]
    assert flow["flow"]["state"] != "bypassed"
    assert backend.bypass_calls == []
    assert pipeline.stats.snapshot().get("flow_bypassed.reason.list", 0) == 0


@pytest.mark.kernel
def test_parent_reads_a_big_lists_kernel_counters_less_often(tmp_path: Path) -> None:
    """Real eBPF maps (the bundled socket filter, no traffic): 5,000 port keys are more than
    BIG_LIST_KEYS, so after the first read the counters wait for ``big_list_interval``;
    a reload reads them at once."""
    from capture_backends import ebpf
    from capture_backends.bypass_lists import LIST_MAPS
    from capture_backends.ebpf import layout, syscall
    from tests import kernel

    kernel.require_root()
    kernel.require_bpf()
    if reason := ebpf.loader_unavailable("libbpf"):
        kernel.skip(reason)
    path = Path(__file__).resolve().parents[2] / "bpf" / "bypass_filter.o"
    obj = ebpf.open_object("libbpf", path, kind="socket",
                           tables=(layout.MAP_V4, layout.MAP_V6), map_entries=64)
    try:
        maps = {name: syscall.BpfMap(fd) for name in LIST_MAPS
                if (fd := obj.map_fd(name)) is not None}
        listed = tmp_path / "big.list"
        live = _live(listed, "port 1-5000\n")
        assert live.attach_kernel(maps)
        assert live.kernel is not None and live.kernel.key_count == 5000 > bl.BIG_LIST_KEYS
        run = bl.with_housekeeping(dict, live, big_list_interval=3600)
        assert run()["bypass_list.entries"] == 1  # the first call reads
        assert run() == {}  # then not for an hour
        listed.write_text("port 1-10\n")
        assert run()["bypass_list.entries"] == 0  # a reload reads at once (an increment)
        assert live.kernel.key_count == 10
        assert len(maps[LIST_MAPS[2]]) == 10  # the kernel map followed the file
        live.close()
    finally:
        obj.close()
