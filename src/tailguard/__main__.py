"""``python -m tailguard``: the same as the ``tailguard`` command."""

from __future__ import annotations

import sys

from tailguard.cli import main

if __name__ == "__main__":
    sys.exit(main())
