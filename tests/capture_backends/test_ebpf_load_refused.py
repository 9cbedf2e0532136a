"""The kernel refuses to load the bypass program (no CAP_BPF / CAP_SYS_ADMIN, issue 15 §3):
``ruleengine run --af-packet`` with ``bypass: yes`` stops at start-up with one message that
names the missing capability and the fix (as Suricata fails when its eBPF filter cannot be
loaded), not a verifier complaint and no traceback. Needs root (namespace ``nocap-*``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests import kernel

pytestmark = pytest.mark.kernel
DROPPED = "-bpf,-sys_admin,-perfmon"


def test_bypass_program_refused_without_cap_bpf(tmp_path: Path) -> None:
    kernel.require_root()
    kernel.require_command("setpriv")
    kernel.require_file(kernel.REPO_ROOT / "bpf" / "bypass_filter.o", "run `make -C bpf`")
    rules, yaml_file = tmp_path / "t.rules", tmp_path / "s.yaml"
    rules.write_text('alert ip any any -> any any (msg:"x"; bypass; sid:1;)\n')
    with kernel.netns_pair("nocap") as net:
        yaml_file.write_text(
            f"%YAML 1.1\n---\naf-packet:\n  - interface: {net.if_b}\n    bypass: yes\n"
            f"    ebpf-filter-file: {kernel.REPO_ROOT / 'bpf' / 'bypass_filter.o'}\n")
        env = dict(os.environ, PYTHONPATH=str(kernel.REPO_ROOT))
        proc = net.popen(net.ns_b, "setpriv", f"--inh-caps={DROPPED}",
                         f"--bounding-set={DROPPED}", sys.executable, "-m", "ruleengine",
                         "run", "--af-packet", net.if_b, "-c", str(yaml_file), "-S",
                         str(rules), "-l", str(tmp_path), "--no-progress",
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                         cwd=str(kernel.REPO_ROOT))
        out = proc.communicate(timeout=60)[0].decode()
        sockets = net.run(net.ns_b, "cat", "/proc/net/packet").stdout.splitlines()[1:]
    assert proc.returncode != 0, out
    assert "needs CAP_BPF (or CAP_SYS_ADMIN)" in out, out
    assert "bypass: no" in out, out
    assert "verifier log" not in out and "Traceback" not in out, out
    assert sockets == [], sockets  # nothing left open in the namespace
