"""A small Public Suffix List matcher for the ``domain`` and ``tld`` transforms
(Suricata 8 uses the Rust ``psl`` crate, ICANN and private sections alike).

The list is read once from the system copy (Debian's ``publicsuffix`` package); without
it the transforms are unavailable and rules using them are skipped with that reason.
Rules: exact entries, wildcards (``*.ck``), exceptions (``!www.ck``) and the implicit
``*`` rule (an unknown TLD is its own suffix).
"""

from __future__ import annotations

import os

PSL_PATH = os.environ.get("RULEENGINE_PSL", "/usr/share/publicsuffix/public_suffix_list.dat")
MAX_NAME = 253  # longer inputs are no host names: left unchanged

_rules: tuple[frozenset[str], frozenset[str], frozenset[str]] | None = None
_loaded = False


def _load() -> tuple[frozenset[str], frozenset[str], frozenset[str]] | None:
    global _rules, _loaded
    if _loaded:
        return _rules
    _loaded = True
    try:
        with open(PSL_PATH, encoding="utf-8") as fh:
            text = fh.read()
    except OSError:
        return None
    exact: set[str] = set()
    wild: set[str] = set()
    exc: set[str] = set()
    for line in text.splitlines():
        line = line.strip().split(" ", 1)[0]
        if not line or line.startswith("//"):
            continue
        line = line.lower()
        if line.startswith("!"):
            exc.add(line[1:])
        elif line.startswith("*."):
            wild.add(line[2:])
        else:
            exact.add(line)
    _rules = (frozenset(exact), frozenset(wild), frozenset(exc))
    return _rules


def available() -> bool:
    return _load() is not None


def _labels(buf: bytes) -> list[str] | None:
    if not buf or len(buf) > MAX_NAME:
        return None
    try:
        name = buf.decode("ascii").lower().rstrip(".")
    except UnicodeDecodeError:
        return None
    labels = name.split(".")
    if any(not label for label in labels):
        return None
    return labels


def _suffix_len(labels: list[str]) -> int:
    """Number of labels of the public suffix of ``labels``."""
    rules = _load()
    assert rules is not None
    exact, wild, exc = rules
    best = 1  # the implicit "*" rule
    n = len(labels)
    for i in range(n):
        cand = ".".join(labels[i:])
        if cand in exc:
            return n - i - 1
        size = n - i
        if cand in exact and size > best:
            best = size
        if i > 0 and cand in wild and size + 1 > best:
            best = size + 1
    return min(best, n)


def public_suffix(buf: bytes) -> bytes | None:
    labels = _labels(buf)
    if labels is None or not available():
        return None
    k = _suffix_len(labels)
    return ".".join(labels[-k:]).encode("ascii") if k else None


def registrable_domain(buf: bytes) -> bytes | None:
    labels = _labels(buf)
    if labels is None or not available():
        return None
    k = _suffix_len(labels)
    if k >= len(labels):
        return None  # the name is a public suffix itself
    return ".".join(labels[-(k + 1):]).encode("ascii")
