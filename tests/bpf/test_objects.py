"""The built eBPF objects in bpf/ match their sources.

`make -C bpf` rebuilds an object whenever its source, a header or the Makefile is newer; here
we check that nothing is stale and that compiling the sources again (same flags, into a
temporary directory) gives byte-identical objects (the build is reproducible:
-fdebug-prefix-map removes the checkout path)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

BPF_DIR = Path(__file__).resolve().parents[2] / "bpf"
OBJECTS = ("bypass_filter.o", "xdp_filter.o", "lb.o")


def _make() -> str:
    make = shutil.which("make")
    if make is None:
        pytest.skip("make not installed")
    return make


def test_objects_are_up_to_date() -> None:
    make = _make()
    missing = [o for o in OBJECTS if not (BPF_DIR / o).exists()]
    assert not missing, f"{missing} not built: run `make -C bpf` (part of `make setup`)"
    # -q: exit status 0 only when every target is up to date; nothing is built
    proc = subprocess.run([make, "-q", "-C", str(BPF_DIR)], capture_output=True, text=True)
    assert proc.returncode == 0, "bpf objects are older than their sources: run `make -C bpf`"


def test_objects_match_a_fresh_build(tmp_path: Path) -> None:
    make = _make()
    if shutil.which("clang-14") is None:
        pytest.skip("clang-14 not installed (APT_PACKAGES in the Makefile lists it)")
    work = tmp_path / "bpf"
    shutil.copytree(BPF_DIR, work, ignore=shutil.ignore_patterns("*.o", "__pycache__"))
    subprocess.run([make, "-s", "-C", str(work)], check=True, capture_output=True, text=True)
    for name in OBJECTS:
        fresh = (work / name).read_bytes()
        shipped = (BPF_DIR / name).read_bytes()
        assert fresh == shipped, f"bpf/{name} differs from a build of its source"
