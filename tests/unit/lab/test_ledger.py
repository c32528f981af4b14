"""The lab's ledger and registry, without running anything."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from lab import experiments
from lab.ledger import MARGIN, Ledger, Row, verdict
from shop.config import Naive


@pytest.mark.parametrize(
    ("on", "off", "lower", "said"),
    [
        (2.0, 46.0, True, "helps"),  # fewer statements with the practice
        (46.0, 2.0, True, "hurts"),
        (100.0, 105.0, True, "no clear difference"),
        (3000.0, 700.0, False, "helps"),  # more requests/s with the practice
        (700.0, 3000.0, False, "hurts"),
    ],
)
def test_the_verdict_is_the_datas(on: float, off: float, lower: bool, said: str) -> None:
    ratio, verdict_said = verdict(on, off, lower_is_better=lower)
    assert verdict_said == said
    assert (ratio >= MARGIN) == (said == "helps")


def test_a_zero_figure_does_not_divide_by_zero() -> None:
    ratio, said = verdict(0.0, 5.0, lower_is_better=True)
    assert math.isinf(ratio)
    assert said == "helps"
    assert verdict(0.0, 0.0, lower_is_better=True) == (1.0, "no clear difference")


def test_every_practice_has_one_experiment_in_the_issues_order() -> None:
    found = experiments.load()
    assert [e.practice for e in found] == experiments.ORDER
    names = {p.value for p in Naive}
    for experiment in found:
        assert experiment.practice in names
        assert experiment.metric
        for practice in filter(None, experiment.naive_off.split(",")):
            assert practice in names


def test_the_ledger_json_has_the_issues_keys(tmp_path: Path) -> None:
    ledger = Ledger(settings={"out": "x"})
    ledger.rows.append(Row.of("cache", "reads", "rps", "requests/s", 3000.0, 700.0,
                              lower_is_better=False, details={"on": {"p99_ms": 8.0}}))  # fmt: skip
    ledger.rows.append(Row.of("jitter", "x", "peak", "1/s", 0.0, 10.0, lower_is_better=True))
    ledger.write(tmp_path / "ledger.json")
    data = json.loads((tmp_path / "ledger.json").read_text())
    assert data["settings"] == {"out": "x"}
    row = data["rows"][0]
    assert {"practice", "metric", "on", "off", "ratio", "verdict", "details"} <= set(row)
    assert row["ratio"] == pytest.approx(3000 / 700, rel=1e-3)
    assert data["rows"][1]["ratio"] == "inf"  # JSON has no infinity
