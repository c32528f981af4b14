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
