"""Capacity planning: how much to run, from a few measurements.

::

    from tailguard.capacity import fit_usl, plan, servers_for

    plan(rps=1000, latency_ms=200, cpu_per_request=0.1, memory_mb=50).instances_needed  # 32
    fit_usl(concurrency, throughput).peak_concurrency   # where throughput peaks (N*)
    servers_for(rate=50, service_time=0.1, wait_target=0.02, percentile=0.95)  # M/M/c workers

- ``littles_law``: the guide's plan (Little's law for concurrency, 20% headroom), at the
  expected load and at twice it, beside the utilization law's view;
- ``usl``: a Universal Scalability Law fit over a concurrency sweep (contention, coherency,
  peak concurrency and throughput); ``sweep.read_sweep`` reads one from CSV text and
  ``plot.plot_usl`` draws the fit;
- ``erlang``: M/M/c (Erlang C) probability of waiting, mean wait and sizing for a wait target.

Importing this package imports no third-party library: numpy and scipy load on the first
``fit_usl``, matplotlib on the first ``plot_usl`` (the ``capacity`` extra).
"""

from tailguard.capacity.erlang import erlang_c, mean_wait, servers_for
from tailguard.capacity.littles_law import CapacityPlan, plan
from tailguard.capacity.usl import USLFit, fit_usl

__all__ = [
    "CapacityPlan",
    "USLFit",
    "erlang_c",
    "fit_usl",
    "mean_wait",
    "plan",
    "servers_for",
]
