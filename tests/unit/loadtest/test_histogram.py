"""Our sparse HDR histogram is hdrh's, bucket for bucket, figure for figure, byte for byte."""

from __future__ import annotations

import random

import pytest
from hdrh.histogram import HdrHistogram  # type: ignore[import-untyped]

from tailguard.loadtest._recorder import Recorder
from tailguard.loadtest.histogram import (
    COUNTS_LEN,
    HIGHEST_US,
    Histogram,
    highest_equivalent,
    index_of,
    lowest_equivalent,
    merge,
)


def samples(n: int, seed: int = 1) -> list[int]:
    rng = random.Random(seed)
    return [min(int(rng.lognormvariate(8, 2)), HIGHEST_US) for _ in range(n)]


def test_the_layout_and_every_index_are_hdrhs() -> None:
    reference = HdrHistogram(1, HIGHEST_US, 3)
    assert reference.counts_len == COUNTS_LEN
    for us in [0, 1, 2047, 2048, 2049, 4095, 4096, 123_456, 10**9, HIGHEST_US, *samples(2000)]:
        index = index_of(us)
        assert index == reference._counts_index_for(us)
        assert lowest_equivalent(index) == reference.get_lowest_equivalent_value(us)
        assert highest_equivalent(index) == reference.get_highest_equivalent_value(us)
    assert index_of(HIGHEST_US * 10) == index_of(HIGHEST_US)  # clamped, not lost


def test_figures_match_hdrh() -> None:
    reference = HdrHistogram(1, HIGHEST_US, 3)
    ours = Histogram()
    for us in samples(20_000):
        reference.record_value(us)
        ours.record(us)
    ps = [50.0, 90.0, 99.0, 99.9, 100.0]
    assert ours.percentiles_us(ps) == reference.get_percentile_to_value_dict(ps)
    figures = ours.figures()
    assert figures["max"] == round(reference.get_max_value() / 1000, 3)
    assert figures["min"] == round(reference.get_min_value() / 1000, 3)
    assert figures["mean"] == pytest.approx(reference.get_mean_value() / 1000, abs=0.001)
    assert ours.total == 20_000


def test_encoding_is_hdrhs_and_round_trips() -> None:
    ours = Histogram()
    for us in samples(5000):
        ours.record(us)
    text = ours.encode()
    assert text.startswith("HISTF")
    decoded = HdrHistogram.decode(text)
    assert decoded.get_total_count() == 5000
    assert decoded.get_value_at_percentile(99) == ours.percentiles_us([99.0])[99.0]
    assert Histogram.decode(text) == ours
    assert Histogram.decode(Histogram().encode()) == Histogram()
    assert Histogram.unpack(ours.pack()) == ours


def test_histograms_of_another_layout_are_rebucketed() -> None:
    other = HdrHistogram(1, 10**7, 2)
    for us in (100, 5000, 90_000):
        other.record_value(us)
    decoded = Histogram.decode(other.encode())
    assert decoded.total == 3
    assert decoded.percentiles_us([100.0])[100.0] == pytest.approx(90_000, rel=0.01)


def test_merge_adds_counts_and_garbage_is_refused() -> None:
    a, b = Histogram(), Histogram()
    for us in samples(1000, seed=1):
        a.record(us)
    for us in samples(1000, seed=2):
        b.record(us)
    both = Histogram()
    for us in samples(1000, seed=1) + samples(1000, seed=2):
        both.record(us)
    assert merge([a.encode(), b]) == both
    with pytest.raises(ValueError, match="not an encoded HDR histogram"):
        Histogram.decode("not a histogram")


def test_an_empty_histogram_reports_zeros() -> None:
    assert Histogram().figures() == dict.fromkeys(
        ["min", "mean", "p50", "p90", "p99", "p999", "max"], 0.0
    )


def test_recorder_memory_does_not_grow_with_requests() -> None:
    """The recorder keeps counts per bucket, never a sample: 10k or 20k requests of the same
    latencies (in the same seconds) leave it the same size."""
    sizes = []
    for n in (10_000, 20_000):
        recorder = Recorder(start=0.0)
        action = recorder.action("GET /")
        for k in range(n):
            now = (k * 3.0) / n  # spread over the same three seconds
            recorder.record(action, now, 0.001 * (1 + k % 50), None if k % 7 else "status_500")
        recorder.finish(3.0)
        sizes.append(
            (
                len(recorder.timeline),
                len(recorder.totals.histogram),
                len(action.stats.histogram),
                len(action.stats.errors_by_kind),
                len(action.counts),
            )
        )
        assert recorder.totals.requests == n
    assert sizes[0] == sizes[1] == (3, 50, 50, 1, 0)
