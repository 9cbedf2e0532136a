"""Address and port variables (suricata.yaml ``vars:``) with Suricata's defaults."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

# suricata.yaml.in, vars: address-groups
DEFAULT_ADDRESS_GROUPS: dict[str, str] = {
    "HOME_NET": "[192.168.0.0/16,10.0.0.0/8,172.16.0.0/12]",
    "EXTERNAL_NET": "!$HOME_NET",
    "HTTP_SERVERS": "$HOME_NET",
    "SMTP_SERVERS": "$HOME_NET",
    "SQL_SERVERS": "$HOME_NET",
    "DNS_SERVERS": "$HOME_NET",
    "TELNET_SERVERS": "$HOME_NET",
    "AIM_SERVERS": "$EXTERNAL_NET",
    "DC_SERVERS": "$HOME_NET",
    "DNP3_SERVER": "$HOME_NET",
    "DNP3_CLIENT": "$HOME_NET",
    "MODBUS_CLIENT": "$HOME_NET",
    "MODBUS_SERVER": "$HOME_NET",
    "ENIP_CLIENT": "$HOME_NET",
    "ENIP_SERVER": "$HOME_NET",
}

# suricata.yaml.in, vars: port-groups
DEFAULT_PORT_GROUPS: dict[str, str] = {
    "HTTP_PORTS": "80",
    "SHELLCODE_PORTS": "!80",
    "ORACLE_PORTS": "1521",
    "SSH_PORTS": "22",
    "DNP3_PORTS": "20000",
    "MODBUS_PORTS": "502",
    "FILE_DATA_PORTS": "[$HTTP_PORTS,110,143]",
    "FTP_PORTS": "21",
    "GENEVE_PORTS": "6081",
    "VXLAN_PORTS": "4789",
    "TEREDO_PORTS": "3544",
    "SIP_PORTS": "[5060, 5061]",
}


class VarsError(Exception):
    """The suricata.yaml could not be read or has a malformed ``vars:`` section."""


def merged_vars(
    address_vars: Mapping[str, str] | None, port_vars: Mapping[str, str] | None
) -> tuple[dict[str, str], dict[str, str]]:
    """Suricata's defaults overridden by the given mappings (names without ``$``)."""
    addresses = dict(DEFAULT_ADDRESS_GROUPS)
    ports = dict(DEFAULT_PORT_GROUPS)
    for src, dst in ((address_vars, addresses), (port_vars, ports)):
        for name, value in (src or {}).items():
            dst[str(name).lstrip("$")] = str(value)
    return addresses, ports


def _group(section: Any, key: str) -> dict[str, str]:
    group = section.get(key) if isinstance(section, dict) else None
    if group is None:
        return {}
    if not isinstance(group, dict):
        raise VarsError(f"vars.{key} must be a mapping")
    return {str(k): str(v) for k, v in group.items()}


def vars_from_yaml(path: str | Path) -> tuple[dict[str, str], dict[str, str]]:
    """``(address_groups, port_groups)`` from a suricata.yaml ``vars:`` section."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
        # Suricata's yaml starts with a "%YAML 1.1" directive and "---", which safe_load accepts.
        doc = yaml.safe_load(text)
    except (OSError, yaml.YAMLError) as exc:
        raise VarsError(f"cannot read {path}: {exc}") from exc
    if doc is None:
        return {}, {}
    if not isinstance(doc, dict):
        raise VarsError(f"{path}: top level is not a mapping")
    section = doc.get("vars")
    if section is None:
        return {}, {}
    if not isinstance(section, dict):
        raise VarsError(f"{path}: vars must be a mapping")
    return _group(section, "address-groups"), _group(section, "port-groups")
