"""Config: suricata.yaml loading, --set overrides, unknown-key warnings, value parsing."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from capture_backends.af_packet import AfPacketConfig
from capture_backends.nfq_config import NfqConfig, NfqConfigError
from ruleengine.applayer.http1.config import HttpConfig
from ruleengine.config import (
    Config,
    ConfigError,
    known_keys,
    parse_bool,
    parse_int,
    parse_size,
)
from ruleengine.config.values import exception_policy
from ruleengine.detect.config import DetectSettings
from ruleengine.flow.table import FlowTimeouts
from ruleengine.outputs.config import (
    EveSettings,
    eve_settings,
    fast_log_settings,
    stats_interval,
    stats_log_settings,
)
from ruleengine.settings import EngineSettings, checksum_validation
from ruleengine.stream.config import midstream_policy
from ruleengine.stream.tcp import StreamConfig
from tests.outputs.eve_schema import VERIFY_DIR

HEADER = "%YAML 1.1\n---\n"


def write(path: Path, body: str, header: bool = True) -> Path:
    path.write_text((HEADER if header else "") + body)
    return path


def stream(config: Config) -> StreamConfig:
    """What the TCP tracker reads of the loaded tree (the stage parses its subtree)."""
    return StreamConfig.from_mapping(config.get_section("stream"))


def eve(config: Config) -> EveSettings:
    return eve_settings(config.get_list("outputs"))


def http(config: Config) -> HttpConfig:
    return HttpConfig.from_mapping(
        config.get_section("app-layer.protocols.http.libhtp.default-config"))[0]


def timeouts(config: Config) -> FlowTimeouts:
    return FlowTimeouts.from_mapping(config.get_section("flow-timeouts"))


# --- value parsing ---------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("1mb", 1 << 20), ("4kb", 4096), ("100 KiB", 102400), ("1MiB", 1 << 20), ("2gb", 2 << 30),
    ("3000", 3000), (3000, 3000), ("1.5m", 3 << 19), ("0", 0), ("256 MB", 256 << 20),
    ("abc", None), ("1xb", None), ("-1", None), ("", None), (True, None), (None, None),
])
def test_parse_size(text: object, expected: int | None):
    assert parse_size(text) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("yes", True), ("YES", True), ("true", True), ("on", True), ("1", True), (True, True),
    ("no", False), ("false", False), ("off", False), ("0", False), (False, False),
    ("maybe", None), (None, None),
])
def test_parse_bool(text: object, expected: bool | None):
    assert parse_bool(text) is expected


def test_parse_int():
    assert parse_int("0x1") == 1 and parse_int(" 42 ") == 42 and parse_int("4k") is None


# --- loading ---------------------------------------------------------------------------------


def test_defaults_are_suricatas_shipped_values():
    config, warnings = Config.load(None)
    assert warnings == []
    assert config.get("stream.reassembly.depth") == "1mb"
    assert config.get_size("stream.reassembly.depth", 0) == 1 << 20
    assert config.get_bool("stream.checksum-validation", False) is True
    assert config.get("vars.address-groups.HOME_NET") == "[192.168.0.0/16,10.0.0.0/8,172.16.0.0/12]"
    assert config.port_groups()["HTTP_PORTS"] == "80"
    htp = http(config)
    assert (htp.request_body_limit, htp.response_body_limit) == (100 << 10, 100 << 10)
    assert htp.response_body_inspect_window == 16 << 10
    assert timeouts(config).tcp.established == 600
    assert eve(config).filename == "eve.json" and "alert" in (eve(config).types or ())
    assert stats_interval(config.get_section("stats")) == 8


def test_missing_file_is_an_error(tmp_path: Path):
    with pytest.raises(ConfigError, match="not found"):
        Config.load(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="is a directory"):
        Config.load(tmp_path)


def test_not_yaml_is_an_error_with_position(tmp_path: Path):
    path = write(tmp_path / "bad.yaml", "stream:\n  depth: [1, 2\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml:\d+:\d+: not valid YAML"):
        Config.load(path)


def test_file_values_only_and_code_defaults(tmp_path: Path):
    path = write(tmp_path / "s.yaml", "stream:\n  midstream: true\n")
    config, warnings = Config.load(path)
    assert warnings == []
    assert config.get_bool("stream.midstream", False) is True
    # not in the file: the getter's default (Suricata's built-in) applies
    assert config.get("vars.address-groups.HOME_NET") is None
    assert eve(config).types is None


def test_missing_header_is_a_warning(tmp_path: Path):
    path = write(tmp_path / "s.yaml", "stream:\n  midstream: yes\n", header=False)
    config, warnings = Config.load(path)
    assert len(warnings) == 1 and "%YAML 1.1" in warnings[0]
    assert stream(config).midstream is True


def test_yaml_11_booleans_and_empty_values(tmp_path: Path):
    path = write(tmp_path / "s.yaml", "stream:\n  inline: on\n  async-oneside: off\n"
                 "logging:\n  default-output-filter:\n")
    config, warnings = Config.load(path)
    assert warnings == []
    assert stream(config).inline is True and stream(config).async_oneside is False
    assert config.get("logging.default-output-filter", "x") == "x"


def test_top_level_not_a_mapping(tmp_path: Path):
    path = write(tmp_path / "s.yaml", "- a\n- b\n")
    config, warnings = Config.load(path)
    assert config.data == {} and "not a mapping" in warnings[0]


def test_include_key_and_tag(tmp_path: Path):
    (tmp_path / "sub").mkdir()
    write(tmp_path / "sub" / "vars.yaml",
          "vars:\n  address-groups:\n    HOME_NET: '[10.0.0.0/8]'\n")
    write(tmp_path / "outputs.yaml", "- eve-log:\n    enabled: yes\n    types: [alert]\n")
    path = write(tmp_path / "main.yaml",
                 "vars:\n  address-groups:\n    HOME_NET: any\n    EXTERNAL_NET: any\n"
                 "outputs: !include outputs.yaml\n"
                 "include: sub/vars.yaml\n"
                 "include: missing.yaml\n")
    config, warnings = Config.load(path)
    # as in Suricata, the included "vars" replaces the one defined before the include
    assert config.get("vars.address-groups.HOME_NET") == "[10.0.0.0/8]"
    assert config.get("vars.address-groups.EXTERNAL_NET") is None
    assert eve(config).types == frozenset({"alert"})
    assert len(warnings) == 1 and "missing.yaml" in warnings[0] and "cannot read" in warnings[0]


def test_include_position_decides(tmp_path: Path):
    write(tmp_path / "inc.yaml", "stream:\n  midstream: yes\nflow:\n  memcap: 1mb\n")
    path = write(tmp_path / "main.yaml", "flow:\n  memcap: 2mb\ninclude: inc.yaml\n"
                 "stream:\n  midstream: no\n")
    config, warnings = Config.load(path)
    assert warnings == []
    assert config.get("flow.memcap") == "1mb"  # defined before the include: replaced
    assert stream(config).midstream is False  # defined after the include: kept


def test_include_key_only_at_top_level(tmp_path: Path):
    path = write(tmp_path / "main.yaml", "stream:\n  include: other.yaml\n")
    _config, warnings = Config.load(path)
    assert warnings == ["unknown configuration key 'stream.include'; ignored"]


def test_underscores_become_dashes_except_in_variable_names(tmp_path: Path):
    path = write(tmp_path / "s.yaml", "stream:\n  reassembly:\n    toserver_chunk_size: 4kb\n"
                 "vars:\n  address-groups:\n    MY_NET: any\n  port-groups:\n"
                 "    MY_PORTS: '80'\n")
    config, warnings = Config.load(path)
    assert stream(config).toserver_chunk_size == 4096
    assert config.address_groups() == {"MY_NET": "any"}
    assert config.port_groups() == {"MY_PORTS": "80"}
    assert len(warnings) == 1
    assert "'toserver_chunk_size' is deprecated, use 'toserver-chunk-size'" in warnings[0]


def test_include_loop_is_cut(tmp_path: Path):
    write(tmp_path / "a.yaml", "include: b.yaml\nstream:\n  midstream: yes\n")
    write(tmp_path / "b.yaml", "include: a.yaml\n")
    config, warnings = Config.load(tmp_path / "a.yaml")
    assert stream(config).midstream is True
    assert any("nested more than" in w for w in warnings)


def test_duplicate_key_warning(tmp_path: Path):
    path = write(tmp_path / "s.yaml", "stream:\n  midstream: no\nstream:\n  midstream: yes\n")
    config, warnings = Config.load(path)
    assert stream(config).midstream is True
    assert len(warnings) == 1 and "defined again" in warnings[0]


# --- --set -----------------------------------------------------------------------------------


def test_set_overrides():
    config, warnings = Config.load(None, [
        "stream.midstream=true",
        "stream.reassembly.depth=2mb",
        "app-layer.protocols.http.libhtp.default-config.response-body-decompress-layer-limit=3",
        "outputs.1.eve-log.enabled=no",
        "af-packet.0.bypass=yes",
        "vlan.use-for-tracking=false",
        "exception-policy=auto",
        "pcap-file.delete-when-done=non-alerts",
        "stats.decoder-events=true",
        "stream.midstream-policy=pass-flow",
    ])
    assert warnings == []
    assert config.get("stream.midstream") == "true"  # kept as text, as Suricata does
    assert stream(config).midstream is True
    assert stream(config).reassembly_depth == 2 << 20
    assert http(config).response_body_decompress_layer_limit == 3
    assert eve(config).enabled is False
    assert AfPacketConfig.from_yaml(config.get("af-packet"), "eth0")[0].bypass is True
    assert config.get_bool("vlan.use-for-tracking", True) is False


def test_set_creates_sections_and_list_items(tmp_path: Path):
    config, warnings = Config.load(write(tmp_path / "s.yaml", "outputs: []\n"), [
        "outputs.0.eve-log.enabled=yes", "nfq.bypass-mark=0x10", "nfq.bypass-mask=0x10"])
    assert warnings == []
    assert config.get("outputs.0.eve-log.enabled") == "yes"
    nfq, _ = NfqConfig.from_yaml(config.get_section("nfq"), [0])
    assert (nfq.bypass_mark, nfq.bypass_mask) == (16, 16)


@pytest.mark.parametrize(("override", "fragment"), [
    ("stream.midstream", "expected name=value"),
    ("=yes", "expected name=value"),
    ("stream..midstream=yes", "empty part"),
    ("outputs.x.eve-log.enabled=yes", "is a list"),
    ("outputs.99.eve-log.enabled=yes", "past the end"),
])
def test_bad_set_is_a_warning(override: str, fragment: str):
    _config, warnings = Config.load(None, [override])
    assert len(warnings) == 1 and fragment in warnings[0] and warnings[0].endswith("ignored")


# --- unknown keys and bad values -------------------------------------------------------------


def test_unknown_keys_warn_with_suggestion(tmp_path: Path):
    path = write(tmp_path / "s.yaml",
                 "stream:\n  midstrem: yes\n  reassembly:\n    depht: 1mb\n"
                 "frobnicate: 1\n"
                 "outputs:\n  - eve-log:\n      enabled: yes\n      fillename: x.json\n"
                 "      types: [alert, alrt]\n")
    _config, warnings = Config.load(path, ["detect.profil=high"])
    text = "\n".join(warnings)
    assert "unknown configuration key 'stream.midstrem' (did you mean 'stream.midstream'?)" in text
    assert "'stream.reassembly.depht' (did you mean 'stream.reassembly.depth'?)" in text
    assert "unknown configuration key 'frobnicate'" in text
    assert "'outputs[].eve-log.fillename' (did you mean 'outputs[].eve-log.filename'?)" in text
    assert "unknown EVE type 'alrt'" in text
    assert "'detect.profil' (did you mean 'detect.profile'?)" in text
    assert len(warnings) == 6


def test_free_form_sections_do_not_warn(tmp_path: Path):
    path = write(tmp_path / "s.yaml",
                 "vars:\n  address-groups:\n    MY_NET: '[1.2.3.0/24]'\n"
                 "app-layer:\n  protocols:\n    foo:\n      enabled: yes\n"
                 "    http:\n      libhtp:\n        server-config:\n"
                 "          - apache:\n              address: [10.0.0.0/8]\n"
                 "              personality: Apache_2\n              request-body-limit: 8kb\n"
                 "logging:\n  anything:\n    goes: here\n")
    _config, warnings = Config.load(path)
    assert warnings == []


def test_bad_values_warn_and_fall_back(tmp_path: Path):
    _config, warnings = Config.load(None, [
        "stream.reassembly.depth=lots", "stream.midstream=perhaps",
        "stream.midstream-policy=explode", "flow-timeouts.tcp.new=soon", "runmode=turbo"])
    assert len(warnings) == 5
    assert "stream.reassembly.depth: 'lots' is not a size like 1mb; the default is used" in warnings
    config, _ = Config.load(None, ["stream.reassembly.depth=lots", "flow-timeouts.tcp.new=soon"])
    assert stream(config).reassembly_depth == 1 << 20
    assert timeouts(config).tcp.new == 60


def test_catalogue_knows_commented_and_newer_keys():
    catalogue = known_keys()
    for key in ("stream.bypass", "stream.midstream-policy", "stream.async-oneside",
                "af-packet.#.xdp-filter-file", "af-packet.#.bypass", "nfq.bypass-mask",
                "app-layer.error-policy", "packet-alert-max", "action-order.#",
                "app-layer.protocols.http.libhtp.default-config.headers-limit"):
        assert catalogue.is_known(key.split(".")), key
    assert not catalogue.is_known(["stream", "bypas"])


@pytest.mark.parametrize(("value", "master", "ips", "packet_level", "expected"), [
    (None, None, True, False, "drop-flow"),  # auto
    (None, "auto", True, True, "drop-packet"),  # flow.memcap-policy, defrag.memcap-policy
    (None, "auto", False, False, "ignore"),
    ("pass-flow", "drop-flow", True, False, "pass-flow"),  # the key wins
    ("explode", "reject", True, False, "reject"),  # not a policy: the master
    ("not-set", "nonsense", True, False, "drop-flow"),  # neither: auto
    ("reject-both", None, False, False, "ignore"),  # IDS: no drops or rejects
    ("Bypass", None, False, False, "bypass"),
])
def test_exception_policy(value: object, master: object, ips: bool, packet_level: bool,
                          expected: str) -> None:
    assert exception_policy(value, master, ips=ips, packet_level=packet_level) == expected


# --- the suricata-verify corpus --------------------------------------------------------------


def _verify_yamls() -> list[Path]:
    return sorted(VERIFY_DIR.rglob("suricata.yaml")) if VERIFY_DIR.is_dir() else []


@pytest.mark.skipif(not _verify_yamls(), reason="suricata-verify corpus not found")
@pytest.mark.parametrize("path", _verify_yamls(),
                         ids=lambda p: str(p.parent.relative_to(VERIFY_DIR)))
def test_suricata_verify_configs_load_without_warnings(path: Path):
    config, warnings = Config.load(path)
    assert warnings == []
    assert eve(config).enabled


@pytest.mark.skipif(not (VERIFY_DIR / "index.json").is_file(), reason="corpus index not found")
def test_suricata_verify_set_arguments_load_without_warnings():
    import json
    import shlex

    index = json.loads((VERIFY_DIR / "index.json").read_text())
    overrides: set[str] = set()
    for test in index["tests"]:
        raw = test.get("args") or []
        # the index keeps each argument as Suricata's test.yaml wrote it ("-k none")
        args = [a for item in ([raw] if isinstance(raw, str) else raw) for a in shlex.split(item)]
        for i, arg in enumerate(args):
            if arg == "--set" and i + 1 < len(args):
                overrides.add(args[i + 1])
            elif arg.startswith("--set="):
                overrides.add(arg[len("--set="):])
    assert overrides, "the corpus uses --set"
    _config, warnings = Config.load(None, sorted(overrides))
    assert warnings == []


# --- hostile input ---------------------------------------------------------------------------


def test_alias_bomb_and_deep_nesting_are_clean_errors(tmp_path: Path):
    levels = ["a: &a [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]"]
    for i, name in enumerate("bcdefg"):
        prev = "abcdef"[i]
        levels.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 10) + "]")
    bomb = write(tmp_path / "bomb.yaml", "\n".join(levels) + "\n")
    with pytest.raises(ConfigError, match="aliases are expanded"):
        Config.load(bomb)
    deep = write(tmp_path / "deep.yaml", "a: " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(ConfigError, match="nested too deeply"):
        Config.load(deep)
    recursive = write(tmp_path / "rec.yaml", "a: &a\n  b: *a\n")
    with pytest.raises(ConfigError):
        Config.load(recursive)


def test_hostile_include_is_a_warning(tmp_path: Path):
    write(tmp_path / "bad.yaml", "x: [\n")
    path = write(tmp_path / "main.yaml", "include: bad.yaml\ninclude: 42\nstream:\n  bypass: yes\n")
    config, warnings = Config.load(path)
    assert stream(config).bypass is True
    assert len(warnings) == 2 and all(w.endswith("ignored") for w in warnings)


def test_hostile_set_values():
    config, warnings = Config.load(None, ["a." * 100 + "b=1", "stream=flat", "stream.inline=\x00"])
    assert any("more than 32 parts" in w for w in warnings)
    # replacing the whole stream section with text is allowed (Suricata would too), and the
    # typed view then falls back to built-in defaults
    assert stream(config).reassembly_depth == 1 << 20


def test_non_string_keys_and_odd_values(tmp_path: Path):
    path = write(tmp_path / "s.yaml", "1: x\nstream:\n  reassembly: 5\nvars: [1, 2]\n")
    config, warnings = Config.load(path)
    assert stream(config).reassembly_depth == 1 << 20
    assert config.address_groups() == {}
    assert len(warnings) == 3


def test_set_below_a_scalar_list_item_keeps_its_name():
    config, warnings = Config.load(None, ["outputs.1.eve-log.types.3.dns.enabled=no"])
    assert warnings == []
    assert config.get("outputs.1.eve-log.types.3") == {"dns": {"enabled": "no"}}
    assert "dns" not in (eve(config).types or ())


def test_stage_config_objects():
    config, _ = Config.load(None, ["stream.midstream=true", "stream.reassembly.depth=64kb",
                                   "flow-timeouts.tcp.established=42"])
    # each stage parses the subtree the config hands it
    stream = StreamConfig.from_mapping(config.get_section("stream"), ips_mode=True)
    assert stream.midstream and stream.inline and stream.reassembly_depth == 64 << 10
    assert StreamConfig.from_mapping(config.get_section("stream")).inline is False
    timeouts = FlowTimeouts.from_mapping(config.get_section("flow-timeouts"))
    assert timeouts.tcp.established == 42
    http, problems = HttpConfig.from_mapping(
        config.get_section("app-layer.protocols.http.libhtp.default-config"))
    assert http == HttpConfig() and problems == []


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


def _every_stage(config: Config, *, ips: bool) -> None:
    """Each stage's parser copes with whatever subtree it is handed (nfq's refuses a value
    that cannot work with its one error type, which the CLI prints)."""
    outputs = config.get_list("outputs")
    stream(config), timeouts(config), http(config), eve_settings(outputs)
    stats_log_settings(outputs), fast_log_settings(outputs)
    DetectSettings.from_mapping(config.data)
    midstream_policy(config.get_section("stream"), config.get("exception-policy"), ips=ips)
    AfPacketConfig.from_yaml(config.get("af-packet"), "eth9")
    with contextlib.suppress(NfqConfigError):
        NfqConfig.from_yaml(config.get_section("nfq"), [0])
    EngineSettings.from_config(config, ips=ips)
    checksum_validation(config)


@settings(max_examples=150, deadline=None)
@given(body=st.text(max_size=200), overrides=st.lists(st.text(max_size=40), max_size=4))
def test_any_file_and_set_text_never_raises_unexpectedly(body: str, overrides: list[str]):
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "s.yaml"
        path.write_text(HEADER + body, encoding="utf-8", errors="surrogateescape")
        try:
            config, _warnings = Config.load(path, overrides)
        except ConfigError:
            return
        # every view copes with whatever the tree holds
        _every_stage(config, ips=True)
        config.address_groups()


_KEYS = st.sampled_from([
    "stream", "reassembly", "depth", "midstream", "inline", "outputs", "eve-log", "types",
    "alert", "enabled", "filename", "af-packet", "interface", "bypass", "cluster-id", "nfq",
    "bypass-mark", "flow-timeouts", "tcp", "new", "app-layer", "protocols", "http", "libhtp",
    "default-config", "server-config", "address", "request-body-limit", "vars",
    "address-groups", "HOME_NET", "exception-policy", "action-order", "stats", "0", "1",
])
_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-5, 1 << 40),
                     st.floats(allow_nan=False), st.text(max_size=8))
_TREES = st.recursive(_SCALARS, lambda kids: st.one_of(
    st.lists(kids, max_size=3), st.dictionaries(_KEYS, kids, max_size=4)), max_leaves=25)


@settings(max_examples=150, deadline=None)
@given(tree=st.dictionaries(_KEYS, _TREES, max_size=6))
def test_any_structure_gives_views_not_exceptions(tree: dict[str, object]):
    import tempfile

    import yaml

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "s.yaml"
        path.write_text(HEADER + yaml.safe_dump(tree), encoding="utf-8")
        config, _warnings = Config.load(path, ["stream.inline=auto"])
    _every_stage(config, ips=False)
    config.address_groups(), config.port_groups(), config.runmode


def test_set_names_are_not_mangled():
    # Suricata does not rewrite --set names: stream.async_oneside would set nothing it reads
    config, warnings = Config.load(None, ["stream.async_oneside=true"])
    assert warnings == ["unknown configuration key 'stream.async_oneside' "
                        "(did you mean 'stream.async-oneside'?); ignored"]
    assert stream(config).async_oneside is False


def test_eve_types_that_are_not_a_list_are_ignored() -> None:
    # warned as ignored by check(): the output then writes every type (not one per letter)
    config, warnings = Config.load(None, ["outputs.1.eve-log.types=[alert, flow]"])
    assert any("eve-log.types" in w for w in warnings)
    assert eve(config).types is None
