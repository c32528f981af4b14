"""bench/balance.py still runs every case (a smoke test: never how fast)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.usefixtures("frozen_heap")  # tests/conftest.py says why


@pytest.mark.slow
def test_balance_benchmark_runs_every_case(capsys: pytest.CaptureFixture[str]) -> None:
    from bench import balance

    results = balance.main(["--quick"])
    out = capsys.readouterr().out
    for strategy in ("RoundRobin", "LeastConnections", "Weighted", "IPHash", "PowerOfTwo"):
        assert strategy in results["sims"], strategy
        assert results["pickers"][strategy] > 0, strategy
    assert results["pickers"]["uhashring get_node"] > 0
    assert set(results["quality"]) == {"tailguard IPHash", "uhashring HashRing"}
    for client in ("httpx + BalancedTransport", "aiohttp + BalancedSession"):
        assert results["http"][client] > 0, client
    assert len(results["targets"]) == 4
    assert results["http_ratio"] > 0
    assert results["python_us"]["balanced"] > results["python_us"]["bare"] > 0
    assert "aiohttp + BalancedSession / aiohttp bare requests/s" in out
    assert "Targets" in out
