"""The engine's list of capture-bypassed flows, as a file other processes can read.

``ruleengine bypass list`` reads the live packet counters from the kernel maps; what only
the engine knows (why and when each flow was bypassed) is in this file, one per engine
process: ``<logdir>/bypassed-flows.<pid>.json``. It is rewritten (to a temporary file,
then renamed: a reader never sees half a file) when the set of bypassed flows changed, at
most once per flow-manager pass, and removed when the engine stops.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ruleengine.flow.table import BYPASS_CAPTURE, Flow

STATE_GLOB = "bypassed-flows.*.json"
VERSION = 1


def state_path(logdir: Path, pid: int | None = None) -> Path:
    return logdir / f"bypassed-flows.{os.getpid() if pid is None else pid}.json"


def flow_entry(flow: Flow) -> dict[str, Any]:
    return {
        "src_ip": str(ipaddress.ip_address(flow.src)),
        "dest_ip": str(ipaddress.ip_address(flow.dst)),
        "src_port": flow.sport, "dest_port": flow.dport, "proto": flow.proto,
        "vlan": list(flow.vlan), "reason": flow.bypass_reason or "unknown",
        "bypass_ts": flow.bypass_ts, "mode": "capture" if flow.bypass == BYPASS_CAPTURE
        else "local",
    }


class BypassStateFile:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._written: frozenset[int] | None = None
        self.errors = 0

    def update(self, flows: Iterable[Flow]) -> None:
        flows = list(flows)
        ids = frozenset(f.flow_id for f in flows)
        if ids == self._written:
            return
        doc = {"version": VERSION, "pid": os.getpid(), "updated": time.time(),
               "flows": [flow_entry(f) for f in flows]}
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            tmp.write_text(json.dumps(doc) + "\n", encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError:
            self.errors += 1  # the listing is a convenience: never stop the engine for it
            return
        self._written = ids

    def remove(self) -> None:
        with contextlib.suppress(OSError):
            self.path.unlink()
        self._written = None
