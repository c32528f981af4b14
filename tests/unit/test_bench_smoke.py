"""The benchmarks still run (a smoke test: it checks that every case ran, never how fast)."""

from __future__ import annotations

import pytest

from bench import resilience


@pytest.mark.slow
def test_resilience_benchmark_runs_every_case(capsys: pytest.CaptureFixture[str]) -> None:
    results = resilience.main(["--quick"])
    assert "Targets" in capsys.readouterr().out
    cases = results["cases"]
    for name in ("baseline", "pipeline", "tenacity", "aiobreaker", "semaphore", "asyncio_timeout"):
        assert cases[name]["median_ns"] > 0, name
    assert len(results["targets"]) == 5
