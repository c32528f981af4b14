"""@profile_performance: timed always, profiled after a slow call, files bounded."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from tailguard.errors import ConfigurationError
from tailguard.observe import profile_performance


def count(registry: CollectorRegistry, name: str) -> float | None:
    return registry.get_sample_value("tailguard_profiled_duration_seconds_count", {"name": name})


async def test_fast_calls_are_only_timed(tmp_path: Path) -> None:
    registry = CollectorRegistry()

    @profile_performance(0.5, directory=tmp_path, registry=registry, name="fast")
    async def fast(x: int) -> int:
        return x * 2

    assert [await fast(i) for i in range(5)] == [0, 2, 4, 6, 8]
    assert count(registry, "fast") == 5
    assert fast.profiled.armed == 0  # type: ignore[attr-defined]
    assert fast.profiled.files == []  # type: ignore[attr-defined]


async def test_a_slow_call_arms_the_profiler_and_slow_profiled_calls_are_saved(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    registry = CollectorRegistry()
    delay = 0.05

    @profile_performance(0.02, directory=tmp_path, registry=registry, profile_next=2, name="db")
    async def query() -> str:
        await asyncio.sleep(delay)
        busy_until = time.perf_counter() + 0.005
        while time.perf_counter() < busy_until:  # some CPU for the sampler to see
            pass
        return "rows"

    caplog.set_level(logging.WARNING, "tailguard.observe.profiling")
    assert await query() == "rows"  # slow, unprofiled: arms
    assert query.profiled.armed == 2  # type: ignore[attr-defined]
    assert "profiling the next 2 call(s)" in caplog.text
    await query()  # profiled and slow: saved
    delay = 0.0
    await query()  # profiled and fast: dropped
    files = query.profiled.files  # type: ignore[attr-defined]
    assert len(files) == 1
    assert files[0].name.startswith("db-")
    assert "query" in files[0].read_text(encoding="utf-8")  # the profile names the function
    assert count(registry, "db") == 3
    assert query.profiled.armed == 0  # type: ignore[attr-defined]


def test_sampled_sync_calls_are_saved_and_old_files_removed(tmp_path: Path) -> None:
    registry = CollectorRegistry()

    @profile_performance(10.0, directory=tmp_path, sample_rate=1.0, keep=2, registry=registry)
    def work(n: int) -> int:
        return sum(range(n))

    for _ in range(4):
        assert work(1000) == 499500
    kept = work.profiled.files  # type: ignore[attr-defined]
    assert len(kept) == 2
    assert sorted(tmp_path.iterdir()) == sorted(kept)  # the two oldest were removed
    assert [p.name.split("-")[3] for p in kept] == ["3", "4"]  # name-stamp-pid-seq-ms


def test_an_exception_is_timed_and_re_raised(tmp_path: Path) -> None:
    registry = CollectorRegistry()

    @profile_performance(1.0, directory=tmp_path, registry=registry, name="boom")
    def boom() -> None:
        raise KeyError("x")

    with pytest.raises(KeyError):
        boom()
    assert count(registry, "boom") == 1


@pytest.mark.parametrize(
    "kwargs", [{"threshold": 0}, {"sample_rate": 1.5}, {"keep": 0}, {"profile_next": -1}]
)
def test_bad_settings_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigurationError, match="profile_performance"):
        profile_performance(**kwargs)  # type: ignore[arg-type]


def test_keep_counts_the_files_other_processes_left(tmp_path: Path) -> None:
    for pid in (101, 102, 103):  # what earlier workers of the same function wrote
        (tmp_path / f"work-20260101T000000-{pid}-1-5ms.html").write_text("old")
    (tmp_path / "work-other-20260101T000000-1-1-5ms.html").write_text("another function's")

    @profile_performance(10.0, directory=tmp_path, sample_rate=1.0, keep=2, name="work")
    def work() -> int:
        return 1

    work()
    left = sorted(p.name for p in tmp_path.iterdir())
    assert len([n for n in left if n.startswith("work-2")]) == 2
    assert "work-other-20260101T000000-1-1-5ms.html" in left


def test_a_profile_that_cannot_be_written_does_not_fail_the_call(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocked = tmp_path / "profiles"
    blocked.write_text("a file where the directory should be")

    @profile_performance(10.0, directory=blocked, sample_rate=1.0, name="ro")
    def work() -> int:
        return 7

    assert work() == 7
    assert "not saved" in caplog.text
