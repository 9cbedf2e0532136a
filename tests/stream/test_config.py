"""StreamConfig.from_mapping: the one parser of suricata.yaml's ``stream`` section."""

from __future__ import annotations

from typing import Any

import pytest

from ruleengine.config import Config
from ruleengine.stream.config import StreamConfig, midstream_policy


def test_no_section_gives_the_defaults() -> None:
    assert StreamConfig.from_mapping(None) == StreamConfig()
    assert StreamConfig.from_mapping({}) == StreamConfig()
    assert StreamConfig.from_mapping(None, ips_mode=True) == StreamConfig(inline=True)


def test_every_key_the_tracker_honours() -> None:
    section = {"midstream": "yes", "async-oneside": True, "bypass": "on", "inline": "no",
               "reassembly": {"depth": "64kb", "memcap": "32mb", "toserver-chunk-size": 100,
                              "toclient-chunk-size": "1kb"}}
    assert StreamConfig.from_mapping(section, ips_mode=True) == StreamConfig(
        midstream=True, async_oneside=True, bypass=True, inline=False,
        reassembly_depth=64 << 10, memcap=32 << 20, toserver_chunk_size=100,
        toclient_chunk_size=1 << 10)


@pytest.mark.parametrize(("value", "ids", "ips"), [
    ("auto", False, True), (None, False, True), ("yes", True, True), ("no", False, False),
    ("sometimes", False, True),  # not a boolean: as auto
])
def test_inline(value: Any, ids: bool, ips: bool) -> None:
    section = {} if value is None else {"inline": value}
    assert StreamConfig.from_mapping(section).inline is ids
    assert StreamConfig.from_mapping(section, ips_mode=True).inline is ips


def test_values_of_the_wrong_kind_keep_the_default() -> None:
    cfg = StreamConfig.from_mapping({"midstream": "maybe", "reassembly": {"depth": "deep",
                                                                          "memcap": [1]}})
    assert cfg == StreamConfig()
    assert StreamConfig.from_mapping({"reassembly": "not a mapping"}) == StreamConfig()


def test_a_zero_memcap_is_the_default() -> None:
    # no room for any out-of-order byte would make every hole a drop
    assert StreamConfig.from_mapping({"reassembly": {"memcap": 0}}).memcap == StreamConfig.memcap


def test_the_subtree_of_a_loaded_config() -> None:
    config, _ = Config.load(None, ["stream.midstream=true", "stream.reassembly.depth=2mb"])
    cfg = StreamConfig.from_mapping(config.get_section("stream"))
    assert cfg.midstream and cfg.reassembly_depth == 2 << 20


@pytest.mark.parametrize(("section", "master", "ips", "expected"), [
    ({}, None, True, "drop-flow"),  # built-in default: auto
    ({}, None, False, "ignore"),
    ({}, "auto", True, "drop-flow"),
    ({"midstream": True}, None, True, "ignore"),  # auto with midstream pick-up
    ({"midstream-policy": "pass-flow"}, None, False, "pass-flow"),
    ({"midstream-policy": "drop-flow"}, None, False, "ignore"),  # IDS: no drops
    ({"midstream-policy": "drop-flow"}, None, True, "drop-flow"),
    ({"midstream": True, "midstream-policy": "bypass"}, None, True, "ignore"),
    ({"midstream": True}, "bypass", True, "bypass"),  # the master is taken as is
    ({"midstream-policy": "explode"}, "reject", False, "ignore"),
    ({}, "pass-packet", False, "pass-packet"),
    ({}, {"not": "a word"}, True, "drop-flow"),
])
def test_midstream_policy(section: dict[str, Any], master: Any, ips: bool,
                          expected: str) -> None:
    assert midstream_policy(section, master, ips=ips) == expected
