"""Where ``../shared`` is: the corpus and tools kept beside the checkout, never copied into it.

A checkout at ``/work/main`` finds ``/work/shared`` as its sibling; a git worktree at
``/work/wt/NAME`` finds it one level further up, so the nearest ``shared`` above the repository
is taken.
"""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _nearest_shared() -> Path:
    for parent in REPO.parents:
        if (parent / "shared").is_dir():
            return parent / "shared"
    return REPO.parent / "shared"  # absent: the tests that need it skip


SHARED = _nearest_shared()
SV_CORPUS = SHARED / "corpus" / "suricata-verify"
SV_SCORE = SHARED / "tools" / "sv_score.py"
