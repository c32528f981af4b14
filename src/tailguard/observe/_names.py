"""Metric names, labels and histogram buckets shared by the observe modules (and the SLO rules
and dashboards that query them): one place, so a rename cannot split them."""

from __future__ import annotations

__all__ = [
    "CALLS",
    "CALL_DURATION",
    "CALL_ERRORS",
    "CALL_IN_FLIGHT",
    "HTTP_DURATION",
    "HTTP_ERRORS",
    "HTTP_IN_FLIGHT",
    "HTTP_REQUESTS",
    "LATENCY_BUCKETS",
    "LOOP_LAG",
    "NAMESPACE",
]

NAMESPACE = "tailguard"

# Seconds. Web latencies: fine steps from 5 ms to 1 s where SLO thresholds usually sit (each
# threshold must be a bucket bound for the latency SLI to be exact), coarse ones up to 10 s
# for the tail, then +Inf. 15 bounds: each labelled series costs 17 time series.
LATENCY_BUCKETS: tuple[float, ...] = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.15,
    0.25,
    0.35,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    10.0,
)

# HTTP, by GoldenSignals. Labels: route (the template, never the raw path), method,
# status_class ("2xx" ... "5xx"); errors: route, method, error (an exception's type name, or
# the status code of a 5xx response).
HTTP_DURATION = "tailguard_http_request_duration_seconds"  # histogram
HTTP_REQUESTS = "tailguard_http_requests_total"  # counter: route, method, status_class
HTTP_ERRORS = "tailguard_http_request_errors_total"  # counter: route, method, error
HTTP_IN_FLIGHT = "tailguard_http_requests_in_flight"  # gauge, no labels: per instance

# Saturation, by LoopLag: the last sample (gauge); LOOP_LAG + "_hist" holds every sample.
LOOP_LAG = "tailguard_event_loop_lag_seconds"

# Any function, by @monitor(name). Labels: name; outcome ("ok" or "error"); errors: error.
CALL_DURATION = "tailguard_call_duration_seconds"  # histogram: name, outcome
CALLS = "tailguard_calls_total"  # counter: name, outcome
CALL_ERRORS = "tailguard_call_errors_total"  # counter: name, error
CALL_IN_FLIGHT = "tailguard_calls_in_flight"  # gauge: name
