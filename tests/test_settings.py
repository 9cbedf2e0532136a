"""EngineSettings.from_config on suricata.yaml snippets: every setting the pipeline reads
comes from its key, Suricata's defaults fill what a file leaves out, and values that
cannot be used become warnings (never an exception) with the default kept."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from ruleengine.applayer.http1.config import HttpConfig
from ruleengine.config import Config
from ruleengine.flow.table import FlowTimeouts
from ruleengine.settings import EngineSettings, checksum_validation
from ruleengine.stream.tcp import StreamConfig


def _settings(tmp_path: Path, body: str, **kw: object) -> tuple[EngineSettings, list[str]]:
    """Settings from a yaml file of ``body``; the warnings of the config check and of
    ``from_config`` together, as the CLI shows them."""
    path = tmp_path / "suricata.yaml"
    path.write_text("%YAML 1.1\n---\n" + body)
    config, warnings = Config.load(path)
    settings, problems = EngineSettings.from_config(config, **kw)  # type: ignore[arg-type]
    return settings, warnings + problems


def test_an_empty_file_gives_suricatas_builtin_defaults(tmp_path: Path) -> None:
    settings, warnings = _settings(tmp_path, "")
    assert warnings == []
    assert settings.stream == StreamConfig()
    assert settings.timeouts == FlowTimeouts()
    assert settings.http == HttpConfig()
    assert (settings.checksum_validation, settings.checksum_auto) == (True, True)
    assert (settings.use_vlan, settings.stats_interval, settings.packet_alert_max) == (
        True, 8.0, 15)
    assert (settings.mpm, settings.midstream_policy, settings.ips) == ("auto", "ignore", False)
    assert settings.applayer.files.hashes == frozenset()


def test_every_value_comes_from_its_key(tmp_path: Path) -> None:
    settings, warnings = _settings(tmp_path, """
stream:
  midstream: true
  async-oneside: yes
  bypass: yes
  reassembly:
    depth: 2mb
    memcap: 64mb
flow-timeouts:
  tcp:
    established: 33
    bypassed: 7
vlan:
  use-for-tracking: no
stats:
  interval: 30
packet-alert-max: 4
mpm-algo: hs
app-layer:
  protocols:
    http:
      libhtp:
        default-config:
          response-body-limit: 1kb
    tls:
      enabled: no
    ssh:
      enabled: detection-only
outputs:
  - eve-log:
      enabled: yes
      types:
        - tls:
            extended: yes
        - files:
            force-hash: [md5, sha256]
""")
    assert warnings == []
    stream = settings.stream
    assert (stream.midstream, stream.async_oneside, stream.bypass) == (True, True, True)
    assert (stream.reassembly_depth, stream.memcap) == (2 << 20, 64 << 20)
    assert settings.stream_bypass
    assert (settings.timeouts.tcp.established, settings.timeouts.tcp.bypassed) == (33, 7)
    assert settings.timeouts.udp == FlowTimeouts().udp
    assert not settings.use_vlan
    assert (settings.stats_interval, settings.packet_alert_max, settings.mpm) == (30.0, 4, "hs")
    assert settings.http.response_body_limit == 1024
    assert settings.applayer.config("http") is settings.http
    assert "tls" not in settings.applayer.enabled and "http" in settings.applayer.enabled
    assert settings.applayer.detection_only == frozenset({"ssh"})
    assert settings.applayer.files.hashes == frozenset({"md5", "sha256"})
    assert settings.eve_options["tls"]["extended"] in (True, "yes")


@pytest.mark.parametrize(
    ("body", "fragment", "check"),
    [
        ("stream:\n  reassembly:\n    memcap: bogus\n", "stream.reassembly.memcap",
         lambda s: s.stream.memcap == StreamConfig().memcap),
        ("app-layer:\n  protocols:\n    http:\n      libhtp:\n        default-config:\n"
         "          request-body-limit: lots\n", "request-body-limit",
         lambda s: s.http.request_body_limit == HttpConfig().request_body_limit),
        ("outputs:\n  - eve-log:\n      types:\n        - files:\n"
         "            force-hash: [md5, crc32]\n", "crc32",
         lambda s: s.applayer.files.hashes == frozenset({"md5"})),
        ("app-layer:\n  protocols:\n    http:\n      libhtp:\n        default-config:\n"
         "          no-such-option: 1\n", "no-such-option", lambda s: s.http == HttpConfig()),
        ("pcap-file:\n  checksum-checks: sometimes\n", "pcap-file.checksum-checks",
         lambda s: s.checksum_auto and s.checksum_validation),
    ],
    ids=["stream-memcap", "http-body-limit", "unknown-hash", "unknown-libhtp-key",
         "checksum-checks"],
)
def test_a_bad_value_is_a_warning_and_keeps_the_default(
        tmp_path: Path, body: str, fragment: str, check: Callable[[EngineSettings], bool]
) -> None:
    settings, warnings = _settings(tmp_path, body)
    assert any(fragment in w for w in warnings), warnings
    assert check(settings)


def test_numbers_out_of_range_fall_back(tmp_path: Path) -> None:
    settings, _ = _settings(tmp_path, "stats:\n  interval: 0\npacket-alert-max: 0\n")
    assert settings.stats_interval == 8.0  # Suricata: a non-positive interval is the default
    assert settings.packet_alert_max == 1  # at least one alert per packet is logged


@pytest.mark.parametrize(
    ("value", "validation", "auto"),
    [("auto", True, True), ("yes", True, False), ("no", False, False)],
)
def test_pcap_checksum_checks(tmp_path: Path, value: str, validation: bool, auto: bool) -> None:
    settings, warnings = _settings(tmp_path, f"pcap-file:\n  checksum-checks: {value}\n")
    assert warnings == []
    assert (settings.checksum_validation, settings.checksum_auto) == (validation, auto)


def test_k_option_wins_over_the_file(tmp_path: Path) -> None:
    body = "pcap-file:\n  checksum-checks: no\n"
    settings, _ = _settings(tmp_path, body, k_option="all")
    assert (settings.checksum_validation, settings.checksum_auto) == (True, False)
    settings, _ = _settings(tmp_path, "", k_option="none")
    assert (settings.checksum_validation, settings.checksum_auto) == (False, False)


def test_checksum_checks_only_apply_to_pcap_files(tmp_path: Path) -> None:
    settings, _ = _settings(tmp_path, "pcap-file:\n  checksum-checks: no\n", offline=False)
    assert (settings.checksum_validation, settings.checksum_auto, settings.offline) == (
        True, False, False)


def test_capture_checksum_validation_none_disables_it(tmp_path: Path) -> None:
    settings, _ = _settings(tmp_path, "capture:\n  checksum-validation: none\n")
    assert not settings.checksum_validation


def test_ips_mode_resolves_inline_stream_and_the_midstream_policy(tmp_path: Path) -> None:
    ids, _ = _settings(tmp_path, "")
    ips, _ = _settings(tmp_path, "", ips=True)
    assert (ids.ips, ids.stream.inline, ids.midstream_policy) == (False, False, "ignore")
    assert (ips.ips, ips.stream.inline, ips.midstream_policy) == (True, True, "drop-flow")
    forced, _ = _settings(tmp_path, "stream:\n  inline: no\n", ips=True)
    assert not forced.stream.inline
    # drop policies only act in IPS mode
    policy = "stream:\n  midstream-policy: drop-flow\n"
    assert _settings(tmp_path, policy)[0].midstream_policy == "ignore"
    assert _settings(tmp_path, policy, ips=True)[0].midstream_policy == "drop-flow"


def test_http_given_alone_becomes_the_app_layer_http_config() -> None:
    http = HttpConfig(request_body_limit=77)
    settings = EngineSettings(http=http)
    assert settings.applayer.config("http") is http


def test_flow_memcap_is_read_as_a_size(tmp_path: Path) -> None:
    settings, warnings = _settings(tmp_path, "flow:\n  memcap: 64mb\n")
    assert warnings == [] and settings.flow_memcap == 64 << 20
    assert EngineSettings().flow_memcap == 32 << 20  # Suricata's built-in default
    settings, warnings = _settings(tmp_path, "flow:\n  memcap: lots\n")
    assert settings.flow_memcap == 32 << 20 and warnings


def test_tunnel_decoder_keys(tmp_path: Path) -> None:
    settings, warnings = _settings(tmp_path, "")
    assert settings.vxlan_ports == frozenset({4789}) and settings.geneve_ports == {6081}
    assert settings.vxlan_strict and settings.use_recursion and settings.max_layers == 16
    body = ("vars:\n  port-groups:\n    VXLAN_PORTS: \"[8472, 4789]\"\n"
            "decoder:\n  max-layers: 5\n  recursion-level:\n    use-for-tracking: false\n"
            "  vxlan:\n    ports: $VXLAN_PORTS\n    reserved-bits-check: permissive\n"
            "  geneve:\n    enabled: no\n")
    settings, warnings = _settings(tmp_path, body)
    assert not warnings
    assert settings.vxlan_ports == frozenset({8472, 4789}) and not settings.geneve_ports
    assert not settings.vxlan_strict and not settings.use_recursion
    assert settings.max_layers == 5


def test_bad_tunnel_decoder_values_warn_and_keep_the_default(tmp_path: Path) -> None:
    body = "decoder:\n  vxlan:\n    ports: \"abc\"\n    reserved-bits-check: loose\n"
    settings, warnings = _settings(tmp_path, body)
    assert settings.vxlan_ports == frozenset({4789}) and settings.vxlan_strict
    assert any(w.startswith("decoder.vxlan.ports: not a port") for w in warnings)
    assert any("reserved-bits-check" in w and "'strict'" in w for w in warnings)


def test_checksum_validation() -> None:
    config, _ = Config.load(None)
    assert checksum_validation(config) is True
    assert checksum_validation(config, "none") is False
    assert checksum_validation(config, "all") is True
    config, _ = Config.load(None, ["capture.checksum-validation=none"])
    assert checksum_validation(config) is False
    config, _ = Config.load(None, ["capture.checksum-validation=no"])
    assert checksum_validation(config) is False
    config, _ = Config.load(None, ["stream.checksum-validation=no"])
    assert checksum_validation(config) is False
