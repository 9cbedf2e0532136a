"""The ``Config`` object: loading, ``--set`` overrides, checks, getters and typed views."""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from ruleengine.config.catalogue import (
    EVE_TYPES,
    EXCEPTION_POLICIES,
    LIBHTP,
    VALUE_KINDS,
    KeyCatalogue,
    describe_kind,
    known_keys,
    matches_pattern,
    shipped_defaults_text,
    value_ok,
)
from ruleengine.config.loader import IncludeResolver, has_suricata_header, parse_yaml
from ruleengine.config.values import (
    ConfigError,
    parse_bool,
    parse_float,
    parse_int,
    parse_size,
    scalar_text,
    value_or,
)
from ruleengine.config.views import (
    TIMEOUT_DEFAULTS,
    TIMEOUT_FIELDS,
    AfPacketInterface,
    DetectSettings,
    EveSettings,
    ExceptionPolicies,
    FastLogSettings,
    HttpServerSettings,
    NfqSettings,
    ProtoTimeoutSettings,
    StatsLogSettings,
    StreamSettings,
    af_packet_iface,
    http_settings,
)

_MISSING = object()
_MAX_SET_DEPTH = 32


class Config:
    """A loaded configuration tree (dicts, lists, scalars) with Suricata-style getters."""

    def __init__(self, data: Mapping[str, Any] | None = None, *,
                 source: Path | None = None) -> None:
        self.data: dict[str, Any] = dict(data or {})
        self.source = source
        self.warnings: list[str] = []

    # --- loading -------------------------------------------------------------------

    @classmethod
    def load(cls, path: str | Path | None,
             overrides: Sequence[str] = ()) -> tuple[Config, list[str]]:
        warnings: list[str] = []
        if path is None:
            data, _ = parse_yaml(shipped_defaults_text(), "suricata-default.yaml")
            config = cls(data if isinstance(data, dict) else {})
        else:
            config = cls._load_file(Path(path), warnings)
        for override in overrides:
            config.apply_override(override, warnings)
        config.check(warnings)
        config.warnings = warnings
        return config, list(warnings)

    @classmethod
    def _load_file(cls, path: Path, warnings: list[str]) -> Config:
        try:
            text = path.read_text(encoding="utf-8", errors="surrogateescape")
        except FileNotFoundError:
            raise ConfigError(f"{path}: configuration file not found") from None
        except IsADirectoryError:
            raise ConfigError(f"{path}: is a directory, not a configuration file") from None
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read configuration: {exc.strerror}") from None
        if not has_suricata_header(text):
            warnings.append(f"{path}: does not start with '%YAML 1.1' and '---' "
                            "(Suricata refuses such files); read anyway")
        data, dups = parse_yaml(text, str(path))
        warnings.extend(dups)
        if data is None:
            data = {}
        if not isinstance(data, dict):
            warnings.append(f"{path}: the top level is not a mapping of keys; ignored")
            data = {}
        data = IncludeResolver(warnings).resolve(data, path.parent, 0)
        return cls(data, source=path)

    def apply_override(self, override: str, warnings: list[str] | None = None) -> bool:
        """Apply one ``--set name=value`` (value kept as text, as Suricata does)."""
        sink = warnings if warnings is not None else self.warnings
        name, sep, value = override.partition("=")
        name = name.strip()
        if not sep or not name:
            sink.append(f"--set {override}: expected name=value; ignored")
            return False
        segs = name.split(".")
        if any(not s for s in segs):
            sink.append(f"--set {override}: empty part in the name; ignored")
            return False
        if len(segs) > _MAX_SET_DEPTH:
            sink.append(f"--set {override[:80]}...: more than {_MAX_SET_DEPTH} parts; ignored")
            return False
        problem = self.set(name, value.strip())
        if problem:
            sink.append(f"--set {override}: {problem}; ignored")
            return False
        return True

    def set(self, dotted: str, value: Any) -> str | None:
        """Set a value, creating sections on the way. Returns a problem text or None."""
        segs = dotted.split(".")
        node: Any = self.data
        for i, seg in enumerate(segs):
            last = i == len(segs) - 1
            if isinstance(node, list):
                if not seg.isdigit():
                    return f"'{'.'.join(segs[:i])}' is a list; '{seg}' is not an index"
                index = int(seg)
                if index > len(node):
                    return f"index {index} is past the end of '{'.'.join(segs[:i])}'"
                if index == len(node):
                    node.append(None)
                if last:
                    node[index] = value
                    return None
                item = node[index]
                if not isinstance(item, dict | list):
                    # "- http" then --set ...types.3.http.extended=yes: the item becomes
                    # "- http: {extended: yes}", as in Suricata's config tree
                    node[index] = {item: {}} if item == segs[i + 1] else {}
                node = node[index]
            else:
                if last:
                    node[seg] = value
                    return None
                child = node.get(seg)
                if not isinstance(child, dict | list):
                    child = node[seg] = {}
                node = child
        return None

    # --- validation ----------------------------------------------------------------

    def check(self, warnings: list[str]) -> None:
        """Warn about unknown keys, values of the wrong kind and unknown EVE types."""
        catalogue = known_keys()
        self._check_node(self.data, (), catalogue, warnings)
        for dotted, value in self._leaves():
            for pattern, kind in VALUE_KINDS:
                if matches_pattern(pattern, dotted) and not value_ok(kind, value):
                    warnings.append(f"{dotted}: {value!r} is not {describe_kind(kind)}; "
                                    "the default is used")
                    break
        outputs = self.data.get("outputs")
        for i, item in enumerate(outputs if isinstance(outputs, list) else []):
            eve = item.get("eve-log") if isinstance(item, dict) else None
            types = eve.get("types") if isinstance(eve, dict) else None
            for entry in types if isinstance(types, list) else []:
                name = next(iter(entry), None) if isinstance(entry, dict) else entry
                if isinstance(name, str) and name not in EVE_TYPES:
                    warnings.append(f"outputs.{i}.eve-log.types: unknown EVE type '{name}'")

    def _check_node(self, node: Any, path: tuple[str, ...], catalogue: KeyCatalogue,
                    warnings: list[str]) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                sub = (*path, str(key))
                if not catalogue.is_known_prefix(sub):
                    warnings.append(self._unknown_key_message(sub, catalogue))
                    continue
                self._check_node(value, sub, catalogue, warnings)
        elif isinstance(node, list):
            sub = (*path, "#")
            if node and not catalogue.is_known_prefix(sub):
                warnings.append(f"{'.'.join(path)}: Suricata does not expect a list here")
                return
            for item in node:
                self._check_node(item, sub, catalogue, warnings)
        elif path and not catalogue.is_known(path):
            if catalogue.is_known_prefix(path) and node is not None:
                warnings.append(f"{'.'.join(path).replace('.#', '')}: is a section, "
                                f"not a value ({node!r}); ignored")
            elif not catalogue.is_known_prefix(path):
                warnings.append(self._unknown_key_message(path, catalogue))

    @staticmethod
    def _unknown_key_message(path: tuple[str, ...], catalogue: KeyCatalogue) -> str:
        shown = ".".join(path).replace(".#", "[]")
        close = difflib.get_close_matches(path[-1], catalogue.siblings(path), n=1, cutoff=0.7)
        parent = ".".join(path[:-1]).replace(".#", "[]")
        hint = f" (did you mean '{parent + '.' if parent else ''}{close[0]}'?)" if close else ""
        return f"unknown configuration key '{shown}'{hint}; ignored"

    def _leaves(self) -> Iterator[tuple[str, Any]]:
        def walk(node: Any, prefix: str) -> Iterator[tuple[str, Any]]:
            if isinstance(node, dict):
                for key, value in node.items():
                    yield from walk(value, f"{prefix}.{key}" if prefix else str(key))
            elif isinstance(node, list):
                for i, item in enumerate(node):
                    yield from walk(item, f"{prefix}.{i}")
            else:
                yield prefix, node

        yield from walk(self.data, "")

    # --- getters -------------------------------------------------------------------

    def _lookup(self, dotted: str) -> Any:
        node: Any = self.data
        for seg in dotted.split("."):
            if isinstance(node, dict):
                if seg not in node:
                    return _MISSING
                node = node[seg]
            elif isinstance(node, list) and seg.isdigit() and int(seg) < len(node):
                node = node[int(seg)]
            else:
                return _MISSING
        return node

    def get(self, dotted: str, default: Any = None) -> Any:
        """The raw value at ``"stream.reassembly.depth"`` (None/missing -> default)."""
        value = self._lookup(dotted)
        return default if value is _MISSING or value is None else value

    def has(self, dotted: str) -> bool:
        return self._lookup(dotted) is not _MISSING

    def get_bool(self, dotted: str, default: bool) -> bool:
        return value_or(parse_bool, self.get(dotted), default)

    def get_size(self, dotted: str, default: int) -> int:
        return value_or(parse_size, self.get(dotted), default)

    def get_int(self, dotted: str, default: int) -> int:
        return value_or(parse_int, self.get(dotted), default)

    def get_float(self, dotted: str, default: float) -> float:
        return value_or(parse_float, self.get(dotted), default)

    def get_str(self, dotted: str, default: str) -> str:
        value = self.get(dotted)
        if value is None or isinstance(value, dict | list):
            return default
        if isinstance(value, bool):
            return "yes" if value else "no"
        return str(value)

    def get_section(self, dotted: str) -> Mapping[str, Any]:
        """The mapping at ``dotted`` ({} if missing or not a mapping)."""
        value = self.get(dotted)
        return value if isinstance(value, dict) else {}

    def get_list(self, dotted: str) -> list[Any]:
        value = self.get(dotted)
        return value if isinstance(value, list) else []

    # --- typed views -----------------------------------------------------------------

    @property
    def runmode(self) -> str | None:
        value = self.get("runmode")
        return str(value).lower() if value is not None else None

    def checksum_validation(self, k_option: str | None = None) -> bool:
        """Whether to validate checksums: ``-k none|all`` wins, else
        ``capture.checksum-validation: none`` disables, else ``stream.checksum-validation``."""
        if k_option is not None:
            return k_option.strip().lower() != "none"
        capture = self.get("capture.checksum-validation")
        if isinstance(capture, str) and capture.strip().lower() == "none":
            return False
        if parse_bool(capture) is False:
            return False
        return self.get_bool("stream.checksum-validation", True)

    def stream(self) -> StreamSettings:
        inline = self.get("stream.inline", "auto")
        inline_bool = parse_bool(inline)
        policy = self.get("stream.midstream-policy")
        return StreamSettings(
            memcap=self.get_size("stream.memcap", 64 << 20),
            checksum_validation=self.get_bool("stream.checksum-validation", True),
            midstream=self.get_bool("stream.midstream", False),
            midstream_policy=str(policy).lower() if policy is not None else None,
            async_oneside=self.get_bool("stream.async-oneside", False),
            inline="auto" if inline_bool is None else ("yes" if inline_bool else "no"),
            drop_invalid=self.get_bool("stream.drop-invalid", True),
            bypass=self.get_bool("stream.bypass", False),
            reassembly_memcap=self.get_size("stream.reassembly.memcap", 256 << 20),
            reassembly_depth=self.get_size("stream.reassembly.depth", 1 << 20),
            toserver_chunk_size=self.get_size("stream.reassembly.toserver-chunk-size", 2560),
            toclient_chunk_size=self.get_size("stream.reassembly.toclient-chunk-size", 2560),
            randomize_chunk_size=self.get_bool("stream.reassembly.randomize-chunk-size", True),
            raw=self.get_bool("stream.reassembly.raw", True),
        )

    def flow_timeouts(self) -> dict[str, ProtoTimeoutSettings]:
        """Timeouts for ``default``, ``tcp``, ``udp``, ``icmp``; a value the YAML leaves out
        comes from the ``default`` section, then from Suricata's shipped values."""
        result: dict[str, ProtoTimeoutSettings] = {}
        default_section = self.get_section("flow-timeouts.default")
        for proto, shipped in TIMEOUT_DEFAULTS.items():
            section = self.get_section(f"flow-timeouts.{proto}")
            values = []
            for name, fallback in zip(TIMEOUT_FIELDS, shipped, strict=True):
                if name in section:
                    value = parse_int(section.get(name))
                elif proto != "default":
                    value = parse_int(default_section.get(name))
                else:
                    value = None
                values.append(fallback if value is None or value < 0 else value)
            result[proto] = ProtoTimeoutSettings(*values)
        return result

    def http_default_config(self) -> HttpServerSettings:
        return http_settings("default-config", (),
                              self.get_section(LIBHTP + "default-config"), HttpServerSettings())

    def http_server_configs(self) -> list[HttpServerSettings]:
        """``server-config`` entries, each on top of default-config (Suricata's order)."""
        base = self.http_default_config()
        out = []
        for item in self.get_list(LIBHTP + "server-config"):
            if not isinstance(item, dict) or len(item) != 1:
                continue
            name, body = next(iter(item.items()))
            if not isinstance(body, dict):
                continue
            addresses = body.get("address")
            addr_list = addresses if isinstance(addresses, list) else (
                [addresses] if addresses is not None else [])
            out.append(http_settings(str(name), tuple(str(a) for a in addr_list), body, base))
        return out

    def address_groups(self) -> dict[str, str]:
        return {str(k): scalar_text(v) for k, v in self.get_section(
            "vars.address-groups").items()}

    def port_groups(self) -> dict[str, str]:
        return {str(k): scalar_text(v) for k, v in self.get_section(
            "vars.port-groups").items()}

    def af_packet(self) -> list[AfPacketInterface]:
        """The ``af-packet`` interfaces, each completed from the ``interface: default``
        entry (the ``default`` entry itself is not listed)."""
        entries = [e for e in self.get_list("af-packet") if isinstance(e, dict)]
        default = next((e for e in entries if str(e.get("interface")) == "default"), {})
        return [af_packet_iface({**default, **e}) for e in entries
                if e.get("interface") is not None and str(e.get("interface")) != "default"]

    def af_packet_for(self, iface: str) -> AfPacketInterface:
        """Settings for ``iface``: its own entry, else the ``default`` entry."""
        for entry in self.af_packet():
            if entry.interface == iface:
                return entry
        entries = [e for e in self.get_list("af-packet") if isinstance(e, dict)]
        default = next((e for e in entries if str(e.get("interface")) == "default"), {})
        return af_packet_iface({**default, "interface": iface})

    def nfq(self) -> NfqSettings:
        return NfqSettings(
            mode=self.get_str("nfq.mode", "accept").lower(),
            repeat_mark=self.get_int("nfq.repeat-mark", 0),
            repeat_mask=self.get_int("nfq.repeat-mask", 0),
            bypass_mark=self.get_int("nfq.bypass-mark", 0),
            bypass_mask=self.get_int("nfq.bypass-mask", 0),
            route_queue=self.get_int("nfq.route-queue", 0),
            batchcount=self.get_int("nfq.batchcount", 1),
            fail_open=self.get_bool("nfq.fail-open", False),
        )

    def eve(self) -> EveSettings:
        """The first ``eve-log`` output (Suricata may have several; we write one file)."""
        for item in self.get_list("outputs"):
            body = item.get("eve-log") if isinstance(item, dict) else None
            if body is None:
                continue
            body = body if isinstance(body, dict) else {}
            types: set[str] = set()
            options: dict[str, Mapping[str, Any]] = {}
            listed = body.get("types")
            # a ``types`` that is not a list was warned about as ignored: every type
            has_types = isinstance(listed, list)
            for entry in listed if isinstance(listed, list) else []:
                if isinstance(entry, str):
                    types.add(entry)
                elif isinstance(entry, dict) and entry:
                    name, opts = next(iter(entry.items()))
                    opts = opts if isinstance(opts, dict) else {}
                    if parse_bool(opts.get("enabled", True)) is False:
                        continue
                    types.add(str(name))
                    options[str(name)] = opts
            return EveSettings(
                enabled=parse_bool(body.get("enabled", True)) is not False,
                filename=scalar_text(body.get("filename") or "eve.json"),
                filetype=scalar_text(body.get("filetype") or "regular"),
                append=parse_bool(body.get("append", True)) is not False,
                # no ``types`` list: every type (Suricata would log none; an eve-log
                # without types is more likely a short config than a wish for silence)
                types=frozenset(types) if has_types else None,
                type_options=options,
                community_id=parse_bool(body.get("community-id")) is True,
                pcap_file=parse_bool(body.get("pcap-file")) is True,
                prefix=scalar_text(body.get("prefix")),
                identity=_optional_text(body.get("identity")),
                facility=_optional_text(body.get("facility")),
                level=_optional_text(body.get("level")),
                redis=dict(redis) if isinstance(redis := body.get("redis"), dict) else {},
            )
        return EveSettings()

    def stats_log(self) -> StatsLogSettings:
        """The first ``stats`` output (``outputs: - stats: {enabled, filename, ...}``)."""
        for item in self.get_list("outputs"):
            body = item.get("stats") if isinstance(item, dict) else None
            if isinstance(body, dict):
                return StatsLogSettings(
                    enabled=parse_bool(body.get("enabled", True)) is not False,
                    filename=scalar_text(body.get("filename") or "stats.log"),
                    append=parse_bool(body.get("append", True)) is not False,
                    null_values=parse_bool(body.get("null-values")) is True,
                    # both off: Suricata refuses the output; here the totals stay on
                    totals=parse_bool(body.get("totals", True)) is not False
                    or parse_bool(body.get("threads")) is not True,
                    threads=parse_bool(body.get("threads")) is True,
                )
        return StatsLogSettings()

    def fast_log(self) -> FastLogSettings:
        """The first ``fast`` output (``outputs: - fast: {enabled, filename, append}``);
        ``append`` defaults to yes, as Suricata's log files do."""
        for item in self.get_list("outputs"):
            body = item.get("fast") if isinstance(item, dict) else None
            if isinstance(body, dict):
                return FastLogSettings(
                    enabled=parse_bool(body.get("enabled")) is True,
                    filename=scalar_text(body.get("filename") or "fast.log"),
                    append=parse_bool(body.get("append", True)) is not False,
                )
        return FastLogSettings()

    @property
    def sensor_name(self) -> str | None:
        """``sensor-name`` (EVE's ``host`` field), None when not set."""
        value = self.get("sensor-name")
        return None if value is None else scalar_text(value)

    def stats_enabled(self) -> bool:
        return self.get_bool("stats.enabled", True)

    def stats_interval(self) -> int:
        interval = self.get_int("stats.interval", 8)
        return interval if interval > 0 else 8

    def exception_policies(self, ips: bool) -> ExceptionPolicies:
        """Each policy: its own key, else the master ``exception-policy``; ``auto`` means
        drop-flow in IPS mode and ignore otherwise; drop/reject policies only act in IPS
        mode (ignore in IDS), as in Suricata."""
        master = self.get_str("exception-policy", "auto").lower()

        def resolve(key: str, packet_level: bool = False) -> str:
            value = self.get_str(key, "").lower() or master
            if value not in EXCEPTION_POLICIES or value == "not-set":
                value = master if master in EXCEPTION_POLICIES else "auto"
            if value == "auto":
                value = ("drop-packet" if packet_level else "drop-flow") if ips else "ignore"
            if not ips and value.startswith(("drop", "reject")):
                value = "ignore"
            return value

        midstream = self._midstream_policy(ips, master)
        return ExceptionPolicies(
            stream_memcap=resolve("stream.memcap-policy"),
            stream_midstream=midstream,
            stream_reassembly_memcap=resolve("stream.reassembly.memcap-policy"),
            flow_memcap=resolve("flow.memcap-policy", packet_level=True),
            defrag_memcap=resolve("defrag.memcap-policy", packet_level=True),
            app_layer_error=resolve("app-layer.error-policy"),
        )

    def _midstream_policy(self, ips: bool, master: str) -> str:
        """``ExceptionPolicyMidstreamParse``: with midstream pick-up enabled the policy still
        applies to picked-up sessions, but only ``pass-flow`` (or ``ignore``) may be set
        directly; the master switch is taken as is (``bypass`` included); ``auto`` and the
        built-in default mean drop-flow only in IPS mode without midstream pick-up."""
        midstream = self.get_bool("stream.midstream", False)
        auto = "drop-flow" if ips and not midstream else "ignore"
        direct = self.get_str("stream.midstream-policy", "").lower()
        if direct in EXCEPTION_POLICIES and direct != "not-set":
            if direct == "auto":
                return auto
            if midstream and direct not in ("ignore", "pass-flow"):
                return "ignore"  # Suricata refuses this combination at start-up
            if not ips and direct.startswith(("drop", "reject")):
                return "ignore"
            return direct
        if self.get("exception-policy") is not None:
            if master == "auto":
                return auto
            if not ips and master.startswith(("drop", "reject")):
                return "ignore"
            return master if master in EXCEPTION_POLICIES else "ignore"
        return auto

    def detect(self) -> DetectSettings:
        order = [str(a).lower() for a in self.get_list("action-order")]
        return DetectSettings(
            profile=self.get_str("detect.profile", "medium").lower(),
            sgh_mpm_context=self.get_str("detect.sgh-mpm-context", "auto").lower(),
            inspection_recursion_limit=self.get_int("detect.inspection-recursion-limit", 3000),
            prefilter_default=self.get_str("detect.prefilter.default", "mpm").lower(),
            mpm_algo=self.get_str("mpm-algo", "auto").lower(),
            spm_algo=self.get_str("spm-algo", "auto").lower(),
            packet_alert_max=self.get_int("packet-alert-max", 15),
            action_order=tuple(order) if order else DetectSettings().action_order,
        )


def _optional_text(value: Any) -> str | None:
    return None if value is None else scalar_text(value)
