"""Rule files -> RuleSet: comments, continuations, limits, duplicate sids, the cache.

Suricata's loader (``src/detect-engine-loader.c``): ``#`` lines are comments, a
trailing ``\\`` continues the rule on the next line, lines starting with whitespace are
skipped (we warn), a rule is at most 8192 bytes. A sid seen twice is an error unless
the new one has a higher rev, which then replaces the old one (with a warning).
"""

from __future__ import annotations

import contextlib
import functools
import gc
import hashlib
import importlib.util
import os
import re
import stat
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import ruleengine
from ruleengine.diagnostics import ERROR, WARNING, Diagnostic
from ruleengine.rules import cache as rule_cache
from ruleengine.rules.builder import Finding
from ruleengine.rules.classification import classification
from ruleengine.rules.errors import RuleError
from ruleengine.rules.header import HeaderParser
from ruleengine.rules.model import FlowbitCmd, Rule, Span
from ruleengine.rules.parse import parse_rule_text
from ruleengine.rules.vars import merged_vars

MAX_RULE_BYTES = 8192
CACHE_FORMAT = 1
# Control characters other than TAB/CR/LF, and surrogateescape'd (non-UTF-8) bytes.
_BAD_CHAR_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\udc80-\udcff]")


@dataclass
class RuleSet:
    rules: list[Rule]  # loaded (incl. those with unsupported keywords)
    diagnostics: list[Diagnostic]
    files: int = 0
    loaded: int = 0
    failed: int = 0
    skipped: int = 0  # rules with unsupported keywords

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.is_error]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if not d.is_error]

    def summary(self) -> str:
        """Suricata's wording: "N rule files processed. X rules successfully loaded, ..."."""
        return (
            f"{self.files} rule files processed. {self.loaded} rules successfully loaded, "
            f"{self.failed} rules failed, {self.skipped} rules skipped"
        )


@dataclass
class _FileResult:
    """What one file parses to, before cross-file checks (cached as a unit)."""

    rules: list[Rule] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    failed: int = 0


def parse_rule(
    text: str,
    *,
    file: str = "<string>",
    line: int = 1,
    address_vars: Mapping[str, str] | None = None,
    port_vars: Mapping[str, str] | None = None,
) -> Rule:
    """Parse one rule (already continuation-joined). Raises RuleError on a bad rule;
    warnings are dropped (use ``load_rule_text`` to get them)."""
    headers = HeaderParser(*merged_vars(address_vars, port_vars))
    rule, _ = parse_rule_text(text, file=file, line=line, headers=headers)
    return rule


def load_rule_text(
    text: str,
    *,
    file: str = "<string>",
    address_vars: Mapping[str, str] | None = None,
    port_vars: Mapping[str, str] | None = None,
) -> RuleSet:
    """Load rules from a string as if it were a rule file (no cache)."""
    headers = HeaderParser(*merged_vars(address_vars, port_vars))
    result = _parse_file_text(text, file, headers)
    return _merge([result], files=1)


def load_rule_files(
    paths: Sequence[str | Path],
    *,
    address_vars: Mapping[str, str] | None = None,
    port_vars: Mapping[str, str] | None = None,
    use_cache: bool = True,
) -> RuleSet:
    """Load rule files (or directories of ``*.rules``). Never raises for bad input: every
    problem becomes a Diagnostic and loading continues."""
    addresses, ports = merged_vars(address_vars, port_vars)
    headers = HeaderParser(addresses, ports)
    vars_key = repr((sorted(addresses.items()), sorted(ports.items()))).encode()
    results: list[_FileResult] = []
    files = 0
    with gc_paused():
        for path in expand_paths(paths, results):
            files += 1
            results.append(_load_file(path, headers, vars_key, use_cache))
        return _merge(results, files=files)


@contextlib.contextmanager
def gc_paused(freeze: bool = False) -> Iterator[None]:
    """No cyclic garbage collection inside: for loading rules and building the detection
    engine from them. Both allocate ~100 long-lived objects per rule and no cycles worth
    collecting, and each full collection rescans every object made so far (ET Open: a
    third of the load time; the engine build 2.5-2.8 s -> 1.55-1.75 s CPU). ``freeze``:
    what exists at the end is moved to the permanent generation before collections
    resume (``gc.freeze``), for objects that live as long as the process: else the first
    young collection after the block walks all of them (ET HTTP rules: 0.09 s)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            if freeze:
                gc.freeze()
            gc.enable()


def expand_paths(paths: Iterable[str | Path], problems: list[_FileResult]) -> list[Path]:
    out: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.glob("*.rules") if p.is_file())
            if not found:
                problems.append(_FileResult(diagnostics=[_no_rules_diag(str(path))]))
            out.extend(found)
        elif path.is_file() or _is_char_device(path):
            out.append(path)
        else:
            what = (
                "not a regular file or directory" if path.exists() else "no such file or directory"
            )
            problems.append(_FileResult(diagnostics=[_file_diag(str(path), what, "file-error")]))
    return out


def _is_char_device(path: Path) -> bool:
    """``-S /dev/null`` (no rules, on purpose) reads as an empty file, as in Suricata; FIFOs
    and sockets stay refused: reading one could block for ever."""
    try:
        return stat.S_ISCHR(path.stat().st_mode)
    except OSError:
        return False


def _no_rules_diag(directory: str) -> Diagnostic:
    return Diagnostic(
        directory, 1, 1, 2, WARNING, "no-rule-files", "directory contains no *.rules files"
    )


def _file_diag(file: str, message: str, code: str) -> Diagnostic:
    return Diagnostic(file, 1, 1, 2, ERROR, code, message)


# --- one file ------------------------------------------------------------------------


def _load_file(path: Path, headers: HeaderParser, vars_key: bytes, use_cache: bool) -> _FileResult:
    name = str(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        return _FileResult(
            diagnostics=[_file_diag(name, f"cannot read file: {exc.strerror}", "file-error")]
        )
    key = ""
    if use_cache:
        key = _cache_key(data, vars_key, name)
        cached = _cache_get(key)
        if cached is not None:
            return cached
    text = data.decode("utf-8", "surrogateescape")
    result = _parse_file_text(text, name, headers)
    if use_cache:
        _cache_put(key, result)
    return result


def _parse_file_text(text: str, file: str, headers: HeaderParser) -> _FileResult:
    result = _FileResult()
    for line_no, rule_text in _logical_lines(text, file, result):
        _parse_one(rule_text, file, line_no, headers, result)
    return result


def _logical_lines(text: str, file: str, result: _FileResult) -> Iterable[tuple[int, str]]:
    """(first line number, rule text) for each rule. As Suricata's loader: ``\\``
    continuations are joined first, then comments and blank lines are dropped and
    whitespace-led lines skipped (with a warning here)."""
    pending: list[str] = []
    start = 0
    for idx, raw in enumerate(text.split("\n"), start=1):
        line = raw[:-1] if raw.endswith("\r") else raw
        if not pending:
            start = idx
        if line.endswith("\\"):
            pending.append(line[:-1])
            continue
        pending.append(line)
        joined = "".join(pending) if len(pending) > 1 else line
        pending = []
        if _is_rule_line(joined, file, start, result):
            yield start, joined
    if pending:
        joined = "".join(pending)
        if _is_rule_line(joined, file, start, result):
            yield start, joined


def _is_rule_line(line: str, file: str, line_no: int, result: _FileResult) -> bool:
    if not line or line[0] == "#":
        return False
    if line[0] in " \t\v\f":
        stripped = line.lstrip()
        if stripped and not stripped.startswith("#"):
            result.diagnostics.append(
                Diagnostic(
                    file,
                    line_no,
                    1,
                    len(line) - len(stripped) + 1,
                    WARNING,
                    "leading-whitespace",
                    "line starts with whitespace: Suricata skips it, so this rule is not loaded",
                    None,
                    line,
                    "remove the leading whitespace",
                )
            )
        return False
    return True


def _parse_one(text: str, file: str, line: int, headers: HeaderParser, result: _FileResult) -> None:
    try:
        _check_text(text, file, line)
        rule, findings = parse_rule_text(text, file=file, line=line, headers=headers)
    except RuleError as exc:
        result.failed += 1
        span = exc.span or Span(file, line, 1, 2)
        result.diagnostics.append(
            Diagnostic(
                file,
                span.line,
                span.col,
                span.end_col,
                ERROR,
                exc.code,
                exc.message,
                _guess_sid(text),
                text,
                exc.hint,
            )
        )
        return
    except Exception as exc:  # a bug must not stop loading; report it on the rule
        result.failed += 1
        result.diagnostics.append(
            Diagnostic(
                file,
                line,
                1,
                2,
                ERROR,
                "internal-error",
                f"internal error while parsing this rule: {type(exc).__name__}: {exc}",
                _guess_sid(text),
                text,
            )
        )
        return
    result.rules.append(rule)
    for f in findings:
        result.diagnostics.append(_finding_diag(f, rule, text))


def _finding_diag(f: Finding, rule: Rule, text: str) -> Diagnostic:
    return Diagnostic(
        f.span.file,
        f.span.line,
        f.span.col,
        f.span.end_col,
        WARNING,
        f.code,
        f.message,
        rule.sid,
        text,
        f.hint,
    )


def _check_text(text: str, file: str, line: int) -> None:
    # A UTF-8 character is at most 4 bytes: short rules need no encoding to check.
    size = (
        len(text)
        if len(text) * 4 <= MAX_RULE_BYTES
        else len(text.encode("utf-8", "surrogateescape"))
    )
    if size > MAX_RULE_BYTES:
        raise RuleError(
            f"rule is {size} bytes long; the maximum is {MAX_RULE_BYTES}",
            Span(file, line, 1, 2),
            code="rule-too-long",
        )
    m = _BAD_CHAR_RE.search(text)
    if m is None:
        return
    if "\udc80" <= m.group() <= "\udcff":
        raise RuleError(
            "rule is not valid UTF-8",
            Span(file, line, m.start() + 1, m.start() + 2),
            code="invalid-utf8",
        )
    raise RuleError(
        f"control character {m.group()!r} in rule (only TAB, CR and LF are allowed)",
        Span(file, line, m.start() + 1, m.start() + 2),
        code="control-character",
    )


_SID_RE = re.compile(r"[;(]\s*sid\s*:\s*(\d+)\s*;")


def _guess_sid(text: str) -> int | None:
    m = _SID_RE.search(text)
    return int(m.group(1)) if m else None


# --- merging files: duplicate sids, flowbits, counters -----------------------------


def _merge(results: list[_FileResult], *, files: int) -> RuleSet:
    diagnostics: list[Diagnostic] = []
    by_sid: dict[tuple[int, int], int] = {}
    rules: list[Rule | None] = []
    failed = 0
    for res in results:
        diagnostics.extend(res.diagnostics)
        failed += res.failed
        for rule in res.rules:
            key = (rule.gid, rule.sid)
            old_index = by_sid.get(key)
            if old_index is None:
                by_sid[key] = len(rules)
                rules.append(rule)
                continue
            old = rules[old_index]
            assert old is not None
            if rule.rev > old.rev:
                rules[old_index] = None
                by_sid[key] = len(rules)
                rules.append(rule)
                diagnostics.append(_dup_diag(rule, old, WARNING))
            else:
                failed += 1
                diagnostics.append(_dup_diag(rule, old, ERROR))
    loaded = [r for r in rules if r is not None]
    diagnostics.extend(_flowbit_warnings(loaded))
    return RuleSet(
        rules=loaded,
        diagnostics=diagnostics,
        files=files,
        loaded=len(loaded),
        failed=failed,
        skipped=sum(1 for r in loaded if r.unsupported),
    )


def _sid_span(rule: Rule) -> Span:
    m = _SID_RE.search(rule.raw)
    if m is None:
        return rule.span
    return Span(rule.span.file, rule.span.line, m.start(1) + 1, m.end(1) + 1)


def _dup_diag(rule: Rule, old: Rule, severity: str) -> Diagnostic:
    span = _sid_span(rule)
    where = f"{old.span.file}:{old.span.line}"
    if severity == WARNING:
        message = (
            f"sid {rule.sid} (rev {old.rev}, {where}) is replaced by this rule with rev {rule.rev}"
        )
        code = "sid-replaced"
    else:
        message = f"duplicate signature: sid {rule.sid} is already loaded ({where}, rev {old.rev})"
        code = "duplicate-sid"
    return Diagnostic(
        span.file,
        span.line,
        span.col,
        span.end_col,
        severity,
        code,
        message,
        rule.sid,
        rule.raw,
        "give each rule a unique sid, or raise rev to replace the old rule",
    )


def _flowbit_warnings(rules: list[Rule]) -> list[Diagnostic]:
    set_names: set[str] = set()
    for rule in rules:
        for fb in rule.flowbits:
            if not fb.is_check and fb.cmd is not FlowbitCmd.NOALERT:
                set_names.update(fb.names)
    out: list[Diagnostic] = []
    for rule in rules:
        for fb in rule.flowbits:
            if not fb.is_check:
                continue
            for name in fb.names:
                if name in set_names:
                    continue
                col = rule.raw.find(name, rule.raw.find("flowbits")) + 1
                span = (
                    Span(rule.span.file, rule.span.line, col, col + len(name))
                    if col > 0
                    else rule.span
                )
                out.append(
                    Diagnostic(
                        span.file,
                        span.line,
                        span.col,
                        span.end_col,
                        WARNING,
                        "flowbit-never-set",
                        f"flowbit '{name}' is checked but never set by any loaded rule",
                        rule.sid,
                        rule.raw,
                    )
                )
    return out


# --- warm-load cache -----------------------------------------------------------------


def cache_dir() -> Path:
    return rule_cache.cache_dir()


@functools.cache
def _parser_fingerprint() -> bytes:
    """Identifies the rule-parsing code itself (name, size, mtime of every source file
    that shapes a parsed rule), so a cached parse never outlives a change of the code
    that produced it, even within one version (editable installs, upgrades in place)."""
    root = Path(ruleengine.__file__).parent
    # the grammar ships as package ruleengine.grammar (top-level grammar/ in the repo)
    spec = importlib.util.find_spec("ruleengine.grammar")
    grammar = Path(spec.origin).parent if spec is not None and spec.origin else root
    # app-layer packages register buffers, keywords and event names that rules parse against
    files = [root / "buffers.py", *sorted((root / "rules").glob("*.py")),
             *sorted((root / "keywords").glob("*.py")),
             *sorted((root / "applayer").rglob("*.py")), *sorted(grammar.glob("*.lark"))]
    h = hashlib.sha256()
    for path in files:
        try:
            st = path.stat()
        except OSError:
            continue
        h.update(f"{path.name}:{st.st_size}:{st.st_mtime_ns};".encode())
    return h.digest()


def _cache_key(data: bytes, vars_key: bytes, name: str) -> str:
    h = hashlib.sha256()
    for part in (
        ruleengine.__version__.encode(),
        _parser_fingerprint(),
        str(CACHE_FORMAT).encode(),
        name.encode(),
        vars_key,
        data,
    ):
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.hexdigest()


def _cache_get(key: str) -> _FileResult | None:
    try:
        blob = (cache_dir() / f"{key}.pickle").read_bytes()
        result = rule_cache.loads(blob)
    except Exception:  # missing, truncated or from another version: parse instead
        return None
    return result if isinstance(result, _FileResult) else None


def _cache_put(key: str, result: _FileResult) -> None:
    try:
        directory = cache_dir()
        directory.mkdir(parents=True, exist_ok=True)
        blob = rule_cache.dumps(result)
        fd, tmp = tempfile.mkstemp(dir=directory, suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            fh.write(blob)
        os.replace(tmp, directory / f"{key}.pickle")
    except Exception:  # a read-only home must not break loading
        return


__all__ = [
    "MAX_RULE_BYTES",
    "RuleSet",
    "cache_dir",
    "classification",
    "gc_paused",
    "load_rule_files",
    "load_rule_text",
    "parse_rule",
]
