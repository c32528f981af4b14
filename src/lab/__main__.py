"""``python -m lab``: the demo."""

from lab.cli import main

raise SystemExit(main())
