"""The ledger: one row a practice, its headline figure on and off, their ratio, a verdict.

The verdict is the data's: a practice whose figure is better by at least ``MARGIN`` with it on
"helps", worse by as much "hurts", else "no clear difference". Nothing is hard-coded.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["MARGIN", "Ledger", "Row", "verdict"]

MARGIN = 1.10
"""How much better a figure must be (10 %) for a verdict other than no clear difference."""


def verdict(on: float, off: float, *, lower_is_better: bool) -> tuple[float, str]:
    """(improvement, verdict): improvement > 1 means the practice did better than its twin."""
    if lower_is_better:
        improvement = off / on if on > 0 else (float("inf") if off > 0 else 1.0)
    else:
        improvement = on / off if off > 0 else (float("inf") if on > 0 else 1.0)
    if improvement >= MARGIN:
        return improvement, "helps"
    if improvement <= 1 / MARGIN:
        return improvement, "hurts"
    return improvement, "no clear difference"


@dataclass
class Row:
    """One practice: ``metric`` is the headline figure, ``on`` with the practice, ``off`` with
    its naive twin; ``ratio`` is off / on for a lower-is-better figure, on / off otherwise
    (above 1: the practice did better); the other figures are in ``details``."""

    practice: str
    experiment: str
    metric: str
    unit: str
    on: float
    off: float
    ratio: float
    verdict: str
    lower_is_better: bool
    details: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        practice: str,
        experiment: str,
        metric: str,
        unit: str,
        on: float,
        off: float,
        *,
        lower_is_better: bool,
        details: dict[str, Any] | None = None,
    ) -> Row:
        ratio, said = verdict(on, off, lower_is_better=lower_is_better)
        return cls(
            practice,
            experiment,
            metric,
            unit,
            on,
            off,
            round(ratio, 3),
            said,
            lower_is_better,
            details or {},
        )


@dataclass
class Ledger:
    """The demo's rows and the run's settings."""

    rows: list[Row] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        rows = []
        for row in self.rows:
            data = asdict(row)
            data["ratio"] = _finite(row.ratio)
            rows.append(data)
        return {"rows": rows, "settings": self.settings, **self.extra}

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2, default=str) + "\n")


def _finite(value: float) -> float | str:
    return value if value == value and abs(value) != float("inf") else str(value)
