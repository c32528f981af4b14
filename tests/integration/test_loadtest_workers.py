"""Worker processes: ``--workers 2`` splits one load between two processes (spawned, each its
own event loop) and merges their histograms; a scenario file is loaded in each worker."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tailguard.cli import main
from tailguard.loadtest import Histogram, run_processes
from tests.unit.loadtest.responders import Responder

pytestmark = [pytest.mark.timeout(120), pytest.mark.slow]


def test_two_workers_run_one_load_between_them(tmp_path: Path) -> None:
    out = tmp_path / "run.json"
    with Responder() as server:
        argv = ["loadtest", server.url, "--rate", "400", "--duration", "1s", "--workers", "2"]
        assert main([*argv, "--json", str(out), "--quiet", "--slo", "errors<1%"]) == 0
        served = server.requests
    data = json.loads(out.read_text())
    assert data["totals"]["requests"] == served == 400
    assert data["settings"]["workers"] == 2
    assert data["settings"]["rate"] == 400
    assert data["settings"]["segment"] == "1/1"
    total = Histogram.decode(data["histograms"]["total"])
    assert total.total == 400
    assert data["totals"]["latency_ms"] == total.figures()
    assert sum(entry["requests"] for entry in data["timeline"]) == 400


def test_workers_load_the_scenario_file_themselves(tmp_path: Path) -> None:
    scenario = tmp_path / "scenario.py"
    scenario.write_text(
        "from tailguard.loadtest import User, task\n"
        "class Browse(User):\n"
        "    @task\n"
        "    async def home(self):\n"
        "        await self.client.get('/')\n"
    )
    seconds = []
    with Responder() as server:
        result = run_processes(
            str(scenario), workers=2, users=4, duration=30.0, max_requests=600,
            host=server.url, on_second=seconds.append,
        )  # fmt: skip
    assert result.settings["users"] == 4
    assert result.actions["home"].requests >= 600
    assert result.target == str(scenario)
    assert seconds  # each worker streamed its seconds for the progress display
