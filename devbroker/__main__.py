"""``python -m devbroker``: see :mod:`devbroker.cli`."""

import sys

from devbroker.cli import main

sys.exit(main())
