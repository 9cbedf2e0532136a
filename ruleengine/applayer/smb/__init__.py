"""SMB, detection only: NetBIOS session messages carrying SMB1/2/3 are recognised
(``alert smb`` rules and ``app-layer-protocol:smb`` work, payload and stream keywords
inspect the flow); SMB commands, named pipes and files are not parsed.

Suricata's probe (``rust/src/smb/smb.rs``): an NBSS session message (type 0) whose payload
starts with ``\\xffSMB`` (SMB1), ``\\xfeSMB`` (SMB2/3) or ``\\xfdSMB`` (SMB3 transform).
"""

from __future__ import annotations

from ruleengine.applayer.base import AppLayerSpec, ProbeResult

_MAGICS = (b"\xffSMB", b"\xfeSMB", b"\xfdSMB")


def _probe(data: bytes, to_server: bool) -> ProbeResult:
    head = bytes(data[:8])
    if len(head) < 8:
        if head[:1] not in (b"", b"\x00"):
            return "nomatch"
        magic = head[4:]
        return "undecided" if any(m.startswith(magic) for m in _MAGICS) else "nomatch"
    return "match" if head[0] == 0 and head[4:8] in _MAGICS else "nomatch"


PROTOCOL = AppLayerSpec(
    name="smb",
    ipprotos=frozenset({6}),
    default_ports={6: (445, 139)},
    probe=_probe,
    probe_depth=8,
)
