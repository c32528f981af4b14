"""Run the benchmarks: ``python -m bench [NAME ...] [OPTIONS]``.

NAMEs come first. With no NAME, every ``bench/*.py`` module (except the ``_private`` ones) runs in turn;
``python -m bench resilience`` runs just that one. OPTIONS (``--quick``, ``--markdown``, ...)
are passed to each benchmark's ``main(argv)``. Always exits 0: benchmarks don't fail CI.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from collections.abc import Sequence
from pathlib import Path


def available() -> list[str]:
    """The benchmark modules in this package, in name order."""
    here = [str(Path(__file__).parent)]
    return sorted(m.name for m in pkgutil.iter_modules(here) if not m.name.startswith("_"))


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    split = next((i for i, a in enumerate(args) if a.startswith("-")), len(args))
    chosen, options = args[:split], args[split:]
    names = available()
    unknown = [name for name in chosen if name not in names]
    if unknown:
        print(f"unknown benchmark(s) {unknown}; available: {', '.join(names)}", file=sys.stderr)
        return 2
    for i, name in enumerate(chosen or names):
        if i:
            print()
        importlib.import_module(f"bench.{name}").main(options)
    return 0


if __name__ == "__main__":
    sys.exit(main())
