"""The app-layer registry: discovery, names, buffers, settings and probing."""

from __future__ import annotations

import pytest

from ruleengine.applayer import registry
from ruleengine.applayer.base import AppLayerSpec
from ruleengine.applayer.probing import AppProtoProbe, candidates


def test_http_is_discovered_first_with_its_aliases() -> None:
    specs = registry.protocols()
    assert specs[0].name == "http"
    assert registry.canonical("http1") == "http"
    assert registry.canonical("HTTP") == "http"
    assert registry.canonical("no-such-proto") is None
    assert all(isinstance(s, AppLayerSpec) for s in specs)


def test_every_buffer_knows_its_protocol() -> None:
    table = registry.buffers()
    assert table["http.uri"].alproto == "http"
    shared = {name for name, spec in table.items() if not spec.alproto}
    # a buffer of several protocols leaves the protocol to the rule (file.data, file.name,
    # file.magic)
    assert shared == {"file.data", "file.name", "file.magic"}
    assert {"http", "smtp"} <= registry.buffer_protocols("file.magic")
    assert {"http", "smtp"} <= registry.buffer_protocols("file.data")
    assert {"http", "smtp"} <= registry.buffer_protocols("file.name")
    assert all(len(registry.buffer_protocols(n)) == 1 for n in set(table) - shared)


def test_disabled_protocol_is_not_probed() -> None:
    settings, warnings = registry.load_settings({"http": {"enabled": "no"}})
    assert warnings == []
    assert "http" not in settings.enabled
    probe = AppProtoProbe(enabled=settings.enabled)
    assert probe.probe(b"GET / HTTP/1.1\r\n", True) in (False, None)
    enabled = registry.default_settings().enabled
    assert "http" in enabled
    assert AppProtoProbe(enabled=enabled).probe(b"GET / HTTP/1.1\r\n", True) == "http"


def test_detection_only_counts_as_enabled() -> None:
    settings, _ = registry.load_settings({"smtp": {"enabled": "detection-only"}})
    assert "smtp" in settings.enabled and "smtp" in settings.detection_only


def test_probe_is_port_independent_and_port_hint_orders() -> None:
    on_80 = [s.name for s in candidates(6, (40000, 80), None)]
    on_25 = [s.name for s in candidates(6, (40000, 25), None)]
    assert on_80[0] == "http"
    assert on_25[0] == "smtp"
    probe = AppProtoProbe(ports=(40000, 2525))
    assert probe.probe(b"EHLO mail.example\r\n", True) == "smtp"


@pytest.mark.parametrize(("data", "to_server", "want"), [
    (b"\x00\x00\x00\x2f\xffSMBr\x00\x00\x00", True, "smb"),
    (b"\x00\x00\x00\x2f\xfeSMB@\x00\x00\x00", False, "smb"),
    (b"220 mx.example ESMTP Postfix\r\n", False, "smtp"),
    (b"helo client\r\n", True, "smtp"),
])
def test_detection_only_protocols(data: bytes, to_server: bool, want: str) -> None:
    probe = AppProtoProbe(ports=(40000, 9999))
    got = None
    for i in range(1, len(data) + 1):  # byte by byte: undecided until enough is seen
        probe = AppProtoProbe(ports=(40000, 9999))
        got = probe.probe(data[:i], to_server)
    assert got == want


def test_both_directions_failing_fails_the_flow() -> None:
    probe = AppProtoProbe(ports=(1, 2))
    assert probe.probe(b"\x01\x02\x03garbage that no protocol claims\r\n" * 40, True) is None
    assert probe.probe(b"\x07\x08\x09more garbage from the server\r\n" * 40, False) is False
