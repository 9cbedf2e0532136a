"""The iptables/ip6tables rules NFQUEUE inline mode and its mark bypass need.

For every queue chain (mangle table; PREROUTING and OUTPUT by default)::

    -m mark --mark INJECT/INJECT -j ACCEPT                      (OUTPUT: engine's own RST/ICMP)
    -j CONNMARK --restore-mark --nfmask MASK --ctmask MASK      (bypass: flow's mark -> packet)
    -m mark --mark MARK/MASK -j ACCEPT                          (bypassed flow: skip the queue)
    -j NFQUEUE --queue-num N --queue-bypass                     (the rest; no listener -> accept)

and, because an accept verdict continues at the *next hook* rather than the next rule, the
mark is saved to the connection in later hooks (mangle INPUT and POSTROUTING)::

    -m mark --mark MARK/MASK -j CONNMARK --save-mark --nfmask MASK --ctmask MASK

Repeat mode first accepts packets carrying the repeat mark (``-m mark --mark R/RM -j ACCEPT``,
the equivalent of Suricata's ``-m mark ! --mark R/RM -j NFQUEUE``), ahead of the restore.

Every rule carries ``-m comment --comment ruleengine-<queue>`` (``ruleengine-<a>-<b>`` for a
queue range), so removal deletes exactly those rules, and a later start also removes the
leftovers of a run that crashed. Use one iptables flavour (nft or legacy) per namespace.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from capture_backends.nfq_config import NfqConfig

__all__ = ["IptablesError", "NfqRules", "queue_rule_hits"]

TAG_PREFIX = "ruleengine-"
SAVE_CHAINS = ("INPUT", "POSTROUTING")
_TAG_RE = re.compile(r"^ruleengine-(\d+)(?:-(\d+))?$")

# runs one command with optional standard input (tests pass a fake)
Runner = Callable[[Sequence[str], "str | None"], "subprocess.CompletedProcess[str]"]


class IptablesError(RuntimeError):
    """An iptables command failed or is missing (the message has the command and stderr)."""


def _run(cmd: Sequence[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(cmd), input=stdin, capture_output=True, text=True, timeout=30,
                          check=False)


def _tag_queues(tag: str) -> set[int] | None:
    match = _TAG_RE.match(tag)
    if match is None:
        return None
    first = int(match.group(1))
    last = int(match.group(2)) if match.group(2) else first
    return set(range(first, last + 1)) if last >= first else None


@dataclass(frozen=True)
class NfqRules:
    """Installs and removes the NFQUEUE rules of one engine run (both families)."""

    queues: tuple[int, ...]
    bypass_mark: int = 0
    bypass_mask: int = 0
    repeat_mark: int = 0
    repeat_mask: int = 0  # non-zero only in repeat mode
    inject_mark: int = 0
    chains: tuple[str, ...] = ("PREROUTING", "OUTPUT")
    queue_bypass: bool = True
    variant: str = "auto"  # auto | nft | legacy
    families: tuple[str, ...] = ("ipv4", "ipv6")

    table: ClassVar[str] = "mangle"

    @classmethod
    def from_config(cls, config: NfqConfig) -> NfqRules:
        repeat = config.mode == "repeat"
        return cls(
            queues=tuple(sorted(config.queues)),
            bypass_mark=config.bypass_mark & config.bypass_mask,
            bypass_mask=config.bypass_mask,
            repeat_mark=config.repeat_mark & config.repeat_mask if repeat else 0,
            repeat_mask=config.repeat_mask if repeat else 0,
            inject_mark=config.inject_value,
            chains=config.chains,
            queue_bypass=config.queue_bypass,
            variant=config.iptables,
            # A kernel without IPv6 has no ip6tables either (and no IPv6 traffic to queue).
            families=("ipv4", "ipv6") if os.path.exists("/proc/net/if_inet6") else ("ipv4",),
        )

    # -- what the rules are -------------------------------------------------------------
    @property
    def tag(self) -> str:
        first, last = min(self.queues), max(self.queues)
        return f"{TAG_PREFIX}{first}" if first == last else f"{TAG_PREFIX}{first}-{last}"

    def binary(self, family: str) -> str:
        base = "iptables" if family == "ipv4" else "ip6tables"
        return base if self.variant == "auto" else f"{base}-{self.variant}"

    def _queue_target(self) -> list[str]:
        first, last = min(self.queues), max(self.queues)
        target = ["-j", "NFQUEUE"]
        target += ["--queue-num", str(first)] if first == last else \
            ["--queue-balance", f"{first}:{last}"]
        if self.queue_bypass:
            target.append("--queue-bypass")
        return target

    def rules(self) -> list[tuple[str, list[str]]]:
        """``(chain, match+target args)`` in the order they must appear, tag included."""
        tag = ["-m", "comment", "--comment", self.tag]
        out: list[tuple[str, list[str]]] = []
        masks = ["--nfmask", hex(self.bypass_mask), "--ctmask", hex(self.bypass_mask)]
        marked = ["-m", "mark", "--mark", f"{self.bypass_mark:#x}/{self.bypass_mask:#x}"]
        for chain in self.chains:
            if self.inject_mark and chain == "OUTPUT":  # only the host's own packets
                inject = f"{self.inject_mark:#x}/{self.inject_mark:#x}"
                out.append((chain, [*tag, "-m", "mark", "--mark", inject, "-j", "ACCEPT"]))
            if self.repeat_mask:
                # Before the restore: a repeated packet keeps the bypass bit its verdict set
                # (the restore would overwrite it with the not yet saved connmark).
                repeat = f"{self.repeat_mark:#x}/{self.repeat_mask:#x}"
                out.append((chain, [*tag, "-m", "mark", "--mark", repeat, "-j", "ACCEPT"]))
            if self.bypass_mask:
                out.append((chain, [*tag, "-j", "CONNMARK", "--restore-mark", *masks]))
                out.append((chain, [*tag, *marked, "-j", "ACCEPT"]))
            out.append((chain, [*tag, *self._queue_target()]))
        if self.bypass_mask:
            for chain in SAVE_CHAINS:
                out.append((chain, [*tag, *marked, "-j", "CONNMARK", "--save-mark", *masks]))
        return out

    def script(self) -> str:
        """The rules as shell commands, for users who manage their own firewall."""
        lines = []
        for family in self.families:
            for chain, args in self.rules():
                lines.append(shlex.join([self.binary(family), "-t", self.table, "-A", chain,
                                         *args]))
        return "\n".join(lines) + "\n"

    # -- doing it -------------------------------------------------------------------------
    def restore_binary(self, family: str) -> str:
        base = "iptables" if family == "ipv4" else "ip6tables"
        return f"{base}-restore" if self.variant == "auto" else f"{base}-{self.variant}-restore"

    def _exec(self, cmd: Sequence[str], runner: Runner, stdin: str | None = None) -> str:
        if shutil.which(cmd[0]) is None:
            raise IptablesError(f"{cmd[0]} not found (install the iptables package)")
        try:
            proc = runner(cmd, stdin)
        except (OSError, subprocess.SubprocessError) as exc:
            raise IptablesError(f"{shlex.join(cmd)}: {exc}") from None
        if proc.returncode != 0:
            raise IptablesError(f"{shlex.join(cmd)}: {(proc.stderr or '').strip()}")
        return proc.stdout or ""

    def _transaction(self, family: str, lines: list[str], runner: Runner) -> None:
        """Apply ``lines`` to our table in one iptables-restore transaction (all or nothing),
        keeping every other rule (--noflush)."""
        text = f"*{self.table}\n" + "".join(line + "\n" for line in lines) + "COMMIT\n"
        self._exec([self.restore_binary(family), "-w", "5", "--noflush"], runner, text)

    def install(self, runner: Runner = _run) -> int:
        """Remove leftovers for these queues, then insert our rules at the top of each chain,
        atomically per family: a packet never meets half of them (say the restore and accept
        rules but not yet the queue rule). Returns how many leftover rules were removed (an
        earlier run that was killed). On failure everything added is removed again and
        IptablesError is raised."""
        leftovers = self.remove(runner)
        lines: list[str] = []
        position: dict[str, int] = {}
        for chain, args in self.rules():
            position[chain] = position.get(chain, 0) + 1
            lines.append(shlex.join(["-I", chain, str(position[chain]), *args]))
        try:
            for family in self.families:
                self._transaction(family, lines, runner)
        except IptablesError:
            self.remove(runner)
            raise
        return leftovers

    def installed(self, runner: Runner = _run) -> list[tuple[str, list[str]]]:
        """Our rules currently present, as ``(family, iptables -S tokens)``: those tagged for
        any of our queues (also by an earlier run with other queue numbers)."""
        found: list[tuple[str, list[str]]] = []
        ours = set(self.queues)
        for family in self.families:
            listing = self._exec([self.binary(family), "-w", "5", "-t", self.table, "-S"], runner)
            for line in listing.splitlines():
                if not line.startswith("-A ") or TAG_PREFIX not in line:
                    continue
                try:
                    tokens = shlex.split(line)
                except ValueError:
                    continue
                for i, token in enumerate(tokens[:-1]):
                    if token == "--comment":
                        queues = _tag_queues(tokens[i + 1])
                        if queues is not None and queues & ours:
                            found.append((family, tokens))
                        break
        return found

    def complete(self, runner: Runner = _run) -> bool:
        """True when every rule of ours is in place (a flush or a hand-deleted rule: False)."""
        return len(self.installed(runner)) >= len(self.rules()) * len(self.families)

    def queue_hits(self, runner: Runner = _run) -> int:
        """Packets our NFQUEUE rules sent to the queue since they were installed (the
        kernel's rule counters, both families): with fail-open, those the queue did not
        take were accepted by the kernel unseen."""
        hits = 0
        for family in self.families:
            save = self.restore_binary(family).replace("-restore", "-save")
            listing = self._exec([save, "-c", "-t", self.table], runner)
            for line in listing.splitlines():
                if "NFQUEUE" not in line or not line.startswith("["):
                    continue
                tokens = line.split()
                if self.tag not in tokens:  # whole token: tag 43 is a prefix of tag 430
                    continue
                with contextlib.suppress(ValueError):
                    hits += int(line[1:line.index(":")])
        return hits

    def remove(self, runner: Runner = _run) -> int:
        """Delete every rule tagged for our queues (one transaction per family, rule by rule
        if that fails, e.g. because a rule vanished meanwhile); returns how many were deleted."""
        removed = 0
        errors: list[str] = []
        found = self.installed(runner)
        for family in self.families:
            rules = [tokens[1:] for fam, tokens in found if fam == family]
            if not rules:
                continue
            try:
                self._transaction(family, [shlex.join(["-D", *r]) for r in rules], runner)
                removed += len(rules)
                continue
            except IptablesError:
                pass
            for rule in rules:
                cmd = [self.binary(family), "-w", "5", "-t", self.table, "-D", *rule]
                try:
                    self._exec(cmd, runner)
                    removed += 1
                except IptablesError as exc:
                    errors.append(str(exc))
        if errors:
            raise IptablesError("; ".join(errors))
        return removed


def _rule_queues(tokens: list[str]) -> set[int] | None:
    """The queues an ``iptables-save`` rule's NFQUEUE target sends to (None: not NFQUEUE)."""
    if "NFQUEUE" not in tokens:
        return None
    for i, token in enumerate(tokens[:-1]):
        if token == "--queue-num" and tokens[i + 1].isdigit():
            return {int(tokens[i + 1])}
        if token == "--queue-balance":
            first, _, last = tokens[i + 1].partition(":")
            if first.isdigit() and last.isdigit():
                return set(range(int(first), int(last) + 1))
    return {0}  # -j NFQUEUE alone sends to queue 0


def queue_rule_hits(queues: Sequence[int], families: Sequence[str] = ("ipv4", "ipv6"),
                    variant: str = "auto", runner: Runner = _run) -> int | None:
    """Packets sent to ``queues`` by every NFQUEUE rule of every table, whoever installed it
    (an operator's own ``-j NFQUEUE --queue-num N --queue-bypass``), from the kernel's rule
    counters (``iptables-save -c``); rules balancing over other queues too count only when
    the whole range is ours. None when no such rule exists (or iptables is missing)."""
    ours = set(queues)
    hits, found = 0, False
    for family in families:
        base = "iptables" if family == "ipv4" else "ip6tables"
        save = f"{base}-save" if variant == "auto" else f"{base}-{variant}-save"
        if shutil.which(save) is None:
            continue
        try:
            proc = runner([save, "-c"], None)
        except (OSError, subprocess.SubprocessError):
            continue
        for line in (proc.stdout or "").splitlines() if proc.returncode == 0 else []:
            if not line.startswith("[") or "NFQUEUE" not in line:
                continue
            targets = _rule_queues(line.split())
            if targets and targets <= ours:
                with contextlib.suppress(ValueError):
                    hits += int(line[1:line.index(":")])
                    found = True
    return hits if found else None


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m capture_backends.iptables``: print (or install/remove) the rules."""
    import argparse
    import sys

    from capture_backends.nfq_config import NfqConfig, NfqConfigError

    parser = argparse.ArgumentParser(
        prog="python -m capture_backends.iptables",
        description="The iptables/ip6tables rules for ruleengine's NFQUEUE mode.")
    parser.add_argument("-q", dest="queues", type=int, action="append", required=True,
                        help="queue number (repeatable; contiguous)")
    parser.add_argument("--mode", default="accept", choices=("accept", "repeat"))
    for name in ("bypass-mark", "bypass-mask", "repeat-mark", "repeat-mask", "inject-mark"):
        parser.add_argument(f"--{name}", default=None)
    parser.add_argument("--chains", default=None, help="e.g. PREROUTING,OUTPUT or FORWARD")
    parser.add_argument("--no-queue-bypass", action="store_true")
    parser.add_argument("--iptables", default="auto", choices=("auto", "nft", "legacy"))
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--install", action="store_true", help="install them now")
    action.add_argument("--remove", action="store_true",
                        help="remove rules tagged for these queues (e.g. after a crash)")
    args = parser.parse_args(argv)
    section: dict[str, object] = {"mode": args.mode, "iptables": args.iptables,
                                  "queue-bypass": not args.no_queue_bypass}
    for name in ("bypass-mark", "bypass-mask", "repeat-mark", "repeat-mask", "inject-mark"):
        value = getattr(args, name.replace("-", "_"))
        if value is not None:
            section[name] = value
    if args.chains:
        section["chains"] = args.chains
    try:
        config, notes = NfqConfig.from_yaml(section, args.queues)
    except NfqConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for note in notes:
        print(f"warning: {note}", file=sys.stderr)
    rules = NfqRules.from_config(config)
    try:
        if args.install:
            rules.install()
        elif args.remove:
            print(f"removed {rules.remove()} rules")
            return 0
    except IptablesError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(rules.script())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
