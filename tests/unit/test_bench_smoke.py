"""The benchmarks still run (a smoke test: it checks that every case ran, never how fast)."""

from __future__ import annotations

import pytest

from bench import resilience

pytestmark = pytest.mark.usefixtures("frozen_heap")


@pytest.mark.slow
def test_resilience_benchmark_runs_every_case(capsys: pytest.CaptureFixture[str]) -> None:
    results = resilience.main(["--quick"])
    assert "Targets" in capsys.readouterr().out
    cases = results["cases"]
    for name in ("baseline", "pipeline", "tenacity", "aiobreaker", "semaphore", "asyncio_timeout"):
        assert cases[name]["median_ns"] > 0, name
    assert len(results["targets"]) == 5


@pytest.mark.slow
def test_cache_benchmark_runs_every_section(
    capsys: pytest.CaptureFixture[str], redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bench import cache

    monkeypatch.setenv("TAILGUARD_REDIS_URL", redis_url)
    results = cache.main(["--quick"])
    out = capsys.readouterr().out
    for section in ("L1 hit", "Stampede", "Invalidation", "Memory", "Hit ratio"):
        assert section in out, section
    assert results["targets"], "targets were computed"


@pytest.mark.slow
def test_ratelimit_benchmark_runs_every_section(
    capsys: pytest.CaptureFixture[str], redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bench import ratelimit

    monkeypatch.setenv("TAILGUARD_REDIS_URL", redis_url)
    results = ratelimit.main(["--quick"])
    out = capsys.readouterr().out
    for section in ("Redis checks/s", "Redis bytes per key", "In memory"):
        assert section in out, section
    assert results["targets"], "targets were computed"


@pytest.mark.slow
def test_observe_benchmark_runs_every_variant(capsys: pytest.CaptureFixture[str]) -> None:
    from bench import observe

    results = observe.main(["--quick"])
    out = capsys.readouterr().out
    for section in ("1. HTTP on loopback", "2. @monitor per call", "3. @profile_performance"):
        assert section in out, section
    for variant in observe.HTTP_VARIANTS:
        assert variant.label in out, variant.key
        assert results["http"][variant.key]["requests"] > 0, variant.key
    for key in ("bare", "monitor", "guide", "guide_bound", "profile"):
        for kind in ("async", "sync"):
            case = results["calls"][f"{key}_{kind}"]
            assert case["label"] in out, f"{key}_{kind}"
            assert case["median_ns"] > 0, f"{key}_{kind}"
    assert len(results["targets"]) == 5


@pytest.mark.slow
def test_observe_instructions_benchmark_counts_bare_and_goldensignals(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import shutil

    from bench import observe_instructions

    if shutil.which("valgrind") is None:
        pytest.skip("valgrind is not installed")
    results = observe_instructions.main(["--quick"])
    out = capsys.readouterr().out
    counts = results["instructions_per_request"]
    assert set(counts) == {"bare", "goldensignals"}
    assert 10_000 < counts["bare"] < counts["goldensignals"], counts  # it does add something
    assert "bare / GoldenSignals instructions per request" in out


def test_stack_benchmark_tables_from_synthetic_runs() -> None:
    # The stack itself takes ~40 s even with --quick (python -m bench stack --quick): here only
    # its /proc readings and its tables, on made-up runs.
    import os

    from bench import stack
    from tailguard.loadtest import Histogram, Result
    from tailguard.loadtest.results import Stats

    assert stack.cpu_seconds(os.getpid()) > 0
    assert os.getpid() in stack.children(os.getppid())
    assert set(stack.machine_cpu()) == {"machine", "irq", "steal"}

    def made_up(requests: int, p99_ms: float, served: dict[str, int]) -> stack.Run:
        latency = Histogram()
        latency.record(2_000, requests - requests // 50)
        latency.record(int(p99_ms * 1000), requests // 50)
        result = Result("stack", "closed", "2026-12-06T00:00:00Z", 2.0, {},
                        Stats(requests, {}, latency), {}, [])  # fmt: skip
        cpu = dict.fromkeys(
            ["load generator", "haproxy", "PostgreSQL", "redis", "simulators", "irq", "steal"],
            0.1,
        )
        cpu |= {f"shop-{i}": 0.5 for i in range(4)} | {"machine": 3.0}
        return stack.Run(result, cpu, served)

    runs = {n: [made_up(1000 * n, 10.0 * n, {})] for n in stack.COUNTS}
    throughput, cpu_table, eff2, eff4 = stack.scaling_tables(runs, markdown=True)
    assert "| 2 | 2,000 | 1,000 | 2.00x | 1.00 |" in throughput
    assert (eff2, eff4) == (1.0, 1.0)
    assert "| 2 | 5 | 5 | 25 + 25 |" in cpu_table  # % of a CPU over the 2 s run
    slow = {
        "roundrobin": [made_up(1000, 900.0, {"shop-0": 500, "shop-1": 500})],
        "leastconn": [made_up(1000, 90.0, {"shop-0": 800, "shop-1": 200})],
    }
    table, p99_ratio = stack.slow_table(slow, 500, markdown=False)
    assert "20%" in table
    assert round(p99_ratio, 1) == 0.1
