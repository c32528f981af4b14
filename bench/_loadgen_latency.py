"""Sections 2 and 3 of ``bench/loadgen.py``: does our generator report the latency the server
gave?

* Accuracy: a responder holding every answer 50 ms. The truth is 50 ms plus the loopback round
  trip, measured separately by our open model at 200/s against a no-delay responder (its p50
  for the p50, its p99 for the p99). Our open model (200/s) and closed model (64 users) each
  run against the 50 ms responder, which reports how late its timer wrote the held answers.
* Coordinated omission: a responder that holds every answer read in the last second of each
  5 s until the 5 s end (a 1 s stall once every 5 s), driven by our open model at 200/s (256
  connections: enough for every request of a stall), then by closed loops (our closed model,
  10 users; ``wrk -t1 -c10``) for as long. A fifth of the arrivals meet a stall and wait up to
  1 s, so the true p99 is about 0.95 s.
"""

from __future__ import annotations

import math

from bench._harness import Target, eprint, render_table
from bench._loadgen_responder import Behaviour
from bench._loadgen_tools import Context, Sample, Section, as_data, attempt, ours, wrk

__all__ = ["accuracy", "omission"]

DELAY = 0.05  # seconds: the accuracy responder's hold
USERS = 64  # the closed model's users against it
RATE = 200.0  # requests/s of the open model in both sections
STALL = (5.0, 1.0)  # seconds: a stall of [1] once every [0]
STALL_CONNECTIONS = 256  # the open model's cap against the stalling responder
CLOSED = 10  # connections of the closed loops against it


# -- accuracy ---------------------------------------------------------------------------------


def accuracy(ctx: Context, seconds: int, md: bool) -> Section:
    d, cpus = ctx.workdir, ctx.client
    fast = ctx.responder(Behaviour())
    slow = ctx.responder(Behaviour(delay=DELAY))
    try:
        fast.start()
        rtt = attempt(
            "rtt", lambda: ours(fast.url, rate=RATE, seconds=seconds, workdir=d, cpus=cpus)
        )
        fast.stop()
        slow.start()
        opened = attempt(
            "open", lambda: ours(slow.url, rate=RATE, seconds=seconds, workdir=d, cpus=cpus)
        )
        closed = attempt(
            "closed", lambda: ours(slow.url, users=USERS, seconds=seconds, workdir=d, cpus=cpus)
        )
    finally:
        fast.stop()
        stats = slow.stop()
    eprint("loadgen: accuracy done")
    late = (stats.late_p50_ms, stats.late_p99_ms, stats.late_max_ms) if stats else (math.nan,) * 3
    t50, t99 = (
        (DELAY * 1000 + rtt.p50_ms, DELAY * 1000 + rtt.p99_ms)
        if isinstance(rtt, Sample)
        else (math.nan, math.nan)
    )
    rows = []
    for label, sample, truth in (
        (f"round trip: open model {RATE:g}/s, no-delay responder", rtt, None),
        (f"open model {RATE:g}/s, 50 ms responder", opened, (t50, t99)),
        (f"closed model {USERS} users, 50 ms responder", closed, (t50, t99)),
    ):
        if not isinstance(sample, Sample):
            rows.append([label, sample, *[""] * 6])
            continue
        cells = [label, f"{sample.requests:,}"]
        for measured, true in zip((sample.p50_ms, sample.p99_ms), truth or (0, 0), strict=True):
            cells.append(f"{measured:.3f}")
            cells += [f"{true:.3f}", f"{error_pct(measured, true):+.2f}%"] if true else ["-", "-"]
        rows.append(cells)
    headers = ["run", "requests", "p50 ms", "truth p50", "error", "p99 ms", "truth p99", "error"]
    table = render_table(headers, rows, markdown=md, align=["<", ">", ">", ">", ">", ">", ">", ">"])
    goals = []
    for model, sample in (("open model", opened), ("closed model", closed)):
        for p, true in (("p50", t50), ("p99", t99)):
            value = getattr(sample, f"{p}_ms") if isinstance(sample, Sample) else math.nan
            goals.append(Target(
                f"accuracy, {model}, 50 ms responder: |{p} error| in % of the truth",
                abs(error_pct(value, true)), "<=", 5.0, f"{value:.3f} ms vs {true:.3f} ms",
            ))  # fmt: skip
    return Section(
        f"2. Accuracy: a responder holding every answer {DELAY * 1000:g} ms, {seconds} s per run",
        table + f"\n\ntruth: {DELAY * 1000:g} ms + the round trip's p50 (p99) measured in the first "
        f"row. The responder wrote its held answers late by p50 {late[0]:.3f} ms, p99 "
        f"{late[1]:.3f} ms, max {late[2]:.3f} ms (its timer, then one write per answer): part of "
        "the true latency, not added to the truth column.",
        goals,
        {"rtt": as_data(rtt), "open": as_data(opened), "closed": as_data(closed),
         "late_p50_ms": late[0], "late_p99_ms": late[1], "late_max_ms": late[2]},
    )  # fmt: skip


def error_pct(measured: float, true: float) -> float:
    return (measured - true) / true * 100 if true > 0 else math.nan


# -- coordinated omission ---------------------------------------------------------------------

ROWS = {
    "open": ("tailguard", f"open: --rate {RATE:g} --connections {STALL_CONNECTIONS}"),
    "closed": ("tailguard", f"closed: --users {CLOSED}"),
    "wrk": ("wrk", f"closed: -t1 -c{CLOSED}"),
}


def omission(ctx: Context, seconds: int, md: bool) -> Section:
    d, cpus = ctx.workdir, ctx.client
    responder = ctx.responder(Behaviour(stall_period=STALL[0], stall_length=STALL[1]))
    runs: dict[str, Sample | str] = {}
    try:
        responder.start()
        url = responder.url
        runs["open"] = attempt(
            "open",
            lambda: ours(
                url, rate=RATE, connections=STALL_CONNECTIONS, seconds=seconds, workdir=d, cpus=cpus
            ),
        )
        runs["closed"] = attempt(
            "closed", lambda: ours(url, users=CLOSED, seconds=seconds, workdir=d, cpus=cpus)
        )
        runs["wrk"] = attempt(
            "wrk", lambda: wrk(url, connections=CLOSED, seconds=seconds, cpus=cpus)
        )
    finally:
        responder.stop()
    eprint("loadgen: coordinated omission done")
    rows = []
    for key, (tool, model) in ROWS.items():
        s = runs[key]
        if not isinstance(s, Sample):
            rows.append([tool, model, s, "", "", ""])
        else:
            rows.append(
                [
                    tool,
                    model,
                    f"{s.requests:,}",
                    f"{s.rps:,.0f}",
                    f"{s.p50_ms:.2f}",
                    f"{s.p99_ms:.2f}",
                ]
            )
    headers = ["tool", "model", "requests", "req/s", "p50 ms", "p99 ms"]
    table = render_table(headers, rows, markdown=md, align=["<", "<", ">", ">", ">", ">"])
    opened, closed = runs["open"], runs["closed"]
    open_p99 = opened.p99_ms if isinstance(opened, Sample) else math.nan
    closed_p99 = closed.p99_ms if isinstance(closed, Sample) else math.nan
    goals = [
        Target("coordinated omission: our open-model p99, seconds", open_p99 / 1000, ">=", 0.9,
               "a 1 s stall every 5 s: the true p99 is about 0.95 s"),
        Target("coordinated omission: our closed-loop p99 / our open-model p99", closed_p99 / open_p99,
               "<=", 0.1, f"{closed_p99:.2f} ms vs {open_p99:.2f} ms: the closed loop hides the stall"),
    ]  # fmt: skip
    return Section(
        f"3. Coordinated omission: a responder stalling {STALL[1]:g} s once every {STALL[0]:g} s, "
        f"{seconds} s per run",
        table + "\n\nwrk 4 corrects its latency histogram after the run (`stats_correct`: each "
        "latency over the mean interval per connection adds the samples a steady sender would "
        "have seen), so its p99 shows the stall although it is a closed loop; our closed model "
        "reports only the requests it sent.",
        goals,
        {key: as_data(sample) for key, sample in runs.items()},
    )
