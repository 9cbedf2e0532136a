"""``python -m ruleengine``."""

import sys

try:
    from ruleengine import startup

    startup.install()  # before the imports below: they take a while on a loaded machine
    from ruleengine.cli import main
except KeyboardInterrupt as exc:
    command = sys.argv[1] if len(sys.argv) > 1 else None
    if "startup" not in globals():
        # SIGINT in the interpreter's first milliseconds, before ``startup`` (a SIGTERM
        # there still takes its default action)
        print("ruleengine: stopped before the run started; nothing was inspected",
              file=sys.stderr)
        sys.exit(0 if command == "run" else 130)
    startup.exit_now(startup.interrupted(exc, command))

from ruleengine.commands import final_signals  # after the start-up guard

final_signals.defer_until_exit = True
code = main()
if startup.was_interrupted:
    startup.exit_now(code)
sys.exit(code)
