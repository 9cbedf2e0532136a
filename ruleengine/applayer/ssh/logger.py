"""The EVE ``ssh`` object (``rust/src/ssh/logger.rs``)::

    "ssh": {"client": {"proto_version": "2.0", "software_version": "OpenSSH_9.2p1",
                       "hassh": {"hash": "...", "string": "..."}},
            "server": {...}}

A side appears once its protocol version is known; ``software_version`` when not empty;
``hassh`` only with ``app-layer.protocols.ssh.hassh: yes`` (or ``auto`` and a hassh rule).
One ``ssh`` event per flow, written when Suricata's log condition (``SCSshTxGetLogCondition``)
holds: both banners parsed, or with hassh on both sides past NEWKEYS (the fingerprints are
known by then). Suricata requires the banner state to be exactly "banner done"; here "at
least", so a flow whose sides reach NEWKEYS between two looks is still logged. The alert
object is the same, at any point.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ruleengine.applayer.ssh.parser import BANNER_DONE, FINISHED, SshSide, SshTransaction


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def _side(side: SshSide, with_hassh: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"proto_version": _text(side.protover)}
    if side.swver:
        out["software_version"] = _text(side.swver)
    if with_hassh and (side.hassh or side.hassh_string):
        hassh: dict[str, Any] = {}
        if side.hassh:
            hassh["hash"] = _text(side.hassh)
        if side.hassh_string:
            hassh["string"] = _text(side.hassh_string)
        out["hassh"] = hassh
    return out


def ssh_object(tx: SshTransaction) -> dict[str, Any] | None:
    """``log_ssh``: None when neither side has a protocol version."""
    if not tx.client.protover and not tx.server.protover:
        return None
    out: dict[str, Any] = {}
    if tx.client.protover:
        out["client"] = _side(tx.client, tx.log_hassh)
    if tx.server.protover:
        out["server"] = _side(tx.server, tx.log_hassh)
    return out


def log_condition(tx: SshTransaction) -> bool:
    need = FINISHED if tx.log_hassh else BANNER_DONE
    return tx.client.state >= need and tx.server.state >= need


def eve_ssh(tx: Any, options: Mapping[str, Any]) -> dict[str, Any] | None:
    """The transaction's one ``ssh`` event, when the log condition holds (asked again on
    every change, hence the ``logged`` mark)."""
    if not isinstance(tx, SshTransaction) or tx.logged or not log_condition(tx):
        return None
    obj = ssh_object(tx)
    if obj is not None:
        tx.logged = True
    return obj


def alert_ssh(tx: Any, options: Mapping[str, Any]) -> dict[str, Any] | None:
    if not isinstance(tx, SshTransaction):
        return None
    return ssh_object(tx)
