"""The ``nfq:`` section of suricata.yaml, typed and validated.

Its own module because two backends' helpers read it: the NFQUEUE backend and the iptables
rule builder (which must not import the backend, nor the backend it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from ruleengine.conf_values import parse_switch

__all__ = ["MODES", "NfqConfig", "NfqConfigError"]

MODES = ("accept", "repeat")
_U32 = 0xFFFFFFFF


class NfqConfigError(ValueError):
    """The ``nfq:`` configuration cannot work (message says which key and why)."""


def _parse_int(key: str, value: object) -> int:
    if isinstance(value, bool):
        raise NfqConfigError(f"nfq: {key} must be an integer, not {value!r}")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str):
        try:
            number = int(value.strip(), 0)
        except ValueError:
            raise NfqConfigError(f"nfq: {key} must be an integer (e.g. 1 or 0x10), "
                                 f"not {value!r}") from None
    else:
        raise NfqConfigError(f"nfq: {key} must be an integer, not {value!r}")
    if not 0 <= number <= _U32:
        raise NfqConfigError(f"nfq: {key} {value!r} does not fit in 32 bits")
    return number


def _parse_bool(key: str, value: object) -> bool:
    # an integer other than 0/1 is a typo here, not a switch
    odd_int = isinstance(value, int) and not isinstance(value, bool) and value not in (0, 1)
    flag = None if odd_int else parse_switch(value)
    if flag is None:
        raise NfqConfigError(f"nfq: {key} must be yes or no, not {value!r}")
    return flag


_KNOWN_KEYS = {
    "mode", "repeat-mark", "repeat-mask", "bypass-mark", "bypass-mask", "route-queue",
    "batchcount", "fail-open",
    # ruleengine additions
    "install-rules", "chains", "queue-bypass", "queue-maxlen", "iptables", "inject-mark",
    "bypass-table-size",
}
QUEUE_CHAINS = ("PREROUTING", "FORWARD", "OUTPUT")  # saves happen in INPUT/POSTROUTING


@dataclass(frozen=True)
class NfqConfig:
    """The ``nfq:`` section of suricata.yaml plus the queues from ``-q``.

    ``install_rules``: install the iptables/ip6tables rules (restore connmark, accept marked,
    queue the rest with ``--queue-bypass``, save the mark later) and remove them on close.
    ``chains``: the mangle chains whose packets are queued. ``inject_mark``: the mark the
    engine sets (SO_MARK) on packets it sends itself (TCP RST / ICMP of ``reject``) so the
    installed OUTPUT rule lets them out instead of queueing them back to the engine, which
    would drop them with the rest of the rejected flow. ``None`` (default) picks a free bit
    (``inject_value``: 0x40000000 unless the bypass/repeat masks use it), 0 turns it off.
    ``bypass_table_size``: how many bypassed flows the backend remembers, so that packets of
    them still queued get the bypass mark at once (``capture_backends.bypassed_flows``).
    """

    queues: tuple[int, ...]
    mode: str = "accept"
    repeat_mark: int = 1
    repeat_mask: int = 1
    bypass_mark: int = 0
    bypass_mask: int = 0
    fail_open: bool = False
    batchcount: int = 1
    install_rules: bool = False
    chains: tuple[str, ...] = ("PREROUTING", "OUTPUT")
    queue_bypass: bool = True
    queue_maxlen: int = 4096
    iptables: str = "auto"
    inject_mark: int | None = None
    bypass_table_size: int = 65536

    def __post_init__(self) -> None:
        self.validate()

    # -- validation ---------------------------------------------------------------------
    def validate(self) -> None:
        """Raise NfqConfigError for settings that cannot work together."""
        if not self.queues:
            raise NfqConfigError("nfq: no queue given (use -q N)")
        for q in self.queues:
            if not 0 <= q <= 65535:
                raise NfqConfigError(f"nfq: queue number {q} is outside 0-65535")
        if len(set(self.queues)) != len(self.queues):
            raise NfqConfigError(f"nfq: queue given twice in {list(self.queues)}")
        if self.mode not in MODES:
            hint = " (route mode is not supported)" if self.mode == "route" else ""
            raise NfqConfigError(f"nfq: mode {self.mode!r} is not one of accept, repeat{hint}")
        for name in ("repeat_mark", "repeat_mask", "bypass_mark", "bypass_mask", "inject_mark"):
            value = getattr(self, name)
            if value is not None and not 0 <= value <= _U32:
                raise NfqConfigError(f"nfq: {name.replace('_', '-')} does not fit in 32 bits")
        if self.bypass_mask and not self.bypass_mark & self.bypass_mask:
            raise NfqConfigError(
                f"nfq: bypass-mark {self.bypass_mark:#x} has no bit inside bypass-mask "
                f"{self.bypass_mask:#x}: every unmarked packet would look bypassed")
        if self.mode == "repeat":
            if not self.repeat_mark & self.repeat_mask:
                raise NfqConfigError(
                    f"nfq: repeat-mark {self.repeat_mark:#x} has no bit inside repeat-mask "
                    f"{self.repeat_mask:#x}: every packet would look already inspected")
            if self.bypass_mask & self.repeat_mask:
                raise NfqConfigError(
                    f"nfq: bypass-mask {self.bypass_mask:#x} overlaps repeat-mask "
                    f"{self.repeat_mask:#x} (common bits {self.bypass_mask & self.repeat_mask:#x})"
                    ": in repeat mode the two marks need different bits")
        if self.inject_mark:
            used = self._used_mark_bits()
            if self.inject_mark & used:
                raise NfqConfigError(
                    f"nfq: inject-mark {self.inject_mark:#x} overlaps the bypass/repeat masks "
                    f"({used:#x})")
        if not 1 <= self.batchcount <= 255:
            raise NfqConfigError(f"nfq: batchcount {self.batchcount} is outside 1-255")
        if not 1 <= self.bypass_table_size <= 1 << 24:
            raise NfqConfigError(
                f"nfq: bypass-table-size {self.bypass_table_size} is outside 1-16777216")
        if not 1 <= self.queue_maxlen <= 1 << 20:
            raise NfqConfigError(f"nfq: queue-maxlen {self.queue_maxlen} is outside 1-1048576")
        for chain in self.chains:
            if chain not in QUEUE_CHAINS:
                raise NfqConfigError(
                    f"nfq: chain {chain!r} is not one of {', '.join(QUEUE_CHAINS)}")
        if not self.chains:
            raise NfqConfigError("nfq: chains is empty")
        if self.iptables not in ("auto", "nft", "legacy"):
            raise NfqConfigError(f"nfq: iptables {self.iptables!r} is not auto, nft or legacy")
        if self.install_rules and len(self.queues) > 1:
            ordered = sorted(self.queues)
            if ordered != list(range(ordered[0], ordered[-1] + 1)):
                raise NfqConfigError(
                    f"nfq: queues {list(self.queues)} are not contiguous: the installed rule "
                    "balances over a range (--queue-balance A:B)")

    def _used_mark_bits(self) -> int:
        return self.bypass_mask | (self.repeat_mask if self.mode == "repeat" else 0)

    @property
    def inject_value(self) -> int:
        """The SO_MARK for packets the engine sends itself (0: none; see ``inject_mark``)."""
        if self.inject_mark is not None:
            return self.inject_mark
        used = self._used_mark_bits()
        candidates: list[int] = [30, *range(31, -1, -1)]
        for bit in candidates:
            value: int = 1 << bit
            if not used & value:
                return value
        return 0

    def with_install_rules(self, install: bool = True) -> NfqConfig:
        return replace(self, install_rules=install)

    # -- suricata.yaml ------------------------------------------------------------------
    @classmethod
    def from_yaml(cls, nfq_section: Mapping[str, Any] | None,
                  queues: Sequence[int]) -> tuple[NfqConfig, list[str]]:
        """Build the config from suricata.yaml's ``nfq:`` mapping and the ``-q`` queues.

        Returns ``(config, warnings)``; raises NfqConfigError for values that cannot work.
        """
        section: Mapping[str, Any] = nfq_section or {}
        if not isinstance(section, Mapping):
            raise NfqConfigError(f"nfq: expected a mapping, got {type(section).__name__}")
        notes: list[str] = []
        for key in section:
            if key not in _KNOWN_KEYS:
                notes.append(f"nfq: unknown key {key!r} ignored")
        kwargs: dict[str, Any] = {"queues": tuple(int(q) for q in queues)}
        if "mode" in section and section["mode"] is not None:
            kwargs["mode"] = str(section["mode"]).strip().lower()
        inject = section.get("inject-mark")
        if isinstance(inject, str) and inject.strip().lower() == "auto":
            inject = None
        elif isinstance(inject, str | bool) and parse_switch(inject) is False:
            inject = 0
        kwargs["inject_mark"] = None if inject is None else _parse_int("inject-mark", inject)
        for key in ("repeat-mark", "repeat-mask", "bypass-mark", "bypass-mask"):
            if section.get(key) is not None:
                kwargs[key.replace("-", "_")] = _parse_int(key, section[key])
        if section.get("route-queue") is not None:
            notes.append("nfq: route-queue ignored (route mode is not supported)")
        if section.get("batchcount") is not None:
            count = _parse_int("batchcount", section["batchcount"])
            if count > 255:
                notes.append("nfq: batchcount cannot exceed 255, using 255")
                count = 255
            kwargs["batchcount"] = max(count, 1)
        for key in ("fail-open", "install-rules", "queue-bypass"):
            if section.get(key) is not None:
                kwargs[key.replace("-", "_")] = _parse_bool(key, section[key])
        if section.get("queue-maxlen") is not None:
            kwargs["queue_maxlen"] = _parse_int("queue-maxlen", section["queue-maxlen"])
        if section.get("bypass-table-size") is not None:
            kwargs["bypass_table_size"] = _parse_int("bypass-table-size",
                                                     section["bypass-table-size"])
        if section.get("iptables") is not None:
            kwargs["iptables"] = str(section["iptables"]).strip().lower()
        chains = section.get("chains")
        if chains is not None:
            if isinstance(chains, str):
                chains = [c for c in chains.replace(",", " ").split() if c]
            if not isinstance(chains, list | tuple):
                raise NfqConfigError(f"nfq: chains must be a list of chain names, not {chains!r}")
            kwargs["chains"] = tuple(str(c).strip().upper() for c in chains)
        if kwargs.get("bypass_mark") and not section.get("bypass-mask"):
            notes.append("nfq: bypass-mark is set but bypass-mask is 0: bypass stays local")
        config = cls(**kwargs)
        if config.bypass_mark & ~config.bypass_mask & _U32 and config.bypass_mask:
            notes.append(f"nfq: bypass-mark bits {config.bypass_mark & ~config.bypass_mask:#x} "
                         f"are outside bypass-mask {config.bypass_mask:#x} and are ignored")
        return config, notes

    @property
    def bypass_value(self) -> int:
        """The bits the verdict sets on a bypassed packet (inside bypass_mask)."""
        return self.bypass_mark & self.bypass_mask

    @property
    def repeat_value(self) -> int:
        return self.repeat_mark & self.repeat_mask


# --- netlink configuration message ----------------------------------------------------------
