"""Detection's own settings parser (``detect`` and its top-level neighbours)."""

from __future__ import annotations

from ruleengine.config import Config
from ruleengine.detect.config import DetectSettings


def test_loaded_config() -> None:
    config, _ = Config.load(None, ["packet-alert-max=6", "mpm-algo=hs"])
    detect = DetectSettings.from_mapping(config.data)
    assert detect.packet_alert_max == 6 and detect.mpm_algo == "hs"
    assert detect.action_order == ("pass", "drop", "reject", "alert")


def test_keys_and_wrong_kinds() -> None:
    detect = DetectSettings.from_mapping({
        "detect": {"profile": "High", "prefilter": {"default": "Auto"},
                   "inspection-recursion-limit": "0x10", "sgh-mpm-context": ["x"]},
        "spm-algo": "BM", "action-order": ["Drop", "pass"], "packet-alert-max": "many"})
    assert (detect.profile, detect.prefilter_default, detect.spm_algo) == ("high", "auto", "bm")
    assert detect.inspection_recursion_limit == 16
    assert detect.sgh_mpm_context == "auto"  # a list is no word: the default
    assert detect.packet_alert_max == 15 and detect.action_order == ("drop", "pass")
    assert DetectSettings.from_mapping({"detect": "x", "action-order": "x"}) == DetectSettings()
