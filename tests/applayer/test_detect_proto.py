from __future__ import annotations

import pytest

from ruleengine.applayer.detect_proto import detect_app_proto, detect_app_proto_midstream


@pytest.mark.parametrize(
    ("data", "to_server", "expected"),
    [
        (b"GET / HTTP/1.1\r\n", True, "http"),
        (b"post /x HTTP/1.0\r\n", True, "http"),
        (b"PROPFIND /dav HTTP/1.1\r\n", True, "http"),
        (b"GET\t/ HTTP/1.1\r\n", True, "http"),
        (b"GE", True, None),
        (b"", True, None),
        (b"GETX / HTTP/1.1", True, False),
        (b"\x16\x03\x01\x02\x00", True, False),
        (b"SSH-2.0-OpenSSH", True, False),
        (b"HTTP/1.1 200 OK\r\n", False, "http"),
        (b"HTT", False, None),
        (b"220 smtp ready", False, False),
        # direction matters: a response is not a request
        (b"HTTP/1.1 200 OK\r\n", True, False),
        (b"GET / HTTP/1.1\r\n", False, False),
    ],
)
def test_detect_app_proto(data: bytes, to_server: bool, expected: object) -> None:
    assert detect_app_proto(data, to_server) == expected


def test_detection_ignores_ports_entirely() -> None:
    # the signature has no port argument at all: HTTP is recognised from bytes only
    assert detect_app_proto(b"OPTIONS * HTTP/1.1\r\n", True) == "http"


def test_midstream_detection_reports_a_reversed_flow() -> None:
    assert detect_app_proto_midstream(b"HTTP/1.0 200 OK\r\n", True) == ("http", True)
    assert detect_app_proto_midstream(b"GET / HTTP/1.1\r\n", True) == ("http", False)
    assert detect_app_proto_midstream(b"HT", True) == (None, False)
    assert detect_app_proto_midstream(b"\x16\x03\x01", False) == (False, False)


def test_probe_waits_for_the_other_direction_when_one_fails() -> None:
    from ruleengine.applayer.probing import AppProtoProbe

    probe = AppProtoProbe()
    assert probe.probe(b"\x85\x00\x00garbage", True) is None  # client garbage: not over yet
    assert probe.probe(b"HTTP/1.1 400 Bad Request\r\n", False) == "http"
    assert probe.result == "http" and not probe.reversed


def test_probe_fails_when_both_directions_fail_and_accumulates_small_pieces() -> None:
    from ruleengine.applayer.probing import AppProtoProbe

    probe = AppProtoProbe()
    garbage = b"\x7fNOT-A-PROTOCOL\r\n" * 80  # longer than any probe needs
    assert probe.probe(garbage, True) is None
    assert probe.probe(garbage, False) is False
    split = AppProtoProbe()
    assert split.probe(b"GE", True) is None
    assert split.probe(b"T / HTTP/1.1\r\n", True) == "http"


def test_probe_midstream_reversal() -> None:
    from ruleengine.applayer.probing import AppProtoProbe

    probe = AppProtoProbe(midstream=True)
    assert probe.probe(b"HTTP/1.0 200 OK\r\n", True) == "http"
    assert probe.reversed
