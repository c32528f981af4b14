"""The lock-free families: exact under threads, and exposed like prometheus_client's own."""

from __future__ import annotations

import threading

import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from tailguard.observe._fast import FastCounter, FastHistogram, FastUpDown

BOUNDS = (0.01, 0.1, 1.0)


def assert_same_samples(ours: CollectorRegistry, theirs: CollectorRegistry) -> None:
    """Every sample line prometheus_client writes (each bucket with ``le`` as it writes it,
    count, sum) is in our exposition too."""
    sample_lines = [
        line
        for line in generate_latest(theirs).decode().splitlines()
        if not line.startswith("#") and "_created" not in line
    ]
    assert sample_lines
    ours_text = generate_latest(ours).decode()
    for line in sample_lines:
        assert line in ours_text


def test_histogram_exposition_matches_prometheus_client() -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    fast = FastHistogram("lat_seconds", "Latency.", ["route"], buckets=BOUNDS, registry=ours)
    slow = Histogram("lat_seconds", "Latency.", ["route"], buckets=BOUNDS, registry=theirs)
    for value in (0.0, 0.01, 0.05, 0.1, 0.5, 1.0, 3.0, 0.099999):
        fast.labels("/a").observe(value)
        slow.labels("/a").observe(value)
    assert_same_samples(ours, theirs)


def test_counts_are_exact_under_threads() -> None:
    registry = CollectorRegistry()
    hist = FastHistogram("h_seconds", "h", buckets=BOUNDS, registry=registry).labels()
    count = FastCounter("c_total", "c", registry=registry).labels()
    gauge = FastUpDown("g", "g", registry=registry).labels()

    def work() -> None:
        for i in range(20_000):
            hist.observe(0.05)
            count.inc()
            gauge.inc()
            if i % 2:
                gauge.dec(2)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert registry.get_sample_value("h_seconds_count") == 80_000
    assert registry.get_sample_value("h_seconds_bucket", {"le": "0.01"}) == 0
    assert registry.get_sample_value("h_seconds_bucket", {"le": "0.1"}) == 80_000
    assert registry.get_sample_value("h_seconds_sum") == pytest.approx(4_000)
    assert registry.get_sample_value("c_total") == 80_000
    assert registry.get_sample_value("g") == 0


def test_exemplars_reach_openmetrics() -> None:
    registry = CollectorRegistry()
    hist = FastHistogram("req_seconds", "r", buckets=BOUNDS, registry=registry).labels()
    hist.observe(0.05, {"trace_id": "0af7651916cd43dd8448eb211c80319c"})
    text = generate_openmetrics(registry).decode()
    trace = 'trace_id="0af7651916cd43dd8448eb211c80319c"'
    assert f'req_seconds_bucket{{le="0.1"}} 1.0 # {{{trace}}}' in text


def test_a_name_is_registered_once_and_labels_are_checked() -> None:
    registry = CollectorRegistry()
    family = FastCounter("x_total", "x", ["a"], registry=registry)
    with pytest.raises(ValueError, match="Duplicated"):
        FastCounter("x_total", "x", ["a"], registry=registry)
    with pytest.raises(ValueError, match="expected labels"):
        family.labels("1", "2")


def test_large_bounds_are_written_as_prometheus_client_writes_them() -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    bounds = (0.5, 12_345_678.0)
    FastHistogram("big_seconds", "b", buckets=bounds, registry=ours).labels().observe(1.0)
    Histogram("big_seconds", "b", buckets=bounds, registry=theirs).observe(1.0)
    line = 'big_seconds_bucket{le="1.2345678e+07"} 1.0'
    assert line in generate_latest(theirs).decode()
    assert line in generate_latest(ours).decode()


def test_an_exemplar_keeps_the_time_it_was_observed() -> None:
    registry = CollectorRegistry()
    hist = FastHistogram("t_seconds", "t", buckets=BOUNDS, registry=registry).labels()
    hist.observe(0.05, {"trace_id": "ab" * 16}, 1_700_000_000.5)
    assert "1700000000.5" in generate_openmetrics(registry).decode()  # not the scrape time


def test_pending_observations_are_counted_like_observe() -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    fast = FastHistogram("lat_seconds", "Latency.", ["route"], buckets=BOUNDS, registry=ours)
    slow = Histogram("lat_seconds", "Latency.", ["route"], buckets=BOUNDS, registry=theirs)
    values = (0.0, 0.01, 0.05, 0.1, 0.5, 1.0, 3.0, 0.099999, 0.1, 1.0000001)
    child = fast.labels("/a")
    for value in values:
        child.pending.append(value)  # the hot path's way
        child.observe(value)  # and the plain one: every observation counted twice
        slow.labels("/a").observe(value)
        slow.labels("/a").observe(value)
    assert_same_samples(ours, theirs)
    assert child.pending == []  # counted by the scrape


def test_pending_appends_from_threads_while_draining_lose_nothing() -> None:
    registry = CollectorRegistry()
    child = FastHistogram("h_seconds", "h", buckets=BOUNDS, registry=registry).labels()

    def work() -> None:
        for i in range(20_000):
            child.pending.append(0.05 if i % 2 else 2.0)
            if i % 1_000 == 0:
                child.drain()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for _ in range(50):
        registry.get_sample_value("h_seconds_count")  # scrapes drain meanwhile
    for t in threads:
        t.join()
    assert registry.get_sample_value("h_seconds_count") == 80_000
    assert registry.get_sample_value("h_seconds_bucket", {"le": "0.1"}) == 40_000
    assert registry.get_sample_value("h_seconds_bucket", {"le": "+Inf"}) == 80_000
    assert registry.get_sample_value("h_seconds_sum") == pytest.approx(40_000 * 2.05)


def test_observe_many_counts_a_batch_all_in_the_first_bucket_and_a_mixed_one() -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    fast = FastHistogram("lat_seconds", "Latency.", ["route"], buckets=BOUNDS, registry=ours)
    slow = Histogram("lat_seconds", "Latency.", ["route"], buckets=BOUNDS, registry=theirs)
    low = [0.0, 0.001, 0.01, 0.005]  # every one <= the first bound (the shortcut)
    mixed = [0.01, 0.010001, 2.0, 0.1, 1.0]
    fast.labels("/low").observe_many(list(low))
    fast.labels("/mixed").observe_many(list(mixed))
    for value in low:
        slow.labels("/low").observe(value)
    for value in mixed:
        slow.labels("/mixed").observe(value)
    assert_same_samples(ours, theirs)
