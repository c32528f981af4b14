"""The generated SLO rules, as Prometheus itself reads them: ``promtool check rules``, and
``promtool test rules`` on synthetic series that burn the error budget 20 times too fast.

promtool comes from Debian's ``prometheus`` package (``make promtool`` installs it). Without
it these tests skip, except under ``CI=true``, where they fail.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tailguard.observe import _names
from tailguard.observe.slo import SLO
from tests.services import skip_or_fail

# Checkout traffic: 1000 requests a minute. For 6 healthy hours every one is fast and good;
# then for 2 hours 2% fail (or are slow): 20 times the 0.1% budget of a 99.9% objective.
SLO_UNDER_TEST = SLO("checkout", objective=0.999, latency_threshold=0.25, selector={"job": "shop"})
LABELS = 'job="shop",route="/checkout",method="POST"'
HEALTHY, BURNING = 360, 120  # minutes
# The 1h alert fires once its 1h error ratio tops 14.4 x 0.1% = 1.44%: about 43 minutes in.
QUIET_AT, FIRING_AT = "390m", "420m"  # 30 and 60 minutes into the burn


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        skip_or_fail("promtool is not on PATH (`make promtool` installs it)")
    return path


def run(promtool: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, *map(str, args)], capture_output=True, text=True, timeout=60, check=False
    )


def write_rules(directory: Path, slo: SLO = SLO_UNDER_TEST) -> Path:
    path = directory / "slo.rules.yaml"
    path.write_text(slo.alert_rules())
    return path


def counter(per_minute_before: int, per_minute_during: int) -> str:
    """promtool series values: ``per_minute_before`` a minute for HEALTHY minutes, then
    ``per_minute_during`` a minute for BURNING minutes; starts high so it is a counter mid-life."""
    start = 100_000
    turn = start + per_minute_before * (HEALTHY - 1)
    return (
        f"{start}+{per_minute_before}x{HEALTHY - 1} "
        f"{turn + per_minute_during}+{per_minute_during}x{BURNING - 1}"
    )


def page(slo: SLO, sli: str, value: str) -> dict[str, Any]:
    """The firing 1h alert promtool should report: its labels and rendered annotations."""
    (rule,) = [
        r
        for g in slo.rules()["groups"]
        for r in g["rules"]
        if r.get("alert", "") == ("SLOErrorBudgetBurn1h")
    ]
    annotations = {
        key: text.replace("{{ $labels.sli }}", sli).replace(
            "{{ $value | humanizePercentage }}", value
        )
        for key, text in rule["annotations"].items()
    }
    labels = {**rule["labels"], "slo": slo.name, "sli": sli}
    return {"exp_labels": labels, "exp_annotations": annotations}


def promtool_test(
    promtool: str, directory: Path, series: list[dict[str, str]], tests: list[dict[str, Any]]
) -> None:
    rules = write_rules(directory)
    spec = {
        "rule_files": [rules.name],
        "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": series, "alert_rule_test": tests}],
    }
    test_file = directory / "slo.test.yaml"
    test_file.write_text(yaml.safe_dump(spec, sort_keys=False))
    result = run(promtool, "test", "rules", test_file)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_accepts_the_rules(promtool: str, tmp_path: Path) -> None:
    nasty = SLO(
        "checkout.v2",
        objective=0.9995,
        latency_threshold=0.25,
        selector={"route": '/a"b\\c\nd}', "job": "shop"},
    )
    for slo in (SLO_UNDER_TEST, nasty, SLO("availability-only")):
        result = run(promtool, "check", "rules", write_rules(tmp_path, slo))
        assert result.returncode == 0, result.stdout + result.stderr
        assert "SUCCESS" in result.stdout


def test_a_20x_availability_burn_pages_within_the_hour(promtool: str, tmp_path: Path) -> None:
    requests = _names.HTTP_REQUESTS
    series = [
        {
            "series": f'{requests}{{{LABELS},status_class="2xx"}}',
            "values": counter(1000, 980),
        },
        {
            "series": f'{requests}{{{LABELS},status_class="5xx"}}',
            "values": counter(0, 20),
        },
        {  # another job failing all the time: outside the selector, so never counted
            "series": f'{requests}{{job="other",route="/checkout",status_class="5xx"}}',
            "values": f"0+500x{HEALTHY + BURNING - 1}",
        },
    ]
    firing = page(SLO_UNDER_TEST, "availability", "2%")
    promtool_test(
        promtool,
        tmp_path,
        series,
        [
            {"eval_time": "300m", "alertname": "SLOErrorBudgetBurn1h", "exp_alerts": []},
            {"eval_time": QUIET_AT, "alertname": "SLOErrorBudgetBurn1h", "exp_alerts": []},
            {"eval_time": QUIET_AT, "alertname": "SLOErrorBudgetBurn6h", "exp_alerts": []},
            {"eval_time": FIRING_AT, "alertname": "SLOErrorBudgetBurn1h", "exp_alerts": [firing]},
        ],
    )


def test_a_20x_latency_burn_pages_within_the_hour(promtool: str, tmp_path: Path) -> None:
    duration = _names.HTTP_DURATION
    labels = f'{LABELS},status_class="2xx"'
    series = [
        {  # requests within the 0.25 s threshold: all of them, then 98%
            "series": f'{duration}_bucket{{{labels},le="0.25"}}',
            "values": counter(1000, 980),
        },
        {
            "series": f'{duration}_bucket{{{labels},le="+Inf"}}',
            "values": counter(1000, 1000),
        },
        {
            "series": f"{duration}_count{{{labels}}}",
            "values": counter(1000, 1000),
        },
    ]
    firing = page(SLO_UNDER_TEST, "latency", "2%")
    promtool_test(
        promtool,
        tmp_path,
        series,
        [
            {"eval_time": QUIET_AT, "alertname": "SLOErrorBudgetBurn1h", "exp_alerts": []},
            {"eval_time": FIRING_AT, "alertname": "SLOErrorBudgetBurn1h", "exp_alerts": [firing]},
        ],
    )
