"""af-packet yaml section -> AfPacketConfig (no kernel needed)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from capture_backends import ebpf
from capture_backends.af_packet import AfPacketConfig
from capture_backends.tpacket import ring_geometry

SURICATA_STYLE = """
af-packet:
  - interface: eth0
    threads: 4
    cluster-id: 98
    cluster-type: cluster_ebpf
    defrag: yes
    bypass: yes
    use-mmap: yes
    tpacket-v3: yes
    ring-size: 4096
    block-size: 262144
    xdp-mode: driver
    use-percpu-hash: yes
    ebpf-loader: bcc
  - interface: default
    threads: 2
    cluster-type: cluster_flow
    block-timeout: 20
    checksum-checks: kernel
"""


def _section(text: str = SURICATA_STYLE) -> object:
    return yaml.safe_load(text)["af-packet"]


def test_interface_entry_with_default_fallback() -> None:
    cfg, warnings = AfPacketConfig.from_yaml(_section(), "eth0")  # type: ignore[arg-type]
    assert warnings == []
    assert cfg.interface == "eth0" and cfg.threads == 4 and cfg.cluster_id == 98
    assert cfg.cluster_type == "cluster_ebpf" and cfg.bypass and cfg.use_percpu_hash
    assert cfg.ring_size == 4096 and cfg.block_size == 262144 and cfg.xdp_mode == "driver"
    assert cfg.block_timeout_ms == 20  # from the default entry
    assert cfg.loader == "bcc"


def test_unlisted_interface_uses_default_entry() -> None:
    cfg, warnings = AfPacketConfig.from_yaml(_section(), "eth1")  # type: ignore[arg-type]
    assert cfg.interface == "eth1" and cfg.threads == 2 and cfg.cluster_type == "cluster_flow"
    assert not cfg.bypass and warnings == []


def test_bundled_programs_when_yaml_names_none() -> None:
    cfg, _ = AfPacketConfig.from_yaml(_section(), "eth0")  # type: ignore[arg-type]
    assert cfg.filter_path() == ebpf.bundled_path("bypass_filter.o")
    assert cfg.lb_path() == ebpf.bundled_path("lb.o")
    assert cfg.xdp_path() is None
    plain = AfPacketConfig(interface="x")
    assert plain.filter_path() is None and plain.lb_path() is None


def test_xdp_bundled_by_bare_name_replaces_socket_filter() -> None:
    cfg, _ = AfPacketConfig.from_yaml(
        [{"interface": "x", "bypass": True, "xdp-filter-file": "xdp_filter.o"}], "x")
    assert cfg.xdp_path() == ebpf.bundled_path("xdp_filter.o")
    assert cfg.filter_path() is None


def test_explicit_files_are_kept(tmp_path: os.PathLike[str]) -> None:
    cfg, _ = AfPacketConfig.from_yaml(
        [{"interface": "x", "ebpf-filter-file": "/opt/f.o", "ebpf-lb-file": "/opt/lb.o",
          "cluster-type": "cluster_ebpf"}], "x")
    assert str(cfg.filter_path()) == "/opt/f.o" and str(cfg.lb_path()) == "/opt/lb.o"


def test_threads_auto() -> None:
    cfg, _ = AfPacketConfig.from_yaml([{"interface": "x", "threads": "auto"}], "x")
    assert cfg.threads == (os.cpu_count() or 1)


@pytest.mark.parametrize(("entry", "needle"), [
    ({"frobnicate": 1}, "unknown key 'frobnicate'"),
    ({"cluster-type": "cluster_magic"}, "cluster-type 'cluster_magic' unsupported"),
    ({"threads": "many"}, "threads: 'many' is not a number"),
    ({"ring-size": -5}, "ring-size: -5 out of range"),
    ({"bypass": "maybe"}, "bypass: 'maybe' is not a boolean"),
    ({"xdp-mode": "turbo"}, "xdp-mode 'turbo' unsupported"),
    ({"ebpf-loader": "gcc"}, "ebpf-loader 'gcc' unknown"),
    ({"tpacket-v3": False}, "tpacket-v3: no is not supported"),
    ({"copy-mode": "ips"}, "copy-mode (IPS/TAP) is not supported"),
])
def test_bad_values_warn_and_fall_back(entry: dict[str, object], needle: str) -> None:
    cfg, warnings = AfPacketConfig.from_yaml([{"interface": "x", **entry}], "x")
    assert any(needle in w for w in warnings), warnings
    assert cfg == AfPacketConfig(interface="x")


@pytest.mark.parametrize("section", [None, "junk", 42, ["junk", None], {"interface": "x"}])
def test_hostile_sections_never_raise(section: object) -> None:
    cfg, _warnings = AfPacketConfig.from_yaml(section, "x")
    assert cfg.interface == "x"


def test_sizes_with_units() -> None:
    cfg, warnings = AfPacketConfig.from_yaml([{"interface": "x", "block-size": "1mb"}], "x")
    assert cfg.block_size == 1 << 20 and warnings == []


def test_ring_geometry() -> None:
    block_size, block_nr, frame_size, frame_nr = ring_geometry(2048, 1 << 17, 2048)
    assert (block_size, frame_size) == (1 << 17, 2048)
    assert block_nr * block_size >= 2048 * 2048
    assert frame_nr == block_nr * block_size // frame_size
    # odd sizes are rounded to page/frame multiples; at least two blocks
    block_size, block_nr, frame_size, _ = ring_geometry(1, 5000, 1000)
    assert block_size % 4096 == 0 and block_size % frame_size == 0 and block_nr >= 2


def test_with_loader() -> None:
    cfg = AfPacketConfig(interface="x")
    assert cfg.with_loader("bcc").loader == "bcc" and cfg.loader == "libbpf"
    with pytest.raises(ValueError, match="unknown eBPF loader"):
        cfg.with_loader("gcc")


def test_pinned_maps_config_keys() -> None:
    config, warnings = AfPacketConfig.from_yaml(
        [{"interface": "eth0", "bypass": True, "pinned-maps": "yes",
          "pinned-maps-name": "edge", "pinned-maps-dir": "/run/bpf"}], "eth0")
    assert warnings == []
    assert config.pin_dir() == Path("/run/bpf/edge")
    config, warnings = AfPacketConfig.from_yaml(
        [{"interface": "eth0", "pinned-maps": True, "pinned-maps-name": "../x"}], "eth0")
    assert config.pin_dir() == Path("/sys/fs/bpf/ruleengine-eth0")
    assert warnings == ["af-packet: pinned-maps-name '../x' must be a plain name, "
                        "using ruleengine-eth0"]
    assert AfPacketConfig.from_yaml([{"interface": "eth0"}], "eth0")[0].pin_dir() is None
