"""One module per practice, each with an ``EXPERIMENT`` (see ``lab.runner``), in ledger order."""

from __future__ import annotations

import importlib

from lab.runner import Experiment

__all__ = ["ORDER", "load"]

ORDER = [
    "eager_loading",
    "concurrency",
    "cache",
    "jitter",
    "timeouts",
    "breaker",
    "retry_budget",
    "bulkhead",
    "rate_limit",
    "balancing",
]
"""The ledger's rows, in the issue's order."""


def load(names: list[str] | None = None) -> list[Experiment]:
    """The experiments of ``names`` (default: every one in ORDER that exists)."""
    found = []
    for name in names or ORDER:
        try:
            module = importlib.import_module(f"lab.experiments.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"lab.experiments.{name}" or names:
                raise
            continue
        found.append(module.EXPERIMENT)
    return found
