"""bpf/flow_keys.h (C) and capture_backends/ebpf/layout.py (Python) describe the same bytes."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from capture_backends.ebpf import layout

BPF_DIR = Path(__file__).resolve().parents[2] / "bpf"

PROBE = r"""
#include <stdio.h>
#include <stddef.h>
#include "flow_keys.h"
#define F(T, f) printf("%s.%s %zu\n", #T, #f, offsetof(struct T, f));
int main(void) {
    printf("flow_key_v4 %zu\nflow_key_v6 %zu\nflow_counters %zu\n",
           sizeof(struct flow_key_v4), sizeof(struct flow_key_v6), sizeof(struct flow_counters));
    F(flow_key_v4, a_ip) F(flow_key_v4, b_ip) F(flow_key_v4, a_port) F(flow_key_v4, b_port)
    F(flow_key_v4, vlan0) F(flow_key_v4, vlan1) F(flow_key_v4, proto) F(flow_key_v4, pad)
    F(flow_key_v6, a_ip) F(flow_key_v6, b_ip) F(flow_key_v6, a_port) F(flow_key_v6, b_port)
    F(flow_key_v6, vlan0) F(flow_key_v6, vlan1) F(flow_key_v6, proto) F(flow_key_v6, pad)
    F(flow_counters, pkts_ab) F(flow_counters, bytes_ab) F(flow_counters, pkts_ba)
    F(flow_counters, bytes_ba) F(flow_counters, last_ns)
    return 0;
}
"""


@pytest.fixture(scope="module")
def c_layout(tmp_path_factory: pytest.TempPathFactory) -> dict[str, int]:
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc not installed (APT_PACKAGES in the Makefile lists it)")
    tmp = tmp_path_factory.mktemp("layout")
    src, exe = tmp / "probe.c", tmp / "probe"
    src.write_text(PROBE)
    subprocess.run([gcc, "-Wall", "-Werror", f"-I{BPF_DIR}", str(src), "-o", str(exe)],
                   check=True, capture_output=True, text=True)
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
    return {name: int(value) for name, value in (line.split() for line in out.splitlines())}


def test_struct_sizes_agree(c_layout: dict[str, int]) -> None:
    assert c_layout["flow_key_v4"] == layout.KEY_V4.size == 20
    assert c_layout["flow_key_v6"] == layout.KEY_V6.size == 44
    assert c_layout["flow_counters"] == layout.COUNTERS.size == 40


@pytest.mark.parametrize(("struct_name", "fields"), [
    ("flow_key_v4", layout.KEY_V4_FIELDS),
    ("flow_key_v6", layout.KEY_V6_FIELDS),
    ("flow_counters", layout.COUNTERS_FIELDS),
])
def test_field_offsets_agree(c_layout: dict[str, int], struct_name: str,
                             fields: tuple[tuple[str, int], ...]) -> None:
    c_fields = {k.split(".", 1)[1]: v for k, v in c_layout.items()
                if k.startswith(struct_name + ".")}
    assert c_fields == dict(fields)


def test_python_struct_offsets_match_declared_fields() -> None:
    """The declared offsets are those the struct format really produces."""
    key = layout.KEY_V4.pack(b"\x01" * 4, b"\x02" * 4, 0x0303, 0x0404, 0x0505, 0x0606, 7)
    assert [key[off] for _, off in layout.KEY_V4_FIELDS] == [1, 2, 3, 4, 5, 6, 7, 0]
    key6 = layout.KEY_V6.pack(b"\x01" * 16, b"\x02" * 16, 0x0303, 0x0404, 0x0505, 0x0606, 7)
    assert [key6[off] for _, off in layout.KEY_V6_FIELDS] == [1, 2, 3, 4, 5, 6, 7, 0]
    values = layout.COUNTERS.pack(1, 2, 3, 4, 5)
    assert [values[off] for _, off in layout.COUNTERS_FIELDS] == [1, 2, 3, 4, 5]
