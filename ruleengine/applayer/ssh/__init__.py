"""SSH (Suricata's ``rust/src/ssh``): probe, a sans-IO parser of the banners and the cleartext
binary packets up to NEWKEYS, hassh fingerprints, detection buffers and keywords, and the EVE
``ssh`` object.

Use::

    settings, warnings = parse_config(app_layer_protocols_ssh_subtree)
    parser = SshParser(settings)
    parser.feed(True, client_bytes, ts)
    parser.feed(False, server_bytes, ts)
    tx = parser.transactions[0]          # one transaction per flow (tx_id 0)
    tx.client.swver, tx.server.hassh     # banner fields, fingerprints
    parser.encrypted                     # both sides sent NEWKEYS

Detection: Suricata registers ``SSH-`` (case insensitive, offset 0) for both directions on any
port; port 22 is only a hint for probing order. ``encrypts=True``: once both sides sent
NEWKEYS, ``app-layer.protocols.ssh.encryption-handling`` decides (track-only / bypass / full).
"""

from __future__ import annotations

from ruleengine.applayer.base import ProbeResult, package_spec, settings_parser
from ruleengine.applayer.ssh import config, detect, parser
from ruleengine.applayer.ssh.config import SshSettings, parse_config
from ruleengine.applayer.ssh.logger import alert_ssh, eve_ssh
from ruleengine.applayer.ssh.parser import EVENTS, SshParser, SshTransaction

_MAGIC = b"SSH-"


def probe(data: bytes, to_server: bool) -> ProbeResult:
    """``SSH-`` at the start of either direction, case insensitive (Suricata's pattern)."""
    head = bytes(data[:4]).upper()
    if len(head) < 4:
        return "undecided" if _MAGIC.startswith(head) else "nomatch"
    return "match" if head == _MAGIC else "nomatch"


PROTOCOL = package_spec(
    "ssh", config, detect, parser,
    encrypts=True,
    default_ports={6: (22,)}, probe=probe, probe_depth=4,
    make_parser=settings_parser(SshParser, SshSettings),
    eve_logger=eve_ssh, alert_logger=alert_ssh,
    # the logger decides (Suricata's log condition) and writes once: asked on every change
    log_when="each_side",
)

__all__ = ["EVENTS", "PROTOCOL", "SshParser", "SshSettings", "SshTransaction", "parse_config",
           "probe"]
