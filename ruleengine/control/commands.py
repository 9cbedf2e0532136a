"""The commands of the unix socket, by Suricata's names and with Suricata's answers
(``unix-manager.c``, ``util-device.c`` for ``iface-*``, ``output-json-stats.c`` for
``dump-counters`` and ``ruleset-*``), plus ``bypass-list`` / ``bypass-remove`` of ours.

The table is built over a ``ControlTarget``: what the running engine offers. The
composition root (``ruleengine/commands/run.py``) implements it for one process or for
the AF_PACKET workers' parent.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

import ruleengine
from ruleengine.control.server import Command, Pending, Reply

MAX_FAILED_RULES = 20  # Suricata's cap on ruleset-failed-rules entries


class ControlTarget(Protocol):
    """The running engine as the socket sees it. Every method is called between packets."""

    running_mode: str  # "single", "workers", "autofp"
    capture_mode: str  # Suricata's RunModeGetMainMode name: PCAP_FILE, AF_PACKET_DEV, NFQ

    def reload(self) -> Pending:
        """Start a rule reload (or join the one running); completes with OK "done" or NOK
        and the reason (the old rules stay)."""
        ...

    def reload_times(self) -> list[dict[str, Any]]:
        """ruleset-reload-time: ``[{"id": 0, "last_reload": TIMESTAMP}]``."""
        ...

    def ruleset_stats(self) -> list[dict[str, Any]]:
        """ruleset-stats: ``[{"id": 0, "rules_loaded": N, "rules_failed": M, ...}]``."""
        ...

    def failed_rules(self) -> list[dict[str, Any]]:
        """ruleset-failed-rules entries of the rules in use."""
        ...

    def counters(self) -> dict[str, Any]:
        """dump-counters: the stats event's ``stats`` object (nested, with uptime)."""
        ...

    def ifaces(self) -> list[str]:
        ...

    def iface_stat(self, name: str) -> dict[str, Any] | None:
        ...

    def shutdown(self) -> None:
        ...

    def bypassed(self) -> list[dict[str, Any]]:
        ...

    def unbypass(self, args: dict[str, Any]) -> Reply:
        ...

    def conf_get(self, name: str) -> Any:
        """The configuration value at a dotted name (None: not set)."""
        ...

    def reopen_logs(self) -> None:
        """Reopen the log files (as SIGHUP does)."""
        ...


def _lookup(args: dict[str, Any] | None, key: str, not_string: str,
            get: Callable[[str], Any], missing: str) -> Reply:
    """What ``get`` finds for the command's string argument ``key``: NOK ``not_string``
    when the argument is not a string, NOK ``missing`` when nothing is found."""
    name = (args or {}).get(key)
    if not isinstance(name, str):
        return Reply(False, not_string)
    found = get(name)
    if found is None:
        return Reply(False, missing)
    return Reply(True, found)


def command_table(target: ControlTarget, started: float | None = None) -> dict[str, Command]:
    """Every command, in Suricata's registration order (command-list shows that order)."""
    start = time.time() if started is None else started
    table: dict[str, Command] = {}

    def add(name: str, handler: Any, takes_args: bool = False) -> None:
        table[name] = Command(name, handler, takes_args)

    def command_list(_args: dict[str, Any] | None) -> Reply:
        return Reply(True, {"count": len(table), "commands": list(table)})

    def reload(blocking: bool) -> Any:
        def run(_args: dict[str, Any] | None) -> Reply | Pending:
            pending = target.reload()
            if blocking:
                return pending
            if pending.reply is not None and not pending.reply.ok:
                return pending.reply  # refused at once (e.g. shutting down)
            return Reply(True, "done")
        return run

    def iface_stat(args: dict[str, Any] | None) -> Reply:
        return _lookup(args, "iface", "Interface name is not a string", target.iface_stat,
                       "Interface not found")

    def conf_get(args: dict[str, Any] | None) -> Reply:
        found = _lookup(args, "variable", "variable is not a string", target.conf_get,
                        "Unable to get value")
        value = found.message
        if not found.ok:
            return found
        if isinstance(value, dict | list):
            return Reply(False, "No string value")
        if isinstance(value, bool):  # yaml's yes/no, as Suricata keeps them: strings
            return Reply(True, "yes" if value else "no")
        return Reply(True, str(value))

    def reopen(_args: dict[str, Any] | None) -> Reply:
        target.reopen_logs()
        return Reply(True, "done")

    def shutdown(_args: dict[str, Any] | None) -> Reply:
        target.shutdown()
        return Reply(True, "Closing Suricata")

    add("shutdown", shutdown)
    add("command-list", command_list)
    add("help", command_list)
    add("version", lambda _a: Reply(True, f"{ruleengine.__version__} RELEASE (ruleengine)"))
    add("uptime", lambda _a: Reply(True, int(time.time() - start)))
    add("running-mode", lambda _a: Reply(True, target.running_mode))
    add("capture-mode", lambda _a: Reply(True, target.capture_mode))
    add("conf-get", conf_get, takes_args=True)
    add("dump-counters", lambda _a: Reply(True, target.counters()))
    add("reload-rules", reload(True))
    add("ruleset-reload-rules", reload(True))
    add("ruleset-reload-nonblocking", reload(False))
    add("ruleset-reload-time", lambda _a: Reply(True, target.reload_times()))
    add("ruleset-stats", lambda _a: Reply(True, target.ruleset_stats()))
    add("ruleset-failed-rules",
        lambda _a: Reply(True, target.failed_rules()[:MAX_FAILED_RULES + 1]))
    add("reopen-log-files", reopen)
    add("iface-stat", iface_stat, takes_args=True)
    add("iface-list", lambda _a: Reply(True, {"count": len(target.ifaces()),
                                              "ifaces": target.ifaces()}))
    add("bypass-list", lambda _a: Reply(True, {"count": len(flows := target.bypassed()),
                                               "flows": flows}))
    add("bypass-remove", lambda args: target.unbypass(args or {}), takes_args=True)
    return table
