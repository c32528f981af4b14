"""SLO: validation, the burn-rate numbers in the generated rules, PromQL escaping, the
dashboard's queries, and the ``tailguard slo`` command line."""

from __future__ import annotations

import dataclasses
import json
import math
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tailguard import cli
from tailguard.errors import ConfigurationError
from tailguard.observe import _names
from tailguard.observe.saturation import LOOP_LAG
from tailguard.observe.slo import (
    BURN_RATE_ALERTS,
    ERROR_BUDGET_PERIOD,
    SLO,
    WINDOWS,
    record_name,
)

ROOT = Path(__file__).resolve().parents[3]
# ``slo:sli_error:ratio_rate1h{slo="checkout"} > 0.0144``: the record, its window, the number
ALERT_TERM = re.compile(r'slo:sli_error:ratio_rate(\w+)\{slo="([^"]+)"\} > (\S+)')


# -- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["", "1checkout", "check out", 'a"b', "a{b}", "x" * 64, 42])
def test_a_bad_name_is_a_configuration_error(name: Any) -> None:
    with pytest.raises(ConfigurationError) as caught:
        SLO(name)
    assert caught.value.setting == "name"


@pytest.mark.parametrize("objective", [0, 1, 1.0, -0.5, 1.5, 99.9, math.nan, True, "0.999"])
def test_the_objective_must_lie_strictly_between_0_and_1(objective: Any) -> None:
    with pytest.raises(ConfigurationError) as caught:
        SLO("checkout", objective=objective)
    assert caught.value.setting == "objective"


@pytest.mark.parametrize("threshold", [0.3, 0, -0.25, 11.0, math.inf, True, "0.25"])
def test_the_latency_threshold_must_be_a_bucket_bound(threshold: Any) -> None:
    with pytest.raises(ConfigurationError) as caught:
        SLO("checkout", latency_threshold=threshold)
    error = caught.value
    assert error.setting == "latency_threshold"
    assert error.value == threshold
    assert "0.005" in str(error)
    assert "10" in str(error)  # the allowed bounds, smallest to largest


def test_a_threshold_that_rounds_to_a_bucket_is_that_bucket() -> None:
    slo = SLO("checkout", latency_threshold=0.1 + 0.15)  # 0.25000000000000006
    assert slo.latency_threshold == 0.25
    assert slo.slis == ("availability", "latency")
    assert SLO("checkout").slis == ("availability",)


@pytest.mark.parametrize(
    "selector",
    [{"1route": "x"}, {"__name__": "x"}, {"le": "0.5"}, {"status_class": "5xx"}, {"a-b": "x"}],
)
def test_a_bad_selector_label_is_a_configuration_error(selector: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError) as caught:
        SLO("checkout", selector=selector)
    assert caught.value.setting == "selector"


def test_a_selector_value_must_be_a_string() -> None:
    with pytest.raises(ConfigurationError, match="route"):
        SLO("checkout", selector={"route": 1})  # type: ignore[dict-item]


def test_an_slo_is_frozen_hashable_and_keeps_no_reference_to_the_callers_dict() -> None:
    selector = {"job": "shop"}
    slo = SLO("checkout", objective=0.99, selector=selector)
    selector["job"] = "changed"
    assert slo.selector == {"job": "shop"}
    with pytest.raises(dataclasses.FrozenInstanceError):
        slo.objective = 0.5  # type: ignore[misc]
    with pytest.raises(TypeError):
        slo.selector["job"] = "x"  # type: ignore[index]
    assert hash(slo) == hash(SLO("checkout", objective=0.99, selector={"job": "shop"}))
    assert slo.error_budget == pytest.approx(0.01)


# -- recording rules -------------------------------------------------------------------------


def test_recording_rules_cover_every_sli_and_window() -> None:
    slo = SLO("checkout", objective=0.999, latency_threshold=0.25)
    (group,) = slo.recording_rules()["groups"]
    seen = {(rule["labels"]["sli"], rule["record"]) for rule in group["rules"]}
    windows = ["5m", "30m", "1h", "6h", "3d"]
    assert [record_name(w) for w in WINDOWS] == [f"slo:sli_error:ratio_rate{w}" for w in windows]
    assert seen == {
        (sli, f"slo:sli_error:ratio_rate{w}")
        for sli in ("availability", "latency")
        for w in windows
    }
    for rule in group["rules"]:
        assert rule["labels"]["slo"] == "checkout"
        window = rule["record"].removeprefix("slo:sli_error:ratio_rate")
        assert f"[{window}]" in rule["expr"]


def test_the_availability_sli_is_the_5xx_share_and_latency_reads_the_threshold_bucket() -> None:
    slo = SLO("checkout", latency_threshold=1.0)
    availability = slo.error_ratio("availability", "5m")
    assert f'{_names.HTTP_REQUESTS}{{status_class="5xx"}}[5m]' in availability
    assert f"{_names.HTTP_REQUESTS}[5m]" in availability
    latency = slo.error_ratio("latency", "1h")
    assert latency.startswith("1 - (")
    assert f'{_names.HTTP_DURATION}_bucket{{le="1.0"}}[1h]' in latency  # as prometheus_client
    assert f"{_names.HTTP_DURATION}_count[1h]" in latency
    with pytest.raises(ConfigurationError):
        SLO("checkout").error_ratio("latency", "5m")  # no threshold, no latency SLI


# -- alerts ----------------------------------------------------------------------------------


@pytest.mark.parametrize("objective", [0.999, 0.99, 0.9995, 0.99999])
def test_each_alert_needs_both_windows_over_burn_rate_times_budget(objective: float) -> None:
    slo = SLO("checkout", objective=objective, latency_threshold=0.25)
    alerts = {rule["alert"]: rule for rule in slo.rules()["groups"][1]["rules"]}
    expected = {  # alertname: burn rate, long window, short window, severity
        "SLOErrorBudgetBurn1h": (14.4, "1h", "5m", "page"),
        "SLOErrorBudgetBurn6h": (6.0, "6h", "30m", "page"),
        "SLOErrorBudgetBurn3d": (1.0, "3d", "6h", "ticket"),
    }
    assert alerts.keys() == expected.keys()
    for name, (burn, long, short, severity) in expected.items():
        rule = alerts[name]
        terms = ALERT_TERM.findall(rule["expr"])
        assert [(w, s) for w, s, _ in terms] == [(long, "checkout"), (short, "checkout")]
        assert " and" in rule["expr"].replace("\n", " ")
        for _, _, number in terms:
            assert float(number) == pytest.approx(burn * (1 - objective), rel=1e-9)
        assert rule["labels"] == {"severity": severity}
        assert rule["annotations"]["burn_rate"] == f"{burn:g}"
        assert f"{burn:g}x" in rule["annotations"]["summary"]


def test_the_alert_table_is_the_sre_workbooks() -> None:
    assert ERROR_BUDGET_PERIOD == 30 * 24 * 3600
    spent = [round(a.budget_spent, 6) for a in BURN_RATE_ALERTS]
    assert spent == [0.02, 0.05, 0.1]  # 2% of the budget in 1h, 5% in 6h, 10% in 3d
    assert [a.severity for a in BURN_RATE_ALERTS] == ["page", "page", "ticket"]


def test_alert_rules_is_the_rules_data_as_yaml_with_a_header() -> None:
    slo = SLO("checkout", objective=0.999, latency_threshold=0.25, selector={"job": "shop"})
    text = slo.alert_rules()
    assert text.startswith("# SLO checkout: objective 0.999, error budget over 30 days.")
    assert yaml.safe_load(text) == slo.rules()
    assert "expr: |" in text  # multi-line expressions stay readable


# -- escaping --------------------------------------------------------------------------------

NASTY = 'a"b\\c\nd}e,f=g'


def test_selector_values_are_escaped_in_every_query() -> None:
    slo = SLO("checkout", latency_threshold=0.25, selector={"route": NASTY, "job": "shop"})
    quoted = r'route="a\"b\\c\nd}e,f=g"'
    exprs = [rule["expr"] for rule in slo.recording_rules()["groups"][0]["rules"]]
    for expr in exprs:
        assert expr.count(quoted) == 2  # numerator and denominator
        assert '"a"b' not in expr
        assert 'job="shop"' in expr
    # the quoted text reads back as the original value (PromQL strings take these escapes)
    assert json.loads(quoted.removeprefix("route=")) == NASTY
    assert yaml.safe_load(slo.alert_rules()) == slo.rules()


# -- dashboard -------------------------------------------------------------------------------


def _metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads: identifiers not called as functions,
    outside strings, label matchers, ranges and ``by (...)`` clauses."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}", " ", expr)
    expr = re.sub(r"\[[^\]]*\]", " ", expr)
    expr = re.sub(r"\b(?:by|without)\s*\([^)]*\)", " ", expr)
    words = re.findall(r"(?<![\w:.])[a-zA-Z_:][\w:]*(?![\w:])(?!\s*\()", expr)
    return set(words) - {"and", "or", "unless", "by", "without", "bool", "offset"}


def _allowed_metrics(slo: SLO) -> set[str]:
    names = {
        value
        for key in _names.__all__
        if isinstance(value := getattr(_names, key), str) and value.startswith("tailguard_")
    }
    histograms = {_names.HTTP_DURATION, _names.CALL_DURATION}
    names |= {f"{h}{suffix}" for h in histograms for suffix in ("_bucket", "_count", "_sum")}
    names.add(LOOP_LAG)  # saturation's gauge: not listed in _names (yet)
    records = {r["record"] for g in slo.recording_rules()["groups"] for r in g["rules"]}
    return names | records


def test_metric_name_extraction() -> None:
    expr = 'histogram_quantile(0.9, sum by (le) (rate(a_b{x="y(z)"}[5m]))) / c:d:e > 1.5e-05'
    assert _metric_names(expr) == {"a_b", "c:d:e"}


def test_the_dashboard_has_the_golden_signals_and_queries_only_known_metrics() -> None:
    slo = SLO("checkout", latency_threshold=0.25, selector={"route": "/checkout", "job": "shop"})
    board = json.loads(slo.dashboard_json())
    assert board == slo.dashboard()
    assert board["schemaVersion"] == 39
    assert len(board["uid"]) <= 40
    titles = [panel["title"] for panel in board["panels"]]
    assert titles == [
        "Latency (p50, p90, p99)",
        "Traffic (requests/s)",
        "Errors (5xx ratio)",
        "Errors by type (errors/s)",
        "Saturation: in-flight requests",
        "Saturation: event-loop lag",
        "Error budget burn rate",
    ]
    panels = {panel["title"]: panel for panel in board["panels"]}
    latency = [t["expr"] for t in panels["Latency (p50, p90, p99)"]["targets"]]
    assert [e.split(",")[0] for e in latency] == [
        f"histogram_quantile({q}" for q in (0.5, 0.9, 0.99)
    ]
    assert [t["legendFormat"] for t in panels["Latency (p50, p90, p99)"]["targets"]] == [
        "p50",
        "p90",
        "p99",
    ]
    in_flight = panels["Saturation: in-flight requests"]["targets"][0]["expr"]
    assert _names.HTTP_IN_FLIGHT in in_flight
    assert 'job="shop"' in in_flight
    assert "route" not in in_flight  # a per-process gauge has no route label
    assert LOOP_LAG in panels["Saturation: event-loop lag"]["targets"][0]["expr"]
    burn = [t["expr"] for t in panels["Error budget burn rate"]["targets"]]
    assert burn == [
        f'slo:sli_error:ratio_rate{w}{{slo="checkout"}} / 0.001' for w in ("1h", "6h", "3d")
    ]
    allowed = _allowed_metrics(slo)
    exprs = [t["expr"] for panel in board["panels"] for t in panel["targets"]]
    exprs += [r["expr"] for g in slo.rules()["groups"] for r in g["rules"]]
    for expr in exprs:
        assert _metric_names(expr), expr
        assert _metric_names(expr) <= allowed, expr
    ids = [panel["id"] for panel in board["panels"]]
    assert len(set(ids)) == len(ids)


def test_a_long_name_still_gets_a_short_unique_uid() -> None:
    first, second = SLO("a" * 60 + "x"), SLO("a" * 60 + "y")
    uids = {first.dashboard()["uid"], second.dashboard()["uid"]}
    assert len(uids) == 2
    assert all(len(uid) <= 40 for uid in uids)


# -- command line ----------------------------------------------------------------------------

RULES = ["slo", "rules", "--name", "checkout", "--objective", "0.999"]


def test_cli_rules_round_trip(capsys: pytest.CaptureFixture[str]) -> None:
    argv = [*RULES, "--latency-threshold", "0.25", "--selector", "route=/checkout"]
    assert cli.main([*argv, "--selector", "job=a=b"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    slo = SLO(
        "checkout",
        objective=0.999,
        latency_threshold=0.25,
        selector={"route": "/checkout", "job": "a=b"},
    )
    assert printed == slo.rules()


def test_cli_dashboard_round_trip_to_a_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "board.json"
    argv = ["slo", "dashboard", "--name", "checkout", "--objective", "0.99", "-o", str(out)]
    assert cli.main(argv) == 0
    assert capsys.readouterr().out == ""
    assert json.loads(out.read_text()) == SLO("checkout", objective=0.99).dashboard()


@pytest.mark.parametrize(
    ("extra", "option"),
    [
        (["--latency-threshold", "0.3"], "--latency-threshold=0.3"),
        (["--latency-threshold", "fast"], "--latency-threshold"),
        (["--objective", "1"], "--objective=1.0"),
        (["--selector", "route"], "--selector"),
        (["--selector", "le=1"], "--selector='le'"),
        (["--selector", "job=a", "--selector", "job=b"], "--selector"),
    ],
)
def test_cli_bad_input_is_one_line_naming_the_option_and_exit_2(
    extra: list[str], option: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main([*RULES, *extra]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("tailguard: error: ")
    assert option in lines[0]


def test_cli_unwritable_output_is_one_line_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main([*RULES, "--output", str(tmp_path / "missing" / "rules.yml")]) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("tailguard: error: --output: cannot write")


def test_cli_without_a_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 2
    assert cli.main(["slo"]) == 2
    assert cli.main(["slo", "rules"]) == 2  # --name is required
    assert "--name" in capsys.readouterr().err.splitlines()[-1]


def test_cli_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["slo", "rules", "--help"]) == 0
    assert "--latency-threshold" in capsys.readouterr().out


def test_python_dash_m_tailguard_runs_the_cli() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tailguard", "slo", "rules", "--name", "checkout"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert yaml.safe_load(result.stdout) == SLO("checkout").rules()
