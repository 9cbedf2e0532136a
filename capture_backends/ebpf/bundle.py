"""Where the bundled eBPF programs live (package ``capture_backends.bpf``, the repo's bpf/).

A module of its own so that the loaders can find the bundle without importing the package
that chooses between them.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path


def bundled_dir() -> Path:
    """Directory of the bundled programs (sources, headers, built objects)."""
    return Path(str(importlib.resources.files("capture_backends.bpf")))


def bundled_path(name: str) -> Path:
    return bundled_dir() / name
