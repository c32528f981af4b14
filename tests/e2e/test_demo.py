"""``make demo`` end to end: the ledger it writes, and its report in headless Chromium."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from lab.experiments import ORDER

ROOT = Path(__file__).resolve().parents[2]

# The demo takes 2-3 minutes: more than the suite's 120 s per test.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    # Its own session, so that a timeout here stops make, the demo and all it started.
    process = subprocess.Popen(
        ["make", "--no-print-directory", "demo", f"DEMO_ARGS=--out {out}"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=540)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)
    done = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    print(done.stdout[-6000:])
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out


def test_the_ledger_has_every_practice_measured(demo: Path) -> None:
    data = json.loads((demo / "ledger.json").read_text())
    rows = {row["practice"]: row for row in data["rows"]}
    assert list(rows) == ORDER
    for row in rows.values():
        for key in ("on", "off"):
            assert isinstance(row[key], int | float), row
            assert row[key] == row[key], row  # not NaN
        assert row["verdict"] in ("helps", "hurts", "no clear difference")
        assert row["details"]["on"]
        assert row["details"]["off"]
    assert data["settings"]["seconds"] > 0
    assert data["capacity"]["usl"]["sigma"] >= 0


def test_the_well_known_effects_show(demo: Path) -> None:
    rows = {row["practice"]: row for row in json.loads((demo / "ledger.json").read_text())["rows"]}
    eager = rows["eager_loading"]
    assert eager["off"] >= 10 * eager["on"], eager  # statements per request
    budget = rows["retry_budget"]
    assert budget["on"] <= 1.2, budget  # calls to payments per order attempt
    assert budget["off"] >= 2.0, budget
    breaker = rows["breaker"]
    assert breaker["on"] <= breaker["off"] / 10, breaker  # checkout p99, ms


async def test_the_report_opens_cleanly_in_chromium(demo: Path, tmp_path: Path) -> None:
    from tests.browser import open_page, png_size

    report = await open_page(demo / "report.html")
    (tmp_path / "report.png").write_bytes(report.screenshot_png)
    assert report.console_errors == []
    assert png_size(report.screenshot_png)[0] > 0
    assert "What each practice buys" in report.text
    assert "eager_loading" in report.text
