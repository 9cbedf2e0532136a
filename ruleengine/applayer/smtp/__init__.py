"""SMTP (Suricata's ``app-layer-smtp.c``): commands and replies into transactions, the
message MIME-decoded (attachments are the ``file.data`` of the transaction), ``smtp.*`` and
``email.*`` buffers, EVE ``smtp`` events with their ``email`` object.

Modules: ``parser`` (:class:`SmtpParser`), ``mime`` (stdlib ``email`` decoding), ``config``
(``app-layer.protocols.smtp``), ``detect`` (buffers), ``logger`` (EVE).

Suricata's patterns (``app-layer-smtp.c``): ``EHLO``/``HELO`` from the client, case
insensitive. The server speaks first, so a greeting ``220`` that names (E)SMTP claims the
flow too (an FTP greeting is ``220`` as well: the name tells them apart).
"""

from __future__ import annotations

from ruleengine.applayer.base import ProbeResult, package_spec, settings_parser
from ruleengine.applayer.smtp import config, detect, logger, parser
from ruleengine.applayer.smtp.config import SmtpConfig, parse_config
from ruleengine.applayer.smtp.parser import EVENTS, SmtpParser, SmtpTransaction

_COMMANDS = (b"EHLO", b"HELO")


def _probe(data: bytes, to_server: bool) -> ProbeResult:
    head = bytes(data[:512])
    if to_server:
        word = head[:5].upper()
        if len(word) < 5:
            return "undecided" if any(c.startswith(word) for c in _COMMANDS) else "nomatch"
        return "match" if word[:4] in _COMMANDS and word[4:5] in (b" ", b"\t") else "nomatch"
    if len(head) < 4:
        return "undecided" if b"220 "[: len(head)] == head or b"220-"[: len(head)] == head \
            else "nomatch"
    if head[:4] not in (b"220 ", b"220-"):
        return "nomatch"
    line = head.split(b"\n", 1)[0].upper()
    if b"SMTP" in line:
        return "match"
    return "undecided" if b"\n" not in head and len(head) < 512 else "nomatch"


PROTOCOL = package_spec(
    "smtp", config, detect, logger, parser,
    anomaly_upper=True,
    default_ports={6: (25, 465, 587)}, probe=_probe, probe_depth=512,
    make_parser=settings_parser(SmtpParser, SmtpConfig),
)

__all__ = ["EVENTS", "PROTOCOL", "SmtpConfig", "SmtpParser", "SmtpTransaction", "parse_config"]
