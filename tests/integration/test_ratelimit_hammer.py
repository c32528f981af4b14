"""2 processes x 50 tasks hammering one key at 1000/minute on real Redis."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def hammer(url: str, algorithm: str, seconds: float) -> tuple[int, float]:
    key = f"tgtest:{uuid.uuid4().hex}"
    start = time.time() + 1.5
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.integration._ratelimit_worker",
                url,
                algorithm,
                key,
                str(start),
                str(seconds),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    total = 0
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        total += int(out)
    return total, seconds


@pytest.mark.slow
def test_sliding_log_admits_exactly_the_limit(redis_url: str) -> None:
    admitted, _ = hammer(redis_url, "sliding_log", 3.0)
    assert admitted == 1000


@pytest.mark.slow
def test_gcra_never_admits_more_than_burst_plus_elapsed_times_rate(redis_url: str) -> None:
    admitted, seconds = hammer(redis_url, "gcra", 3.0)
    ceiling = 1000 + (seconds + 0.5) * 1000 / 60  # burst (= limit) + the run's length at rate
    assert 1000 <= admitted <= ceiling
