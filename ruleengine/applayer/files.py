"""Files carried by an app-layer protocol (Suricata's ``util-file.c``): what the ``fileinfo``
EVE event and the file keywords read.

A protocol opens a :class:`AppFile` when the first byte of a file's content arrives (an
HTTP response or PUT/POST body, a multipart part with a filename), appends the content as
it is parsed, marks gaps, and closes it ``CLOSED`` when the content ended, or ``TRUNCATED``
when it was cut short (a body limit, a stream gap the parser could not cross, the flow
ending first). The file keeps only counters and, when asked, running hashes: never its
content, so a file costs a few hundred bytes whatever its size.

Hashes are computed only for the algorithms of :class:`FilePolicy` (``outputs.eve-log``
``files: force-hash: [md5, sha1, sha256]``), as Suricata only hashes when told. The file
type (libmagic's description, EVE ``fileinfo.magic`` and the ``file.magic`` buffer) is
looked up only with ``files: force-magic: yes`` or a rule using ``filemagic`` /
``file.magic``: the file then keeps its first ``MAGIC_HEAD`` bytes, and the type is
computed once the file has ``MAGIC_MIN_SIZE`` bytes or is closed (Suricata's
``FILEMAGIC_MIN_SIZE``), through python-magic over Debian's libmagic1 when installed.
This module imports nothing of the engine beyond ``jsontext``.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ruleengine.applayer.jsontext import text

# Suricata's SC_FILENAME_MAX: longer names are cut (and the protocol raises an event).
MAX_FILENAME = 4096
MAGIC_HEAD = 4096  # bytes kept for libmagic (its default buffer is smaller still)
MAGIC_MIN_SIZE = 512  # FILEMAGIC_MIN_SIZE: an open file is typed once it has this much
HASH_NAMES = ("md5", "sha1", "sha256")


class FileState(enum.IntEnum):
    OPENED = 1
    CLOSED = 2
    TRUNCATED = 3
    ERROR = 4


@dataclass(frozen=True, slots=True)
class FilePolicy:
    """How files are tracked: which hashes to compute, whether to type them (magic)."""

    hashes: frozenset[str] = frozenset()
    magic: bool = False

    @classmethod
    def from_files_options(cls, options: Any) -> tuple[FilePolicy, list[str]]:
        """The ``files`` entry of ``outputs.eve-log.types`` (``force-hash: [md5, sha256]``,
        also written as a comma separated string); unknown algorithms are reported."""
        if not isinstance(options, dict):
            return cls(), []
        magic = str(options.get("force-magic", "no")).strip().lower() in (
            "yes", "true", "on", "1")
        raw = options.get("force-hash")
        if raw is None:
            return cls(magic=magic), []
        items: Iterable[Any] = raw if isinstance(raw, list) else str(raw).split(",")
        hashes: set[str] = set()
        warnings: list[str] = []
        for item in items:
            name = str(item).strip().lower()
            if name in HASH_NAMES:
                hashes.add(name)
            elif name:
                warnings.append(f"outputs.eve-log.types.files.force-hash: unknown hash "
                                f"'{name}' (md5, sha1, sha256)")
        return cls(frozenset(hashes), magic), warnings


_NO_HASHING = FilePolicy()


class AppFile:
    """One file of a transaction, in one direction."""

    __slots__ = ("_hashers", "_head", "_magic", "gaps", "logged", "name", "size", "state",
                 "to_server", "tx_id")

    def __init__(self, name: bytes, *, to_server: bool, tx_id: int,
                 policy: FilePolicy = _NO_HASHING) -> None:
        self.name = name[:MAX_FILENAME]
        self.to_server = to_server
        self.tx_id = tx_id
        self.size = 0
        self.state = FileState.OPENED
        self.gaps = False
        self.logged = False  # set by the output that wrote its event
        self._hashers: dict[str, Any] | None = (
            {name: hashlib.new(name) for name in sorted(policy.hashes)}
            if policy.hashes else None
        )
        self._head: bytearray | None = bytearray() if policy.magic else None
        self._magic: str | None = None

    @property
    def is_open(self) -> bool:
        return self.state == FileState.OPENED

    def append(self, data: bytes) -> None:
        if self.state != FileState.OPENED or not data:
            return
        self.size += len(data)
        head = self._head
        if head is not None and len(head) < MAGIC_HEAD and self._magic is None:
            head += data[:MAGIC_HEAD - len(head)]
        if self._hashers is not None:
            for hasher in self._hashers.values():
                hasher.update(data)

    def gap(self) -> None:
        """Content is missing: the file is kept, its hashes can no longer be trusted."""
        if self.state == FileState.OPENED:
            self.gaps = True

    def close(self, *, truncated: bool = False) -> None:
        if self.state == FileState.OPENED:
            self.state = FileState.TRUNCATED if truncated else FileState.CLOSED

    @property
    def magic(self) -> str | None:
        """libmagic's description of the content (None: not asked for, not enough data
        yet, or libmagic not available); computed once."""
        if self._magic is not None:  # "" once looked up without an answer
            return self._magic or None
        if self._head is None:
            return None
        if self.state == FileState.OPENED and self.size < MAGIC_MIN_SIZE:
            return None
        self._magic = describe(bytes(self._head)) or ""
        self._head = None  # looked up once, as Suricata does: the head is not needed
        return self._magic or None

    def hexdigest(self, algorithm: str) -> str | None:
        """The hash of the content, when it was computed (and no gap spoilt it)."""
        if self._hashers is None or self.gaps:
            return None
        hasher = self._hashers.get(algorithm)
        return None if hasher is None else str(hasher.hexdigest())

    def __repr__(self) -> str:
        return (f"AppFile({self.name!r}, {'ts' if self.to_server else 'tc'}, tx {self.tx_id}, "
                f"{self.size} bytes, {self.state.name})")


def names_in(files: Iterable[AppFile], to_server: bool) -> list[bytes] | None:
    """The ``file.name`` buffer: the names of one direction's files (None while there are
    none, so the rule waits for them)."""
    names = [file.name for file in files if file.to_server == to_server]
    return names or None


def magics_in(files: Iterable[AppFile], to_server: bool) -> list[bytes] | None:
    """The ``file.magic`` buffer: the types of one direction's files that have one."""
    found = [m.encode("utf-8", "replace") for file in files
             if file.to_server == to_server and (m := file.magic) is not None]
    return found or None


_magic_state: list[Any] = []  # [python-magic's Magic or None], loaded on first use


def magic_available() -> bool:
    """python-magic imports and libmagic loads here."""
    return _magic_instance() is not None


def _magic_instance() -> Any:
    if not _magic_state:
        try:
            import magic

            _magic_state.append(magic.Magic())
        except Exception:  # not installed, or libmagic / its database missing
            _magic_state.append(None)
    return _magic_state[0]


def describe(data: bytes) -> str | None:
    """libmagic's text for ``data`` (``magic_buffer``), None when it cannot tell."""
    instance = _magic_instance()
    if instance is None or not data:
        return None
    try:
        result = instance.from_buffer(data)
    except Exception:  # a libmagic error is no file type, never a crash
        return None
    return str(result) if result else None


def fileinfo_object(file: AppFile) -> dict[str, Any]:
    """The ``fileinfo`` object of an EVE event (``output-json.c`` EveFileInfo): md5 and sha1
    only for a closed file, sha256 whenever computed, ``stored`` false (no file store)."""
    obj: dict[str, Any] = {"filename": text(file.name) or ""}
    magic = file.magic
    if magic is not None:
        obj["magic"] = magic
    obj["gaps"] = file.gaps
    obj["state"] = file.state.name
    if file.state == FileState.CLOSED:
        for algorithm in ("md5", "sha1"):
            digest = file.hexdigest(algorithm)
            if digest is not None:
                obj[algorithm] = digest
    sha256 = file.hexdigest("sha256")
    if sha256 is not None:
        obj["sha256"] = sha256
    obj["stored"] = False
    obj["size"] = file.size
    obj["tx_id"] = file.tx_id
    return obj
