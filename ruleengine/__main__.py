"""``python -m ruleengine``."""

import sys

from ruleengine.cli import main

sys.exit(main())
