"""``ruleengine run`` as Suricata's command line: -T, the informational flags, -S /dev/null
and empty rule files, -S files that refuse the start, --runmode. The real command runs in a
subprocess where its exit code and output are the point."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest

from capture_backends.af_packet import AfPacketConfig
from ruleengine.applayer import registry as applayer
from ruleengine.commands import run as run_module
from ruleengine.commands.info import (
    APP_LAYER_HEADER,
    KEYWORDS_HEADER,
    keyword_infos,
    list_keywords,
    optional_features,
)
from ruleengine.keywords import REGISTRY, Stage
from tests.rules.helpers import REPO

DEMO_PCAP = REPO / "examples" / "pcaps" / "http-demo.pcap"
GOOD = ('alert http any any -> any any (msg:"ok"; flow:to_server; http.method; '
        'content:"GET"; sid:1;)\n')
BAD = 'alert http any any -> any any (msg:"bad"; flow:to_server; http_urii; content:"x"; sid:2;)\n'
TEST_OK = "Configuration provided was successfully loaded. Exiting."


def cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # this checkout's code, not the installed one's (the subprocess runs in tmp_path)
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "ruleengine", *args], capture_output=True,
                          text=True, cwd=tmp_path, env=env, timeout=120)


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


# --- -T ------------------------------------------------------------------------------


def test_test_mode_ok_needs_no_capture(tmp_path: Path) -> None:
    rules = write(tmp_path, "good.rules", GOOD)
    proc = cli(tmp_path, "run", "-T", "-S", rules, "-l", str(tmp_path / "never"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == TEST_OK
    assert "1 rules successfully loaded" in proc.stderr
    assert not (tmp_path / "never").exists()  # -T writes nothing


def test_test_mode_ignores_the_capture_it_would_open(tmp_path: Path) -> None:
    rules = write(tmp_path, "good.rules", GOOD)
    proc = cli(tmp_path, "run", "-T", "-S", rules, "-r", str(tmp_path / "no-such.pcap"))
    assert proc.returncode == 0, proc.stderr
    proc = cli(tmp_path, "run", "-T", "-S", rules, "-i", "no-such-interface0")
    assert proc.returncode == 0, proc.stderr


def test_test_mode_fails_on_an_invalid_rule_with_its_location(tmp_path: Path) -> None:
    rules = write(tmp_path, "mixed.rules", GOOD + BAD)
    proc = cli(tmp_path, "run", "-T", "-S", rules)
    assert proc.returncode == 1
    col = BAD.index("http_urii") + 1
    assert f"{rules}:2:{col}: error: unknown rule keyword 'http_urii'" in proc.stderr
    assert TEST_OK not in proc.stdout
    assert "Traceback" not in proc.stderr


def test_test_mode_fails_on_a_missing_rule_file(tmp_path: Path) -> None:
    proc = cli(tmp_path, "run", "-T", "-S", write(tmp_path, "good.rules", GOOD),
               "-s", str(tmp_path / "gone.rules"))
    assert proc.returncode == 1
    assert f"rule file {tmp_path / 'gone.rules'} (-s): no such file or directory" in proc.stderr


def test_test_mode_fails_on_a_bad_config(tmp_path: Path) -> None:
    proc = cli(tmp_path, "run", "-T", "-S", "/dev/null", "-c", str(tmp_path / "none.yaml"))
    assert proc.returncode == 1
    assert "configuration file not found" in proc.stderr


# --- informational flags -------------------------------------------------------------


def test_list_keywords_short_form_has_every_registry_keyword(tmp_path: Path) -> None:
    for argv in (("--list-keywords",), ("run", "--list-keywords")):
        proc = cli(tmp_path, *argv)
        assert proc.returncode == 0, proc.stderr
        lines = proc.stdout.splitlines()
        assert lines[0] == KEYWORDS_HEADER
        listed = {line[2:].removesuffix(" (not built-in)") for line in lines[1:]}
        for spec in REGISTRY.specs:
            assert {spec.name, *spec.aliases} <= listed
        assert set(applayer.buffers()) <= listed and set(applayer.tx_keywords()) <= listed
        unsupported = {s.name for s in REGISTRY.specs if s.stage is Stage.UNSUPPORTED}
        assert {line[2:-len(" (not built-in)")] for line in lines
                if line.endswith(" (not built-in)")} >= unsupported


def test_list_keywords_detailed_forms() -> None:
    text, ok = list_keywords("all")
    assert ok
    names = [line[:-1] for line in text.splitlines() if not line.startswith("\t")]
    assert names == [i.name for i in keyword_infos()]
    assert "content:\n\tDescription: match bytes in the active buffer\n\tFeatures: none" in text
    csv, _ = list_keywords("csv")
    assert csv.splitlines()[0] == "name;description;app layer;features;documentation"
    assert all(line.count(";") == 5 for line in csv.splitlines()[1:])
    one, ok = list_keywords("http.uri")
    assert ok and one.startswith("= http.uri =\n") and "sticky buffer" in one
    _, ok = list_keywords("no-such-keyword")
    assert not ok


def test_list_app_layer_protos(tmp_path: Path) -> None:
    for argv in (("--list-app-layer-protos",), ("run", "--list-app-layer-protos")):
        proc = cli(tmp_path, *argv)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.splitlines() == [APP_LAYER_HEADER, *applayer.names()]


def test_build_info_reports_what_loads(tmp_path: Path) -> None:
    proc = cli(tmp_path, "--build-info")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.startswith("This is ruleengine version ")
    assert f"Python version: {sys.version.split()[0]}" in out
    for feature in optional_features():
        state = "yes" if feature.available else "no"
        assert any(line.startswith(feature.what + ":") and f" {state} (" in line
                   for line in out.splitlines()), feature
    # each optional module is reported as importable exactly when it is
    for feature in optional_features():
        if feature.label == "HAVE_HYPERSCAN":
            try:
                import hyperscan  # noqa: F401
                importable = True
            except ImportError:
                importable = False
            assert feature.available is importable
    assert cli(tmp_path, "run", "--build-info").stdout == out


def test_no_command_is_still_a_usage_error(tmp_path: Path) -> None:
    proc = cli(tmp_path)
    assert proc.returncode == 2 and "required: COMMAND" in proc.stderr


# --- no rules on purpose vs. rules that refuse the start -----------------------------


@pytest.mark.parametrize("rules", ["/dev/null", "empty.rules"])
def test_run_without_rules_on_purpose(tmp_path: Path, rules: str) -> None:
    if rules != "/dev/null":
        rules = write(tmp_path, rules, "# nothing yet\n\n")
    logdir = tmp_path / "out"
    proc = cli(tmp_path, "run", "-r", str(DEMO_PCAP), "-S", rules, "-l", str(logdir),
               "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert "notice: 0 rules loaded" in proc.stderr
    assert "error" not in proc.stderr
    assert (logdir / "eve.json").stat().st_size > 0  # the run went on: flows, stats


def test_missing_exclusive_rule_file_refuses_to_start(tmp_path: Path) -> None:
    logdir = tmp_path / "out"
    proc = cli(tmp_path, "run", "-r", str(DEMO_PCAP), "-S", "gone.rules", "-l", str(logdir))
    assert proc.returncode == 1
    assert "rule file gone.rules (-S): no such file or directory; not starting" in proc.stderr
    assert not (logdir / "eve.json").exists()


def test_exclusive_rule_file_whose_rules_all_fail_refuses_to_start(tmp_path: Path) -> None:
    rules = write(tmp_path, "bad.rules", BAD + BAD.replace("sid:2", "sid:3"))
    proc = cli(tmp_path, "run", "-r", str(DEMO_PCAP), "-S", rules, "-l", str(tmp_path / "o"))
    assert proc.returncode == 1
    assert f"no rule of {rules} (-S) loaded (2 errors); not starting" in proc.stderr
    assert f"{rules}:1:" in proc.stderr  # the rule errors themselves, file:line:col


def test_some_failing_rules_still_start_unless_init_errors_are_fatal(tmp_path: Path) -> None:
    rules = write(tmp_path, "mixed.rules", GOOD + BAD)
    base = ("run", "-r", str(DEMO_PCAP), "-S", rules, "--no-progress")
    proc = cli(tmp_path, *base, "-l", str(tmp_path / "a"))
    assert proc.returncode == 0, proc.stderr
    proc = cli(tmp_path, *base, "-l", str(tmp_path / "b"), "--init-errors-fatal")
    assert proc.returncode == 1 and "init errors are fatal" in proc.stderr


def test_fifo_rule_file_refuses_to_start(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.rules"
    os.mkfifo(fifo)
    proc = cli(tmp_path, "run", "-r", str(DEMO_PCAP), "-S", str(fifo), "-l", str(tmp_path / "o"))
    assert proc.returncode == 1
    assert "not a regular file or directory" in proc.stderr
    assert f"rule file {fifo} (-S) could not be loaded; not starting" in proc.stderr


# --- --runmode -----------------------------------------------------------------------


def test_unknown_runmode_is_an_error(tmp_path: Path) -> None:
    proc = cli(tmp_path, "run", "-r", str(DEMO_PCAP), "-S", "/dev/null", "--runmode", "turbo")
    assert proc.returncode == 1
    assert "unknown runmode 'turbo': choose one of single, autofp, workers" in proc.stderr


@pytest.mark.parametrize("runmode", ["autofp", "workers", "single"])
def test_pcap_runmode_runs_workers_unless_single(tmp_path: Path, runmode: str) -> None:
    # two workers whatever the machine: CPUs x threading.detect-thread-ratio
    ratio = 2.5 / len(os.sched_getaffinity(0))
    proc = cli(tmp_path, "run", "-r", str(DEMO_PCAP), "-S", "/dev/null", "-l",
               str(tmp_path / "o"), "--runmode", runmode, "--no-progress",
               "--set", f"threading.detect-thread-ratio={ratio}")
    assert proc.returncode == 0, proc.stderr
    assert "not honoured" not in proc.stderr
    assert ("2 worker processes" in proc.stderr) is (runmode != "single")


def test_af_packet_runmode_sets_the_workers() -> None:
    config = dataclasses.replace(AfPacketConfig(interface="eth9"), threads=4)
    assert run_module._afp_runmode("single", config).threads == 1
    assert run_module._afp_runmode("workers", config).threads == 4
    assert run_module._afp_runmode(None, config).threads == 4
    assert run_module._afp_runmode("autofp", config).threads == 4  # warned: runs as workers
