"""One engine run per suricata-verify test per session, shared by every test that scores it."""

from __future__ import annotations

import pytest

from tests.accuracy.suricata_verify import EngineRun, SvTest, load_index, run_engine


class EngineRuns:
    """Runs a suricata-verify test through the engine on first use and keeps the result."""

    def __init__(self) -> None:
        self.tests: dict[str, SvTest] = {t["name"]: t for t in load_index()}
        self._runs: dict[str, EngineRun] = {}

    def get(self, name: str) -> EngineRun:
        if name not in self._runs:
            self._runs[name] = run_engine(self.tests[name])
        return self._runs[name]


@pytest.fixture(scope="session")
def sv_runs() -> EngineRuns:
    return EngineRuns()
