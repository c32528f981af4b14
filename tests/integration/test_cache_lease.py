"""Cross-instance stampede protection: 4 processes x 50 concurrent misses of one cold key."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

ROOT = Path(__file__).resolve().parents[2]


def storm(url: str, key: str, lease: str) -> list[list[str]]:
    start = time.time() + 1.5  # every process imports first, then all start together
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.integration._storm_worker", url, key, str(start), lease],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        results.append(json.loads(out))
    return results


@pytest.mark.slow
def test_with_a_lease_four_processes_make_one_loader_call(
    redis_url: str, redis_prefix: str
) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        key = f"{redis_prefix}cold"
        assert storm(redis_url, key, "2.0") == [["the value"]] * 4
        assert int(client.get(key + ":loads") or 0) == 1

        control = f"{redis_prefix}control"
        assert storm(redis_url, control, "none") == [["the value"]] * 4
        # without the lease each process loads once (single flight works only in-process)
        assert int(client.get(control + ":loads") or 0) > 1
    finally:
        client.close()
