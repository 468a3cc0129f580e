"""Entry point for ``python -m abtest``."""

import sys

from abtest.cli import main

sys.exit(main())
