"""Multi-pattern matcher (MPM) for the prefilter: which literal patterns occur in a buffer.

Two interchangeable back-ends with identical results: Hyperscan (literal mode, one
``SINGLEMATCH`` report per pattern) when importable, pyahocorasick otherwise. Patterns
are added with their case-sensitivity; :meth:`Mpm.scan` returns the set of pattern ids
present in the data. An empty pattern is present in any buffer.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import platform
import threading
from collections.abc import Iterator
from typing import Any

import ahocorasick

from ruleengine.rules import cache as rule_cache

_hs: Any
try:  # optional dependency (pyproject extra "hyperscan")
    import hyperscan as _hs
except ImportError:  # pragma: no cover - depends on the machine
    _hs = None


def hyperscan_available() -> bool:
    return _hs is not None


def resolve_backend(mpm: str) -> str:
    """``auto`` -> ``hs`` when hyperscan imports, else ``ac``."""
    if mpm == "auto":
        return "hs" if _hs is not None else "ac"
    if mpm == "hs" and _hs is None:
        raise ValueError("mpm 'hs' requested but the hyperscan module is not installed")
    if mpm not in ("hs", "ac"):
        raise ValueError(f"unknown mpm {mpm!r} (auto, hs or ac)")
    return mpm


_batches = threading.local()  # the batch collecting this thread's hyperscan compiles


class CompileBatch:
    """Hyperscan compiles of one engine build, run in a forked child process.

    The hyperscan binding keeps the GIL while it compiles (ET Open: 47 databases, 0.7 s,
    the largest 0.3-0.6 s in one call), so an engine built in a thread beside a running
    packet loop (a live rule reload) would stall that loop for as long. The child compiles
    every database, serializes them (``hyperscan.dumpb``) down a pipe and exits with
    ``os._exit`` (no atexit handler, no inherited capture state touched); the builder's
    thread waits on the pipe without the GIL and loads them (``loadb``: a copy). If the child
    fails, the databases are compiled here after all, as without a batch."""

    def __init__(self) -> None:
        self.jobs: list[tuple[Mpm, list[tuple[tuple[bytes, bool], int]]]] = []
        self.in_child = 0  # databases that came from the child
        self.error: str | None = None

    def run(self) -> None:
        if not self.jobs:
            return
        try:
            blobs = self._compile_in_child()
        except (OSError, EOFError, pickle.UnpicklingError, ValueError) as exc:
            self.error = f"{type(exc).__name__}: {exc}"
            blobs = None
        for i, (mpm, pats) in enumerate(self.jobs):
            blob = blobs[i] if blobs is not None else None
            if isinstance(blob, bytes):
                mpm._db = _hs_load(blob)
                self.in_child += 1
            else:
                mpm._build_now(pats)
        self.jobs.clear()

    def _compile_in_child(self) -> list[bytes | str]:
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: compile, send, exit without running anything else
            code = 0
            try:
                os.close(read_fd)
                out: list[bytes | str] = []
                for mpm, pats in self.jobs:
                    try:
                        out.append(_hs.dumpb(mpm._compile_hs(pats)))
                    except Exception as exc:  # this one falls back in the parent
                        out.append(f"{type(exc).__name__}: {exc}")
                data = memoryview(pickle.dumps(out, protocol=pickle.HIGHEST_PROTOCOL))
                while data:
                    data = data[os.write(write_fd, data):]
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        os.close(write_fd)
        chunks = []
        try:
            while True:
                chunk = os.read(read_fd, 1 << 20)
                if not chunk:
                    break
                chunks.append(chunk)
        finally:
            os.close(read_fd)
            os.waitpid(pid, 0)
        result = pickle.loads(b"".join(chunks))
        if not isinstance(result, list) or len(result) != len(self.jobs):
            raise ValueError("the compile child sent no result")
        return result


@contextlib.contextmanager
def compile_in_child() -> Iterator[CompileBatch]:
    """Inside the block, this thread's hyperscan compiles are collected; they run in one
    forked child when the block ends (every Mpm built inside is usable after it)."""
    batch = CompileBatch()
    previous = getattr(_batches, "batch", None)
    _batches.batch = batch
    try:
        yield batch
    finally:
        _batches.batch = previous
    batch.run()


class Mpm:
    """Build once with :meth:`add` + :meth:`build`, then :meth:`scan` many times."""

    def __init__(self, backend: str = "auto") -> None:
        self.backend = resolve_backend(backend)
        self._ids: dict[tuple[bytes, bool], int] = {}
        self._always: set[int] = set()
        self._db: Any = None
        self._ac: Any = None
        self.fallback_reason: str | None = None
        self._short: list[tuple[int, bytes, bool]] = []  # (pid, pattern, nocase), AC only

    def add(self, pattern: bytes, nocase: bool) -> int:
        key = (pattern.lower() if nocase else pattern, nocase)
        pid = self._ids.get(key)
        if pid is None:
            pid = len(self._ids)
            self._ids[key] = pid
            if not pattern:
                self._always.add(pid)
        return pid

    def __len__(self) -> int:
        return len(self._ids)

    def build(self) -> None:
        pats = [(key, pid) for key, pid in self._ids.items() if key[0]]
        if not pats:
            return
        if self.backend == "hs":
            try:
                self._build_hs(pats)
                return
            except Exception as exc:  # same results with Aho-Corasick, just slower
                self.fallback_reason = f"hyperscan compile failed: {exc}"
                self.backend = "ac"
        self._build_ac(pats)

    def _build_hs(self, pats: list[tuple[tuple[bytes, bool], int]]) -> None:
        batch = getattr(_batches, "batch", None)
        if batch is not None:
            batch.jobs.append((self, pats))  # compiled when the batch runs
            return
        self._build_now(pats)

    def _build_now(self, pats: list[tuple[tuple[bytes, bool], int]]) -> None:
        try:
            self._db = self._compile_hs(pats)
        except Exception as exc:  # same results with Aho-Corasick, just slower
            self.fallback_reason = f"hyperscan compile failed: {exc}"
            self.backend = "ac"
            self._build_ac(pats)

    def _compile_hs(self, pats: list[tuple[tuple[bytes, bool], int]]) -> Any:
        assert _hs is not None
        db = _hs.Database(mode=_hs.HS_MODE_BLOCK)
        flags = [
            _hs.HS_FLAG_SINGLEMATCH | (_hs.HS_FLAG_CASELESS if nocase else 0)
            for (_, nocase), _ in pats
        ]
        # Regex mode with every byte escaped: hyperscan's literal mode (hs_compile_lit)
        # was seen matching 0xC0 against 0xE0 without CASELESS, so it is not used.
        expressions = [_escape(p) for (p, _), _ in pats]
        ids = [pid for _, pid in pats]

        def build() -> Any:
            db.compile(expressions=expressions, ids=ids, elements=len(pats), flags=flags)
            return db

        if len(pats) < _HS_CACHE_MIN:
            return build()
        # large databases come from the cache (ET HTTP: 0.37 s of a 0.67 s engine build)
        parts = (_hs.__version__.encode(), platform.machine().encode(),
                 repr((expressions, ids, flags)).encode())
        return rule_cache.cached("hs", parts, build, _hs.dumpb, _hs_load)

    def _build_ac(self, pats: list[tuple[tuple[bytes, bool], int]]) -> None:
        # One automaton over lower-cased keys; case-sensitive patterns are verified on
        # the original bytes at each reported position.
        # Very short patterns occur everywhere: one C-level substring test each is much
        # cheaper than walking their many automaton hits in Python.
        groups: dict[bytes, list[tuple[int, bytes | None]]] = {}
        for (pattern, nocase), pid in pats:
            if len(pattern) <= _AC_SHORT:
                self._short.append((pid, pattern, nocase))
                continue
            groups.setdefault(pattern.lower(), []).append((pid, None if nocase else pattern))
        if not groups:
            return
        # pyahocorasick works on str: latin-1 maps each byte to one code point.
        automaton = ahocorasick.Automaton()
        for key, entries in groups.items():
            automaton.add_word(key.decode("latin-1"), (len(key), tuple(entries)))
        automaton.make_automaton()
        self._ac = automaton

    def scan(self, data: bytes) -> set[int]:
        hits = set(self._always)
        if not data:
            return hits
        if self._db is not None:
            self._db.scan(data, match_event_handler=_hs_collect, context=hits)
            return hits
        low = data.lower()
        for pid, pattern, nocase in self._short:
            if pattern in (low if nocase else data):
                hits.add(pid)
        if self._ac is not None:
            for end, (klen, entries) in self._ac.iter(low.decode("latin-1")):
                for pid, exact in entries:
                    if exact is None or data[end - klen + 1 : end + 1] == exact:
                        hits.add(pid)
        return hits


_AC_SHORT = 3


_HS_CACHE_MIN = 200  # patterns: smaller databases compile in milliseconds


def _hs_load(blob: bytes) -> Any:
    assert _hs is not None
    db = _hs.loadb(blob, _hs.HS_MODE_BLOCK)
    db.scratch = _hs.Scratch(db)  # a loaded database comes without one
    return db


def _escape(pattern: bytes) -> bytes:
    return b"".join(b"\\x%02x" % c for c in pattern)


def _hs_collect(pid: int, start: int, end: int, flags: int, context: set[int]) -> None:
    context.add(pid)
