"""Fast pickling of loaded rules for the warm-load cache.

The model's frozen dataclasses unpickle through a slow Python ``__setstate__`` and
``ipaddress`` networks re-parse their text; a per-pickler ``dispatch_table`` reduces
them to positional constructor calls instead (no global copyreg side effects).
"""

from __future__ import annotations

import dataclasses
import io
import ipaddress
import pickle
from typing import Any

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
