from __future__ import annotations

import json
import pathlib

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ruleengine.applayer.tls import PROTOCOL, TlsParser, parse_config
from ruleengine.applayer.tls.consts import EVENTS
from ruleengine.applayer.tls.logger import alert_tls, eve_tls

from .handshake import (
    CCS,
    certificate_msg,
    make_cert,
    record,
    server_hello,
    tls12_client_flight,
    tls12_server_flight,
)

SCHEMA_PATH = pathlib.Path("/work/shared/corpus/eve-schema/schema.json")
ON, _ = parse_config({"ja3-fingerprints": "yes", "ja4-fingerprints": "yes"})


def wrap(event_type: str, obj: dict) -> dict:
    ev = {"timestamp": "2024-01-01T00:00:00.000000+0000", "flow_id": 1, "event_type": event_type,
          "src_ip": "10.0.0.1", "src_port": 40000, "dest_ip": "10.0.0.2", "dest_port": 443,
          "proto": "TCP", "tls": obj}
    if event_type == "alert":
        ev["alert"] = {"action": "allowed", "gid": 1, "signature_id": 1, "rev": 1,
                       "signature": "x", "category": "", "severity": 3}
    return ev


@pytest.fixture(scope="module")
def schema():
    if not SCHEMA_PATH.exists():
        pytest.skip("EVE schema not available")
    return json.loads(SCHEMA_PATH.read_text())


def handshake_tx():
    p = TlsParser(ON)
    p.feed(True, tls12_client_flight())
    p.feed(False, tls12_server_flight(make_cert(issuer_cn="CA"), make_cert("ca")))
    p.feed(True, CCS)
    p.feed(False, CCS)
    return p.transactions[0]


def test_eve_shapes_validate(schema):
    tx = handshake_tx()
    basic = eve_tls(tx, {})
    assert basic == {"subject": "C=US, ST=California, O=Example Org, CN=example.com",
                     "issuerdn": "C=US, O=Test CA, CN=CA"}
    ext = eve_tls(tx, {"extended": "yes"})
    assert ext is not None
    assert ext["version"] == "TLS 1.2" and ext["sni"] == "example.com"
    assert ext["serial"] == "00:E1:B2:C3" and ext["notafter"] == "2024-01-02T03:04:05"
    assert ext["ja3"]["hash"] == tx.client.ja3_hash and ext["ja3s"]["string"]
    assert ext["ja4"] == tx.client.ja4 and ext["client_alpns"] == ["h2", "http/1.1"]
    custom = eve_tls(tx, {"custom": ["subject", "chain", "certificate", "subjectaltname",
                                     "not_before", "ja3"]})
    assert custom is not None and len(custom["chain"]) == 2
    assert custom["subjectaltname"] == ["example.com", "www.example.com"]
    assert set(custom) == {"subject", "chain", "certificate", "subjectaltname", "notbefore",
                           "ja3"}
    for obj in (basic, ext, custom):
        jsonschema.validate(wrap("tls", obj), schema)
    alert = alert_tls(tx, {})
    assert alert == ext
    jsonschema.validate(wrap("alert", alert), schema)
    assert PROTOCOL.eve_logger is eve_tls and PROTOCOL.log_when == "complete"


def test_nothing_logged_without_cert():
    p = TlsParser(ON)
    p.feed(True, tls12_client_flight())
    tx = p.transactions[0]
    assert eve_tls(tx, {"extended": True}) is None
    assert alert_tls(tx, {}) is not None
    assert alert_tls(tx, {})["version"] == "UNDETERMINED"


def test_ja3_not_logged_in_auto_mode():
    p = TlsParser()
    p.feed(True, tls12_client_flight())
    p.feed(False, tls12_server_flight(make_cert()))
    obj = eve_tls(p.transactions[0], {"extended": True})
    assert obj is not None and "ja3" not in obj and "ja4" not in obj


SEED = (tls12_client_flight(), tls12_server_flight(make_cert(), make_cert("ca")))


@st.composite
def mutated(draw):
    data = bytearray(draw(st.sampled_from(SEED)))
    for _ in range(draw(st.integers(0, 8))):
        i = draw(st.integers(0, len(data) - 1))
        data[i] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return bytes(data)


chunks = st.one_of(mutated(), st.binary(max_size=300),
                   st.builds(lambda b: record(22, server_hello() + certificate_msg(b)),
                             st.binary(max_size=200)))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.booleans(), chunks, st.integers(1, 64)), max_size=6))
def test_fuzz_never_raises(feeds):
    p = TlsParser(ON)
    for to_server, data, step in feeds:
        for i in range(0, len(data), step):
            p.feed(to_server, data[i : i + step])
    p.close()
    assert p.internal_errors == 0
    for tx in p.transactions:
        assert set(tx.events) <= EVENTS
        assert len(tx.events) <= ON.max_events
        assert tx.request_complete and tx.response_complete
        eve_tls(tx, {"extended": True})
        alert_tls(tx, {})
        json.dumps(alert_tls(tx, {}))
    for d in p._dirs.values():
        assert len(d.hs_buf) <= ON.max_handshake_message + 4 + 65540
