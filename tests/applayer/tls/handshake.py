"""Hand-built TLS handshake bytes for the tests."""

from __future__ import annotations

import datetime as dt
import functools

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def u8(v: int) -> bytes:
    return bytes([v])


def u16(v: int) -> bytes:
    return v.to_bytes(2, "big")


def u24(v: int) -> bytes:
    return v.to_bytes(3, "big")


def record(ctype: int, body: bytes, version: int = 0x0303) -> bytes:
    return u8(ctype) + u16(version) + u16(len(body)) + body


def hs(mtype: int, body: bytes) -> bytes:
    return u8(mtype) + u24(len(body)) + body


def ext(etype: int, data: bytes) -> bytes:
    return u16(etype) + u16(len(data)) + data


def sni_ext(name: bytes) -> bytes:
    entry = u8(0) + u16(len(name)) + name
    return ext(0, u16(len(entry)) + entry)


def alpn_ext(*protos: bytes) -> bytes:
    lst = b"".join(u8(len(p)) + p for p in protos)
    return ext(16, u16(len(lst)) + lst)


def groups_ext(*groups: int) -> bytes:
    return ext(10, u16(2 * len(groups)) + b"".join(u16(g) for g in groups))


def pf_ext(*formats: int) -> bytes:
    return ext(11, u8(len(formats)) + bytes(formats))


def sigalgs_ext(*algs: int) -> bytes:
    return ext(13, u16(2 * len(algs)) + b"".join(u16(a) for a in algs))


def versions_ext(*versions: int) -> bytes:
    return ext(43, u8(2 * len(versions)) + b"".join(u16(v) for v in versions))


def client_hello(version: int = 0x0303, ciphers: tuple[int, ...] = (0xC02F, 0x009C),
                 extensions: bytes = b"", session_id: bytes = b"",
                 random: bytes = b"\x11" * 32, compression: bytes = b"\x00") -> bytes:
    body = (u16(version) + random + u8(len(session_id)) + session_id
            + u16(2 * len(ciphers)) + b"".join(u16(c) for c in ciphers)
            + u8(len(compression)) + compression)
    if extensions:
        body += u16(len(extensions)) + extensions
    return hs(1, body)


def server_hello(version: int = 0x0303, cipher: int = 0xC02F, extensions: bytes = b"",
                 session_id: bytes = b"", random: bytes = b"\x22" * 32) -> bytes:
    body = u16(version) + random + u8(len(session_id)) + session_id + u16(cipher) + b"\x00"
    if extensions:
        body += u16(len(extensions)) + extensions
    return hs(2, body)


def certificate_msg(*ders: bytes) -> bytes:
    lst = b"".join(u24(len(d)) + d for d in ders)
    return hs(11, u24(len(lst)) + lst)


SERVER_HELLO_DONE = hs(14, b"")
CCS = record(20, b"\x01")


@functools.cache
def make_cert(cn: str = "example.com", serial: int = 0xE1B2C3, issuer_cn: str | None = None,
              sans: tuple[str, ...] = ("example.com", "www.example.com")) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
        x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "California"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example Org"),
        x509.NameAttribute(NameOID.COMMON_NAME, cn),
    ])
    issuer = subject if issuer_cn is None else x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Test CA"),
        x509.NameAttribute(NameOID.COMMON_NAME, issuer_cn),
    ])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(dt.datetime(2023, 1, 1, tzinfo=dt.UTC))
        .not_valid_after(dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC))
    )
    if sans:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(s) for s in sans]), critical=False)
    cert = builder.sign(key, hashes.SHA256())
    return cert.public_bytes(serialization.Encoding.DER)


def tls12_client_flight(sni: bytes = b"example.com") -> bytes:
    exts = (sni_ext(sni) + groups_ext(0x001D, 0x0017) + pf_ext(0) + sigalgs_ext(0x0403, 0x0804)
            + alpn_ext(b"h2", b"http/1.1") + ext(23, b"") + ext(0xFF01, b"\x00"))
    return record(22, client_hello(extensions=exts), version=0x0301)


def tls12_server_flight(*ders: bytes) -> bytes:
    exts = ext(0xFF01, b"\x00") + alpn_ext(b"h2")
    msgs = server_hello(extensions=exts) + certificate_msg(*ders) + SERVER_HELLO_DONE
    return record(22, msgs)
