"""Fast pickling of loaded rules for the warm-load cache, and the cache of other
compiled artefacts (``cached``: hyperscan databases of the detection engine).

The model's frozen dataclasses unpickle through a slow Python ``__setstate__`` and
``ipaddress`` networks re-parse their text; a per-pickler ``dispatch_table`` reduces
them to positional constructor calls instead (no global copyreg side effects).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import ipaddress
import os
import pickle
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from ruleengine.rules import model

_FROZEN = (
    model.Span,
    model.AddressSet,
    model.PortSet,
    model.IntCondition,
    model.FlowCondition,
    model.Flowbit,
    model.TcpFlags,
    model.Threshold,
    model.PacketCondition,
)


def _net4(addr: int, prefix: int) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network((addr, prefix))


def _net6(addr: int, prefix: int) -> ipaddress.IPv6Network:
    return ipaddress.IPv6Network((addr, prefix))


def _reduce_net4(net: ipaddress.IPv4Network) -> tuple[Any, tuple[int, int]]:
    return _net4, (int(net.network_address), net.prefixlen)


def _reduce_net6(net: ipaddress.IPv6Network) -> tuple[Any, tuple[int, int]]:
    return _net6, (int(net.network_address), net.prefixlen)


def _positional(cls: type) -> Any:
    names = tuple(f.name for f in dataclasses.fields(cls))

    def reduce(obj: Any) -> tuple[type, tuple[Any, ...]]:
        return cls, tuple(getattr(obj, n) for n in names)

    return reduce


_DISPATCH: dict[type, Any] = {cls: _positional(cls) for cls in _FROZEN}
_DISPATCH[ipaddress.IPv4Network] = _reduce_net4
_DISPATCH[ipaddress.IPv6Network] = _reduce_net6


def dumps(obj: Any) -> bytes:
    buf = io.BytesIO()
    pickler = pickle.Pickler(buf, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.dispatch_table = _DISPATCH
    pickler.dump(obj)
    return buf.getvalue()


def loads(blob: bytes) -> Any:
    return pickle.loads(blob)


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/ruleengine`` (default ``~/.cache/ruleengine``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ruleengine"


_T = TypeVar("_T")


def cached(kind: str, parts: Iterable[bytes], build: Callable[[], _T],
           dump: Callable[[_T], bytes], load: Callable[[bytes], _T]) -> _T:
    """What ``build()`` makes from ``parts`` (everything it depends on, versions
    included), read back with ``load`` from the cache when an earlier run stored it
    (``dump``). A missing, unreadable or unloadable entry is built again; a cache that
    cannot be written (read-only home) only costs the build."""
    h = hashlib.sha256(kind.encode())
    for part in parts:
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    path = cache_dir() / f"{kind}-{h.hexdigest()}.bin"
    try:
        return load(path.read_bytes())
    except Exception:  # not there, truncated, or from another library build
        pass
    value = build()
    try:
        blob = dump(value)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            fh.write(blob)
        os.replace(tmp, path)
    except Exception:
        pass
    return value
