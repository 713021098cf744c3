"""``python -m harness``: the sockspec command line."""

import sys

from harness._cli.main import main

sys.exit(main())
