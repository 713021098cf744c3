"""``python -m harness``: the sockspec command line."""

import sys

from ._cli import main

sys.exit(main())
