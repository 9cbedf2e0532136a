"""X.509 certificate fields in Suricata's form, decoded with the ``cryptography`` package.

Suricata (``rust/src/x509/mod.rs``) uses x509-parser: the subject / issuer string is
``X509Name``'s ``Display``: RDNs in certificate order joined by ``", "``, attributes of one RDN
joined by ``" + "``, each ``ABBREV=value`` where ABBREV is x509-parser's abbreviation (CN, C, L,
ST, O, OU, DC, Email), else oid-registry's short name, else ``OID(<dotted>)``; non-string
values are upper-case hex. The serial is the DER integer's content bytes as upper-case
colon-separated hex (``00:E1:...`` keeps a leading zero byte), the fingerprint the SHA-1 of the
DER as lower-case colon hex, dates are epoch seconds (EVE: ``%Y-%m-%dT%H:%M:%S``, UTC).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

# x509-parser's ABBREV_MAP, then oid-registry's short names (x509, pkcs9 features)
_ABBREV: dict[str, str] = {
    "2.5.4.3": "CN",
    "2.5.4.6": "C",
    "2.5.4.7": "L",
    "2.5.4.8": "ST",
    "2.5.4.10": "O",
    "2.5.4.11": "OU",
    "0.9.2342.19200300.100.1.25": "DC",
    "1.2.840.113549.1.9.1": "Email",
    # oid-registry short names
    "2.5.4.0": "objectClass",
    "2.5.4.1": "aliasedEntryName",
    "2.5.4.2": "knowledgeInformation",
    "2.5.4.4": "surname",
    "2.5.4.5": "serialNumber",
    "2.5.4.9": "streetAddress",
    "2.5.4.12": "title",
    "2.5.4.13": "description",
    "2.5.4.14": "searchGuide",
    "2.5.4.15": "businessCategory",
    "2.5.4.16": "postalAddress",
    "2.5.4.17": "postalCode",
    "2.5.4.41": "name",
    "2.5.4.42": "givenName",
    "2.5.4.43": "initials",
    "2.5.4.44": "generationQualifier",
    "2.5.4.45": "uniqueIdentifier",
    "2.5.4.46": "dnQualifier",
    "1.2.840.113549.1.9.2": "unstructuredName",
    "1.3.6.1.4.1.311.60.2.1.1": "msJurisdictionLocality",
    "1.3.6.1.4.1.311.60.2.1.2": "msJurisdictionStateOrProvince",
    "1.3.6.1.4.1.311.60.2.1.3": "msJurisdictionCountry",
}


@dataclass
class CertInfo:
    """Fields of the first certificate of a chain (Suricata's ``cert0_*``)."""

    subject: str
    issuer: str
    serial: str
    fingerprint: str
    not_before: int
    not_after: int
    sans: list[str] = field(default_factory=list)


def _hex_upper(data: bytes) -> str:
    return data.hex().upper()


def _attr_value(attr: object) -> str:
    from cryptography.x509.name import _ASN1Type

    value = getattr(attr, "value", b"")
    asn1_type = getattr(attr, "_type", None)
    if isinstance(value, bytes):
        return _hex_upper(value)
    if asn1_type == _ASN1Type.UniversalString:
        # not a string type for x509-parser: hex of the raw content
        return _hex_upper(value.encode("utf-32-be"))
    return str(value)


def name_string(name: object) -> str:
    """x509-parser's ``X509Name`` Display of a ``cryptography`` Name."""
    rdns = []
    for rdn in getattr(name, "rdns", []):
        parts = []
        for attr in rdn:
            dotted = attr.oid.dotted_string
            abbrev = _ABBREV.get(dotted, f"OID({dotted})")
            parts.append(f"{abbrev}={_attr_value(attr)}")
        rdns.append(" + ".join(parts))
    return ", ".join(rdns)


def serial_string(serial: int) -> str:
    """DER INTEGER content bytes (minimal two's complement) as ``AA:BB:..``."""
    length = max(1, (serial.bit_length() + 8) // 8) if serial >= 0 else max(
        1, ((~serial).bit_length() + 8) // 8)
    raw = serial.to_bytes(length, "big", signed=True)
    # minimal encoding: drop redundant leading 0x00 / 0xff bytes
    while len(raw) > 1 and (
        (raw[0] == 0 and raw[1] < 0x80) or (raw[0] == 0xFF and raw[1] >= 0x80)
    ):
        raw = raw[1:]
    return ":".join(f"{b:02X}" for b in raw)


def fingerprint(der: bytes) -> str:
    return ":".join(f"{b:02x}" for b in hashlib.sha1(der).digest())


def _der_error(der: bytes) -> str:
    """Name the decode failure the way x509-parser's error mapping would, roughly: not a DER
    SEQUENCE -> invalid_der; the outer length runs past the data -> invalid_length."""
    if len(der) < 2 or der[0] != 0x30:
        return "certificate_invalid_der"
    first = der[1]
    if first < 0x80:
        total = 2 + first
    else:
        n = first & 0x7F
        if n == 0 or n > 4 or len(der) < 2 + n:
            return "certificate_invalid_der"
        total = 2 + n + int.from_bytes(der[2 : 2 + n], "big")
    if total > len(der):
        return "certificate_invalid_length"
    return "invalid_certificate"


def decode_certificate(der: bytes) -> CertInfo | str:
    """Decode one DER certificate; on failure return the app-layer event name."""
    try:
        from cryptography import x509
    except ImportError:  # pragma: no cover - dependency missing
        return "invalid_certificate"
    try:
        cert = x509.load_der_x509_certificate(der)
    except Exception:
        return _der_error(der)
    try:
        subject = name_string(cert.subject)
    except Exception:
        return "certificate_invalid_subject"
    try:
        issuer = name_string(cert.issuer)
    except Exception:
        return "certificate_invalid_issuer"
    try:
        serial = serial_string(cert.serial_number)
    except Exception:
        return "certificate_invalid_serial"
    try:
        not_before = int(cert.not_valid_before_utc.timestamp())
        not_after = int(cert.not_valid_after_utc.timestamp())
    except Exception:
        return "certificate_invalid_validity"
    sans: list[str] = []
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        sans = [str(v) for v in ext.value.get_values_for_type(x509.DNSName)]
    except x509.ExtensionNotFound:
        pass
    except Exception:
        return "certificate_invalid_extensions"
    return CertInfo(subject, issuer, serial, fingerprint(der), not_before, not_after, sans)
