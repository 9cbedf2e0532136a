from __future__ import annotations

from ruleengine.applayer.http1 import HttpConfig


def test_defaults_are_shipped_suricata_yaml_values() -> None:
    cfg = HttpConfig()
    assert cfg.request_body_limit == 100 * 1024
    assert cfg.response_body_limit == 100 * 1024
    assert cfg.request_body_minimal_inspect_size == 32 * 1024
    assert cfg.request_body_inspect_window == 4 * 1024
    assert cfg.response_body_minimal_inspect_size == 40 * 1024
    assert cfg.response_body_inspect_window == 16 * 1024
    assert cfg.response_body_decompress_layer_limit == 2
    assert not cfg.double_decode_path and not cfg.double_decode_query


def test_from_mapping_reads_yaml_keys_and_sizes() -> None:
    cfg, problems = HttpConfig.from_mapping(
        {
            "personality": "IDS",
            "request-body-limit": "2mb",
            "response-body-limit": "3kb",
            "response-body-decompress-layer-limit": 3,
            "double-decode-path": "yes",
            "double-decode-query": False,
            "response-body-inspect-window": 4096,
        }
    )
    assert problems == []
    assert cfg.request_body_limit == 2 * 1024 * 1024
    assert cfg.response_body_limit == 3 * 1024
    assert cfg.response_body_decompress_layer_limit == 3
    assert cfg.double_decode_path is True
    assert cfg.double_decode_query is False
    assert cfg.response_body_inspect_window == 4096


def test_from_mapping_reports_unknown_and_invalid_keys() -> None:
    cfg, problems = HttpConfig.from_mapping(
        {"no-such-key": 1, "request-body-limit": "lots", "double-decode-path": "maybe"}
    )
    assert "no-such-key" in problems
    assert any(p.startswith("request-body-limit") for p in problems)
    assert any(p.startswith("double-decode-path") for p in problems)
    assert cfg.request_body_limit == HttpConfig().request_body_limit


def test_suricata_keys_without_effect_are_accepted_and_aliases_mapped() -> None:
    cfg, problems = HttpConfig.from_mapping(
        {
            "http-body-inline": "auto",
            "swf-decompression": {"enabled": False},
            "randomize-inspection-sizes": "yes",
            "randomize-inspection-range": 10,
            "meta-field-limit": 1000,
            "lzma-enabled": True,
            "compression-bomb-limit": "2mb",
            "max-tx": 100,
        }
    )
    assert problems == []
    assert cfg.field_limit == 1000
    assert cfg.lzma_enabled is True
    assert cfg.compression_bomb_limit == 2 * 1024 * 1024
    assert cfg.max_tx == 100
