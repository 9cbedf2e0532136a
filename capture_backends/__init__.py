"""Capture backends: where packets come from and where verdicts/bypasses go.

``BACKENDS`` maps a backend name to a zero-argument loader returning the backend
class. Loaders import on call, so importing this registry never pulls in optional
libraries (BCC, netfilterqueue): ``BACKENDS["pcap"]()(path)`` opens a capture file.
Register a backend by adding an entry (a plain dict, no import side effects)::

    BACKENDS["af-packet"] = lambda: _load("capture_backends.af_packet", "AfPacketBackend")
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from capture_backends.base import CaptureBackend


def _load(module: str, attr: str) -> type[CaptureBackend]:
    cls: type[CaptureBackend] = getattr(importlib.import_module(module), attr)
    return cls


BackendLoader = Callable[[], type[CaptureBackend]]

BACKENDS: dict[str, BackendLoader] = {
    "pcap": lambda: _load("capture_backends.pcap_file", "PcapFileBackend"),
    "memory": lambda: _load("capture_backends.memory", "MemoryBackend"),
    "af-packet": lambda: _load("capture_backends.af_packet", "AfPacketBackend"),
    "nfq": lambda: _load("capture_backends.nfqueue", "NfqBackend"),
}


def load_backend(name: str) -> type[CaptureBackend]:
    """The backend class registered as ``name``; ``KeyError`` lists the known names."""
    try:
        loader = BACKENDS[name]
    except KeyError:
        known = ", ".join(sorted(BACKENDS))
        raise KeyError(f"unknown capture backend {name!r} (known: {known})") from None
    return loader()


__all__ = ["BACKENDS", "BackendLoader", "load_backend"]
