"""The outputs' own section parser: the ``outputs`` list of suricata.yaml."""

from __future__ import annotations

from ruleengine.config import Config
from ruleengine.outputs.config import (
    EveSettings,
    StatsLogSettings,
    eve_settings,
    fast_log_settings,
    stats_interval,
    stats_log_settings,
)
from tests.outputs.eve_schema import VERIFY_DIR


def test_eve_types_and_options() -> None:
    outputs = [{"eve-log": {"enabled": "yes", "filename": "out.json", "types": [
        {"alert": {"payload": True}}, "http", {"dhcp": {"enabled": "no"}}, "flow"]}}]
    eve = eve_settings(outputs)
    assert eve.filename == "out.json" and eve.enabled
    assert eve.types == frozenset({"alert", "http", "flow"})  # dhcp is switched off
    assert eve.type_options["alert"] == {"payload": True}


def test_eve_without_section_or_types() -> None:
    assert eve_settings([]) == EveSettings()
    assert eve_settings([{"eve-log": None}, {"eve-log": {"filename": "b.json"}}]).filename \
        == "b.json"  # an entry without a body is passed over
    assert eve_settings([{"eve-log": "junk"}]) == EveSettings()  # a body that is no mapping
    assert eve_settings([{"eve-log": {"types": "alert"}}]).types is None  # not a list
    assert eve_settings("not a list") == EveSettings()  # type: ignore[arg-type]


def test_eve_transport_options() -> None:
    eve = eve_settings([{"eve-log": {"filetype": "syslog", "identity": "ids", "level": 3,
                                     "community-id": "yes", "append": "no",
                                     "redis": {"server": "127.0.0.1"}}}])
    assert (eve.filetype, eve.identity, eve.level, eve.facility) == ("syslog", "ids", "3", None)
    assert eve.community_id and not eve.append and eve.redis == {"server": "127.0.0.1"}


def test_stats_log() -> None:
    assert stats_log_settings([]) == StatsLogSettings()
    stats = stats_log_settings([{"fast": {}}, {"stats": {"filename": "s.log"}}])
    assert stats.enabled and stats.filename == "s.log" and stats.totals and not stats.threads
    # both off: the totals stay on (Suricata would refuse the output)
    assert stats_log_settings([{"stats": {"totals": "no", "threads": "no"}}]).totals
    assert not stats_log_settings([{"stats": {"totals": "no", "threads": "yes"}}]).totals


def test_fast_log_is_off_unless_enabled() -> None:
    assert not fast_log_settings([{"fast": {"filename": "f.log"}}]).enabled
    fast = fast_log_settings([{"fast": {"enabled": "yes", "append": "no"}}])
    assert fast.enabled and not fast.append and fast.filename == "fast.log"


def test_the_subtree_of_a_loaded_config() -> None:
    config, _ = Config.load(None, ["sensor-name=probe1"])
    outputs = config.get_list("outputs")
    assert stats_log_settings(outputs).enabled
    assert stats_log_settings(outputs).filename == "stats.log"
    assert eve_settings(outputs).filename == "eve.json"
    path = VERIFY_DIR / "bug-5464-verdict-05" / "suricata.yaml"
    if path.is_file():
        config, _ = Config.load(path)
        outputs = config.get_list("outputs")
        assert stats_log_settings(outputs).append is True
        assert eve_settings(outputs).type_options["alert"] == {"verdict": True}


def test_stats_interval() -> None:
    assert stats_interval({}) == 8
    assert stats_interval({"interval": "30"}) == 30
    assert stats_interval({"interval": 0}) == 8 == stats_interval({"interval": "soon"})
