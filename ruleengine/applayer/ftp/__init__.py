"""FTP command channel (Suricata's ``src/app-layer-ftp.c``): probe, a sans-IO parser with one
transaction per command and its replies, PORT/EPRT/PASV/EPSV data ports, ``ftpbounce`` and
Suricata 8's ``ftp.*`` buffers and keywords, and the EVE ``ftp`` object.

Use::

    settings, warnings = parse_config(app_layer_protocols_ftp_subtree)
    parser = FtpParser(settings)
    parser.feed(False, b"220 (vsFTPd 3.0.5)\\r\\n")
    parser.feed(True, b"USER anonymous\\r\\n")
    parser.feed(False, b"331 Please specify the password.\\r\\n")
    [tx.command for tx in parser.transactions]     # [None, "USER"]

Detection: Suricata's patterns, case insensitive at the start of a direction: the server's
``220 (`` (vsftpd-style greeting) and the client's ``FEAT``, ``USER ``, ``PASS ``, ``PORT ``.
A greeting without the parenthesis is not enough (as in Suricata): the client's first command
decides. A negotiated data port is announced in the parser's ``expectations`` (the pipeline
makes the next flow between the two hosts to that port ``ftp-data``, see the ``ftpdata``
package); the data channel's content is not parsed here.
"""

from __future__ import annotations

from ruleengine.applayer.base import ProbeResult, package_spec, settings_parser
from ruleengine.applayer.ftp import config, detect, parser
from ruleengine.applayer.ftp.config import FtpSettings, parse_config
from ruleengine.applayer.ftp.logger import eve_ftp
from ruleengine.applayer.ftp.parser import EVENTS, FtpParser, FtpTransaction

_TO_SERVER = (b"FEAT", b"USER ", b"PASS ", b"PORT ")
_TO_CLIENT = (b"220 (",)


def probe(data: bytes, to_server: bool) -> ProbeResult:
    head = bytes(data[:5]).upper()
    undecided = False
    for pattern in _TO_SERVER if to_server else _TO_CLIENT:
        if head.startswith(pattern):
            return "match"
        if len(head) < len(pattern) and pattern.startswith(head):
            undecided = True
    return "undecided" if undecided else "nomatch"


PROTOCOL = package_spec(
    "ftp", config, detect, parser,
    default_ports={6: (21,)}, probe=probe, probe_depth=5,
    make_parser=settings_parser(FtpParser, FtpSettings),
    eve_logger=eve_ftp,
)

__all__ = ["EVENTS", "PROTOCOL", "FtpParser", "FtpSettings", "FtpTransaction", "parse_config",
           "probe"]
