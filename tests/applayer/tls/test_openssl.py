from __future__ import annotations

import datetime as dt
import shutil

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ruleengine.applayer.tls import TlsParser, parse_config
from ruleengine.applayer.tls.logger import eve_tls

from .openssl_capture import capture

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl")
ON, _ = parse_config({"ja3-fingerprints": "yes", "ja4-fingerprints": "yes"})


@pytest.fixture(scope="module")
def keypair(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "DE"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Loopback Test"),
                      x509.NameAttribute(NameOID.COMMON_NAME, "loop.test")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(0x7A11)
            .not_valid_before(dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
            .not_valid_after(dt.datetime(2040, 1, 1, tzinfo=dt.UTC))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("loop.test")]), False)
            .sign(key, hashes.SHA256()))
    cpath = tmp / "cert.pem"
    kpath = tmp / "key.pem"
    cpath.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    kpath.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                        serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()))
    return tmp, cpath, kpath, cert.public_bytes(serialization.Encoding.DER)


def run(c2s: bytes, s2c: bytes, step: int) -> TlsParser:
    """Feed alternately in ``step``-byte chunks, client first (good enough for a handshake:
    each side's bytes stay in order)."""
    p = TlsParser(ON)
    i = j = 0
    while i < len(c2s) or j < len(s2c):
        if i < len(c2s):
            p.feed(True, c2s[i : i + step])
            i += step
        if j < len(s2c):
            p.feed(False, s2c[j : j + step])
            j += step
    return p


@pytest.mark.parametrize("step", [1, 7, 100000])
def test_openssl_tls12(keypair, step):
    tmp, cpath, kpath, der = keypair
    got = capture(tmp, cpath, kpath, ["-tls1_2", "-servername", "loop.test", "-alpn",
                                      "h2,http/1.1"], ["-alpn", "h2"])
    assert got is not None
    c2s, s2c = got
    assert c2s and s2c
    p = run(c2s, s2c, step)
    tx = p.transactions[0]
    assert tx.events == []
    assert tx.client.sni == b"loop.test"
    assert tx.server.certs[0] == der
    assert tx.server.cert0 is not None
    assert tx.server.cert0.subject == "C=DE, O=Loopback Test, CN=loop.test"
    assert tx.server.cert0.serial == "7A:11"
    assert tx.server.alpns == [b"h2"]
    assert tx.server.version == 0x0303
    assert p.encrypted
    obj = eve_tls(tx, {"extended": True})
    assert obj is not None and obj["version"] == "TLS 1.2"
    # Suricata's field order (output-json-tls.c)
    assert list(obj)[:9] == ["subject", "issuerdn", "serial", "fingerprint", "sni", "version",
                             "notbefore", "notafter", "ja3"]
    assert obj["ja3"]["string"].startswith("771,")
    assert obj["ja4"].startswith("t12d")


def test_openssl_tls13(keypair):
    tmp, cpath, kpath, _ = keypair
    got = capture(tmp, cpath, kpath, ["-tls1_3", "-servername", "loop.test"])
    assert got is not None
    p = run(*got, 50)
    tx = p.transactions[0]
    assert tx.events == []
    assert tx.client.sni == b"loop.test"
    assert tx.server.version == 0x0304 and tx.client.version == 0x0304
    assert tx.server.cert0 is None  # encrypted in TLS 1.3
    assert p.encrypted
    obj = eve_tls(tx, {"extended": True})
    assert obj is not None and obj["version"] == "TLS 1.3"
    assert obj["ja4"].startswith("t13d")
