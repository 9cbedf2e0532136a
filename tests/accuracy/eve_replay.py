"""Stand-in engine for ``sv_score.py``: replays a recorded engine run instead of running one.

usage: python eve_replay.py RECORD_DIR -r PCAP -l LOGDIR [-S RULES ...] [ARGS ...]

sv_score.py calls it exactly as it calls the engine; it writes the arguments it was given to
RECORD_DIR/argv.json, copies RECORD_DIR/eve.json (if any) to LOGDIR and exits with the code in
RECORD_DIR/exit_code. So sv_score.py scores the very run this repository's scorer scored,
without running the engine a second time. Standard library only: it runs under ``python -S``.
"""

import json
import shutil
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    record, engine_args = Path(argv[0]), argv[1:]
    (record / "argv.json").write_text(json.dumps(engine_args))
    logdir = Path(engine_args[engine_args.index("-l") + 1])
    if (record / "eve.json").exists():
        shutil.copyfile(record / "eve.json", logdir / "eve.json")
    return int((record / "exit_code").read_text())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
