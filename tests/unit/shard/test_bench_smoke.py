"""The shard benchmark still runs (a smoke test: every case ran, never how fast)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.usefixtures("frozen_heap")  # tests/conftest.py says why


@pytest.mark.slow
def test_shard_benchmark_runs_every_case(capsys: pytest.CaptureFixture[str]) -> None:
    from bench import shard

    results = shard.main(["--quick"])
    out = capsys.readouterr().out
    for section in ("1. Routing, ns per key", "2. Key movement", "[INFO] JumpHash(8) int"):
        assert section in out, section
    for spec in shard.specs():
        assert spec.label in out, spec.key
        assert results["cases"][spec.key]["median_ns"] > 0, spec.key
    for name in shard.STRATEGIES:
        assert set(results["movement"][name]) == {"4->5", "8->9", "16->17"}, name
    assert len(results["targets"]) == 6
    assert all(t["passed"] for t in results["targets"]), results["targets"]
