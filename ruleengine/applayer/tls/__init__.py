"""SSL/TLS: probing, a sans-IO parser, certificate fields, JA3/JA3S/JA4, detection buffers and
keywords, and the EVE ``tls`` object, after Suricata's ``src/app-layer-ssl.c``.

Use::

    settings, warnings = parse_config(app_layer_protocols_tls_subtree)
    parser = TlsParser(settings)
    parser.feed(True, client_bytes, ts)
    parser.feed(False, server_bytes, ts)
    parser.close()
    tx = parser.transactions[0]        # one transaction per flow (tx_id 0)
    parser.encrypted                   # both sides past the handshake

EVE: ``log_when="complete"``: the ``tls`` record is written once both sides finished their
handshake (or the flow ended), and only when Suricata would (see :mod:`.logger`).
"""

from __future__ import annotations

from ruleengine.applayer.base import ProbeResult, package_spec, settings_parser
from ruleengine.applayer.tls import buffers, config, consts, keywords
from ruleengine.applayer.tls.config import TlsSettings, parse_config
from ruleengine.applayer.tls.logger import alert_tls, eve_tls
from ruleengine.applayer.tls.parser import TlsParser
from ruleengine.applayer.tls.tx import TlsTransaction


def probe(data: bytes, to_server: bool) -> ProbeResult:
    """Suricata's TLS detection: a record header (content type 0x14-0x17, version 3.0-3.4),
    or an SSLv2 ClientHello (2-byte header with the top bit set, message type 1)."""
    if len(data) < 3:
        if not data:
            return "undecided"
        if data[0] in (0x14, 0x15, 0x16, 0x17) and (len(data) < 2 or data[1] == 0x03):
            return "undecided"
        if data[0] & 0x80:
            return "undecided"
        return "nomatch"
    if 0x14 <= data[0] <= 0x17 and data[1] == 0x03 and data[2] <= 0x04:
        return "match"
    if (data[0] & 0x80) and data[2] == 0x01:
        return "match"
    return "nomatch"


PROTOCOL = package_spec(
    "tls", config, buffers, keywords, consts,
    aliases=("ssl",), anomaly_upper=True, encrypts=True,
    default_ports={6: (443,)}, probe=probe, probe_depth=8,
    make_parser=settings_parser(TlsParser, TlsSettings),
    eve_logger=eve_tls, alert_logger=alert_tls,
)

__all__ = ["PROTOCOL", "TlsParser", "TlsSettings", "TlsTransaction", "parse_config", "probe"]
