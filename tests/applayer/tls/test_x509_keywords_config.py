from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID, ObjectIdentifier

from ruleengine.applayer.base import TxMatchContext
from ruleengine.applayer.tls import TlsParser, parse_config
from ruleengine.applayer.tls.buffers import BUFFERS
from ruleengine.applayer.tls.keywords import KEYWORDS
from ruleengine.applayer.tls.x509 import decode_certificate

from .handshake import (
    CCS,
    make_cert,
    tls12_client_flight,
    tls12_server_flight,
)

KW = {k.name: k for k in KEYWORDS}
BUF = {b.name: b for b in BUFFERS}
TS = TxMatchContext(to_server=True)
TC = TxMatchContext(to_server=False)


def cert_with(name: x509.Name, serial: int) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(serial)
            .not_valid_before(dt.datetime(2015, 6, 1, tzinfo=dt.UTC))
            .not_valid_after(dt.datetime(2016, 6, 1, tzinfo=dt.UTC))
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.DER)


def test_name_format_like_x509_parser():
    name = x509.Name([
        x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.COUNTRY_NAME, "US")]),
        x509.RelativeDistinguishedName([
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Google Trust Services LLC"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Unit")]),
        x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.LOCALITY_NAME, "Town")]),
        x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.EMAIL_ADDRESS, "a@b.c")]),
        x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.SERIAL_NUMBER, "42")]),
        x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.DOMAIN_COMPONENT, "com")]),
        x509.RelativeDistinguishedName([
            x509.NameAttribute(ObjectIdentifier("2.5.4.97"), "VATDE-1")]),
        x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.COMMON_NAME, "GTS CA 1C3")]),
    ])
    info = decode_certificate(cert_with(name, 0x00E1))
    assert not isinstance(info, str)
    # multi-valued RDNs are sorted by DER encoding (SET OF); either order is joined by " + "
    assert info.subject in (
        "C=US, O=Google Trust Services LLC + OU=Unit, L=Town, Email=a@b.c, serialNumber=42, "
        "DC=com, OID(2.5.4.97)=VATDE-1, CN=GTS CA 1C3",
        "C=US, OU=Unit + O=Google Trust Services LLC, L=Town, Email=a@b.c, serialNumber=42, "
        "DC=com, OID(2.5.4.97)=VATDE-1, CN=GTS CA 1C3",
    )
    assert info.issuer == info.subject
    assert info.serial == "00:E1"
    assert info.not_before == 1433116800
    assert info.sans == []


def test_serial_fingerprint_dates():
    der = make_cert(serial=0x0A1B2C3D4E)
    info = decode_certificate(der)
    assert not isinstance(info, str)
    assert info.serial == "0A:1B:2C:3D:4E"
    sha1 = hashlib.sha1(der).hexdigest()
    assert info.fingerprint == ":".join(sha1[i : i + 2] for i in range(0, 40, 2))
    assert info.not_after == int(dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC).timestamp())
    assert info.sans == ["example.com", "www.example.com"]


@pytest.fixture(scope="module")
def tx():
    settings, _ = parse_config({"ja3-fingerprints": "yes"})
    p = TlsParser(settings)
    p.feed(True, tls12_client_flight(), ts=1700000000.0)
    p.feed(False, tls12_server_flight(make_cert(issuer_cn="Test CA"), make_cert("ca")),
           ts=1700000000.0)
    p.feed(True, CCS)
    return p.transactions[0]


def test_buffers(tx):
    assert BUF["tls.sni"].getter(tx) == b"example.com"
    subject = b"C=US, ST=California, O=Example Org, CN=example.com"
    assert BUF["tls.cert_subject"].getter(tx) == subject
    assert BUF["tls.cert_issuer"].getter(tx) == b"C=US, O=Test CA, CN=Test CA"
    assert BUF["tls.cert_serial"].getter(tx) == b"00:E1:B2:C3"
    assert len(BUF["tls.cert_fingerprint"].getter(tx)) == 59
    assert len(BUF["tls.certs"].getter(tx)) == 2
    assert BUF["tls.subjectaltname"].getter(tx) == [b"example.com", b"www.example.com"]
    assert BUF["tls.alpn"].getter(tx) == [b"h2", b"http/1.1"]
    assert BUF["tls.alpn"].getter_toclient(tx) == [b"h2"]
    assert BUF["tls.random"].getter(tx) == b"\x11" * 32
    assert BUF["tls.random_time"].getter_toclient(tx) == b"\x22" * 4
    assert BUF["tls.random_bytes"].getter(tx) == b"\x11" * 28
    assert len(BUF["ja3.hash"].getter(tx)) == 32
    assert BUF["ja3s.string"].getter(tx) == b"771,49199,65281-16"
    assert BUF["ja4.hash"].getter(tx).startswith(b"t12d")
    assert "tls_sni" in BUF["tls.sni"].aliases
    assert "ja3_hash" in BUF["ja3.hash"].aliases


def m(name, value, tx, ctx=TC):
    kw = KW[name]
    return kw.match(kw.parse(value), tx, ctx)


def test_version_keywords(tx):
    assert m("tls.version", "1.2", tx) is True
    assert m("tls.version", "1.3", tx) is False
    assert m("tls.version", "0x0303", tx, TS) is True
    assert m("ssl_version", "tls1.2", tx) is True
    assert m("ssl_version", "sslv3, tls1.0", tx) is False
    assert m("ssl_version", "!tls1.2", tx) is False
    assert m("ssl_version", "!tls1.3", tx) is True
    for bad in ("2.5", "tls1.4", "", "tls1.2,,"):
        with pytest.raises(ValueError):
            KW["ssl_version"].parse(bad)
    for bad in ("1.9", "0x12", "sslv2", "1 2"):
        with pytest.raises(ValueError):
            KW["tls.version"].parse(bad)


def test_ssl_state(tx):
    parse = KW["ssl_state"].parse
    assert parse("server_hello | client_hello").flags == 3
    assert parse("client_hello,!server_hello").mask == 2
    for bad in ("| server_hello", "server_hello |", "foo", ""):
        with pytest.raises(ValueError):
            parse(bad)
    # the latest feed was the client's CCS: no state flags
    assert m("ssl_state", "client_hello", tx) is False
    assert m("ssl_state", "!client_hello", tx) is True
    p = TlsParser()
    p.feed(True, tls12_client_flight())
    t2 = p.transactions[0]
    assert m("ssl_state", "client_hello", t2, TS) is True
    assert m("ssl_state", "server_hello|client_keyx", t2, TS) is False


def test_cert_keywords(tx):
    assert m("tls.subject", "CN=example.com", tx) is True
    assert m("tls.subject", "!CN=example.com", tx) is False
    assert m("tls.subject", "!CN=other", tx) is True
    assert m("tls.issuerdn", "O=Test CA", tx) is True
    fp = tx.server.cert0.fingerprint
    assert m("tls.fingerprint", fp, tx) is True
    assert m("tls.fingerprint", "!" + fp, tx) is False
    with pytest.raises(ValueError):
        KW["tls.subject"].parse("CN=(bad)")
    # client side has no certificate
    assert m("tls.subject", "CN", tx, TS) in (False, None)


def test_validity(tx):
    assert m("tls_cert_notbefore", "2023-01-01", tx) is True
    assert m("tls_cert_notbefore", "<2022", tx) is False  # 2022 = epoch seconds, as Suricata
    assert m("tls_cert_notbefore", ">2015", tx) is True
    assert m("tls_cert_notafter", "2023-06-01<>2024-06-01", tx) is True
    assert m("tls_cert_notafter", "2024-01-02T03:04:05", tx) is True
    assert m("tls_cert_notafter", "<2023-12-31", tx) is False
    # flow time 1700000000 (2023-11-14) is before notafter (2024-01-02)
    assert m("tls_cert_expired", None, tx) is False
    assert m("tls_cert_valid", None, tx) is True
    later = TlsParser()
    later.feed(False, tls12_server_flight(make_cert()), ts=1750000000.0)
    assert m("tls_cert_expired", None, later.transactions[0]) is True
    assert m("tls_cert_valid", None, later.transactions[0]) is False
    for bad in ("2016<>2015", "<2015<>2016", "abc", "", "2015-13-45"):
        with pytest.raises(ValueError):
            KW["tls_cert_notafter"].parse(bad)
    with pytest.raises(ValueError):
        KW["tls_cert_expired"].parse("x")


def test_chain_len_and_store(tx):
    assert m("tls.cert_chain_len", "2", tx) is True
    assert m("tls.cert_chain_len", ">2", tx) is False
    assert m("tls.cert_chain_len", "1<>4", tx) is True
    assert m("tls.cert_chain_len", "1-2", tx) is False
    assert m("tls.cert_chain_len", "!1", tx) is True
    assert m("tls.cert_chain_len", ">=2", tx) is True
    for bad in ("4<>1", "x", "-1", "99999999999"):
        with pytest.raises(ValueError):
            KW["tls.cert_chain_len"].parse(bad)
    assert KW["tls.store"].parse(None) is None
    assert "tls_store" in KW["tls.store"].aliases
    with pytest.raises(ValueError):
        KW["tls.store"].parse("yes")


def test_config_precedence():
    assert parse_config({})[0].encryption_handling == "default"
    assert parse_config({"encryption-handling": "bypass"})[0].encryption_handling == "bypass"
    assert parse_config({"encryption-handling": "full",
                         "no-reassemble": True})[0].encryption_handling == "full"
    assert parse_config({"encryption-handling": "track-only"})[0].encryption_handling == "default"
    s, w = parse_config({"encryption-handling": "weird"})
    assert s.encryption_handling == "default" and w
    s, w = parse_config({"encrypt-handling": "full", "no-reassemble": "yes"})
    assert s.encryption_handling == "full" and w
    assert parse_config({"encryption-handling": "default", "encrypt-handling": "bypass"}
                        )[0].encryption_handling == "default"
    assert parse_config({"no-reassemble": "yes"})[0].encryption_handling == "bypass"
    assert parse_config({"no-reassemble": "no"})[0].encryption_handling == "default"
    s, w = parse_config({"enabled": "detection-only", "detection-ports": {"dp": 443},
                         "ja3-fingerprints": "auto", "ja4-fingerprints": True, "bogus": 1,
                         "max-handshake-message": "16kb"})
    assert s.enabled == "detection-only" and s.detection_ports == {"dp": "443"}
    assert s.ja3_fingerprints is None and s.ja4_fingerprints is True
    assert s.max_handshake_message == 16384
    assert any("bogus" in x for x in w)
    s, w = parse_config({"ja3-fingerprints": "maybe", "max-certs": "x"})
    assert s.ja3_fingerprints is None and len(w) == 2
    assert parse_config(None)[0].encryption_handling == "default"  # type: ignore[arg-type]
