"""TLS constants: versions (``app-layer-ssl.h``), version strings (``SSLVersionToString``),
GREASE values, handshake states and app-layer event names (``tls_decoder_event_table``)."""

from __future__ import annotations

SSL_VERSION_2 = 0x0002
SSL_VERSION_3 = 0x0300
TLS_VERSION_10 = 0x0301
TLS_VERSION_11 = 0x0302
TLS_VERSION_12 = 0x0303
TLS_VERSION_13 = 0x0304
TLS_VERSION_13_PRE_DRAFT16 = 0x7F01
TLS_VERSION_13_DRAFT20_FB = 0xFB14
TLS_VERSION_13_DRAFT21_FB = 0xFB15
TLS_VERSION_13_DRAFT22_FB = 0xFB16
TLS_VERSION_13_DRAFT23_FB = 0xFB17
TLS_VERSION_13_DRAFT26_FB = 0xFB1A

_FB_DRAFTS = {
    TLS_VERSION_13_DRAFT20_FB: "TLS 1.3 draft-20-fb",
    TLS_VERSION_13_DRAFT21_FB: "TLS 1.3 draft-21-fb",
    TLS_VERSION_13_DRAFT22_FB: "TLS 1.3 draft-22-fb",
    TLS_VERSION_13_DRAFT23_FB: "TLS 1.3 draft-23-fb",
    TLS_VERSION_13_DRAFT26_FB: "TLS 1.3 draft-26-fb",
}

_NAMES = {
    0: "UNDETERMINED",
    SSL_VERSION_2: "SSLv2",
    SSL_VERSION_3: "SSLv3",
    TLS_VERSION_10: "TLSv1",
    TLS_VERSION_11: "TLS 1.1",
    TLS_VERSION_12: "TLS 1.2",
    TLS_VERSION_13: "TLS 1.3",
    TLS_VERSION_13_PRE_DRAFT16: "TLS 1.3 draft-<16",
}


def version_string(version: int) -> str:
    """Suricata's ``SSLVersionToString`` (EVE ``tls.version``)."""
    if version in _NAMES:
        return _NAMES[version]
    if version in _FB_DRAFTS:
        return _FB_DRAFTS[version]
    if 0x7F10 <= version <= 0x7F1C:
        return f"TLS 1.3 draft-{version & 0xFF}"
    return f"0x{version:04x}"


def is_tls13(version: int) -> bool:
    """TLS 1.3 or one of its drafts (what ``tls.version:1.3`` / ``ssl_version:tls1.3`` match)."""
    return version == TLS_VERSION_13 or (version >> 8) == 0x7F or version in _FB_DRAFTS


def version_valid(version: int) -> bool:
    """``TLSVersionValid``: a record / supported_versions value Suricata accepts."""
    return SSL_VERSION_3 <= version <= TLS_VERSION_13 or is_tls13(version)


def is_grease(value: int) -> bool:
    """GREASE (RFC 8701): 0x?a?a with both bytes equal."""
    return (value & 0x0F0F) == 0x0A0A and (value >> 8) == (value & 0xFF)


# Record content types
CT_CHANGE_CIPHER_SPEC = 20
CT_ALERT = 21
CT_HANDSHAKE = 22
CT_APPLICATION_DATA = 23
CT_HEARTBEAT = 24

# Handshake types
HS_HELLO_REQUEST = 0
HS_CLIENT_HELLO = 1
HS_SERVER_HELLO = 2
HS_NEW_SESSION_TICKET = 4
HS_CERTIFICATE = 11
HS_SERVER_KEY_EXCHANGE = 12
HS_CERTIFICATE_REQUEST = 13
HS_SERVER_HELLO_DONE = 14
HS_CERTIFICATE_VERIFY = 15
HS_CLIENT_KEY_EXCHANGE = 16
HS_FINISHED = 20
HS_CERTIFICATE_URL = 21
HS_CERTIFICATE_STATUS = 22

SUPPORTED_HANDSHAKE_TYPES = frozenset(
    {HS_HELLO_REQUEST, HS_CLIENT_HELLO, HS_SERVER_HELLO, HS_NEW_SESSION_TICKET, HS_CERTIFICATE,
     HS_SERVER_KEY_EXCHANGE, HS_CERTIFICATE_REQUEST, HS_SERVER_HELLO_DONE,
     HS_CERTIFICATE_VERIFY, HS_CLIENT_KEY_EXCHANGE, HS_FINISHED, HS_CERTIFICATE_URL,
     HS_CERTIFICATE_STATUS}
)

# Extensions
EXT_SNI = 0
EXT_SUPPORTED_GROUPS = 10
EXT_EC_POINT_FORMATS = 11
EXT_SIGNATURE_ALGORITHMS = 13
EXT_ALPN = 16
EXT_SESSION_TICKET = 35
EXT_EARLY_DATA = 42
EXT_SUPPORTED_VERSIONS = 43

# SHA-256("HelloRetryRequest"): the ServerHello.random of a TLS 1.3 HelloRetryRequest
HRR_RANDOM = bytes.fromhex("cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c")

# ssl_state flags (``SSL_AL_FLAG_STATE_*``)
STATE_CLIENT_HELLO = 0x01
STATE_SERVER_HELLO = 0x02
STATE_CLIENT_KEYX = 0x04
STATE_SERVER_KEYX = 0x08
STATE_UNKNOWN = 0x10


class ClientProgress:
    """``request_progress`` values (Suricata 8's ``TlsStateClient``)."""

    IN_PROGRESS = 0
    HELLO_DONE = 1
    CERT_DONE = 2  # client certificate / key exchange sent
    HANDSHAKE_DONE = 3
    FINISHED = 4


class ServerProgress:
    """``response_progress`` values (Suricata 8's ``TlsStateServer``)."""

    IN_PROGRESS = 0
    HELLO = 1
    CERT_DONE = 2
    HELLO_DONE = 3  # key exchange / certificate request / hello done
    HANDSHAKE_DONE = 4
    FINISHED = 5


# ``tls_decoder_event_table``, lowercased as the ``app-layer-event:tls.<name>`` keyword writes them
EVENTS = frozenset(
    {
        "invalid_alert_message",
        "invalid_sslv2_header",
        "invalid_tls_header",
        "invalid_record_version",
        "invalid_record_type",
        "invalid_record_length",
        "invalid_handshake_message",
        "heartbeat_message",
        "invalid_heartbeat_message",
        "overflow_heartbeat_message",
        "dataleak_heartbeat_mismatch",
        "handshake_invalid_length",
        "multiple_sni_extensions",
        "invalid_sni_type",
        "invalid_sni_length",
        "too_many_records_in_packet",
        "invalid_certificate",
        "certificate_invalid_length",
        "certificate_invalid_version",
        "certificate_invalid_serial",
        "certificate_invalid_algorithmidentifier",
        "certificate_invalid_x509name",
        "certificate_invalid_date",
        "certificate_invalid_extensions",
        "certificate_invalid_der",
        "certificate_invalid_subject",
        "certificate_invalid_issuer",
        "certificate_invalid_validity",
        "error_message_encountered",
        "invalid_ssl_record",
    }
)
