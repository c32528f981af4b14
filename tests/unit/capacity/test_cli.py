"""``tailguard capacity plan | fit | servers``: output, JSON, and the house error style."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tailguard import cli
from tailguard.capacity.sweep import read_sweep

PLAN = ["capacity", "plan", "--rps", "1000", "--latency-ms", "200"]
PLAN += ["--cpu-per-request", "0.1", "--memory-mb", "50"]
SERVERS = ["capacity", "servers", "--rate", "10", "--service-time", "0.5", "--wait-target", "0.1"]
SWEEP = """\
# SPEC SDM 91 (the R usl package's specsdm91): users, scripts per hour
concurrency,throughput
1,64.9
18,995.9
36,1652.4

72,1853.2   # the highest measured
108,1828.9
144,1775.0
216,1702.2
"""


def _sweep(tmp_path: Path, text: str = SWEEP) -> str:
    path = tmp_path / "sweep.csv"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_plan_prints_the_plan_the_2x_plan_and_the_notes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(PLAN) == 0
    out = capsys.readouterr().out
    assert "1x (1000 rps)" in out
    assert "2x (2000 rps)" in out
    rows = {line.split()[0]: line.split()[-2:] for line in out.splitlines() if line[:2] == "  "}
    assert rows["concurrent"] == ["200", "400"]
    assert rows["CPU"] == ["125", "250"]
    assert rows["memory"] == ["12.2", "24.4"]
    assert rows["instances"] == ["32", "63"]
    assert "Utilization law: 100 busy cores" in out
    assert "Notes:" in out
    assert "Memory differs" in out


def test_plan_json_has_the_guide_keys_and_values(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([*PLAN, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {key: data[key] for key in list(data)[:4]} == {
        "concurrent_requests": 200.0,
        "required_cpu_cores": 125.0,
        "required_memory_gb": 12.20703125,
        "instances_needed": 32,
    }
    assert data["at_2x"]["instances_needed"] == 63
    assert data["inputs"]["headroom"] == 0.2
    assert len(data["notes"]) >= 3


def test_plan_takes_headroom_and_instance_size(capsys: pytest.CaptureFixture[str]) -> None:
    argv = [*PLAN, "--headroom", "0.5", "--instance-cores", "8", "--json"]
    assert cli.main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["required_cpu_cores"] == pytest.approx(200)
    assert data["instances_needed"] == 25


@pytest.mark.parametrize(
    ("argv", "option"),
    [
        ([*PLAN[:3], "-1", *PLAN[4:]], "--rps=-1.0"),
        ([*PLAN, "--headroom", "1.5"], "--headroom=1.5"),
        ([*PLAN, "--latency-ms", "nan"], "--latency-ms=nan"),
        ([*PLAN, "--instance-memory-gb", "0"], "--instance-memory-gb=0.0"),
        ([*PLAN[:3], "many", *PLAN[4:]], "argument --rps"),
        (PLAN[:6], "--cpu-per-request"),  # required
        ([*SERVERS, "--percentile", "95"], "--percentile=95.0"),
        ([*SERVERS[:3], "0", *SERVERS[4:]], "--rate=0.0"),
        ([*SERVERS[:5], "-2", *SERVERS[6:]], "--service-time=-2.0"),
        ([*SERVERS[:7], "-0.1"], "--wait-target=-0.1"),
    ],
)
def test_bad_input_is_one_line_naming_the_option_and_exit_2(
    argv: list[str], option: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("tailguard: error: ")
    assert option in lines[0]


def test_fit_reads_a_sweep_and_reports_the_coefficients(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["capacity", "fit", _sweep(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "over 7 points (concurrency 1 to 216)" in out
    assert "sigma   (contention)      0.02773" in out
    assert "kappa   (coherency)       0.0001044" in out
    assert "lambda  (X at N = 1)      89.9952" in out
    assert "peak concurrency N*       96.52" in out


def test_fit_json_prints_exactly_the_coefficients_and_the_peak(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["capacity", "fit", _sweep(tmp_path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) == {
        "sigma",
        "kappa",
        "lambda",
        "peak_concurrency",
        "peak_throughput",
        "r_squared",
    }
    assert data["sigma"] == pytest.approx(0.0277, abs=5e-5)
    assert data["kappa"] == pytest.approx(0.000104, abs=5e-7)
    assert data["lambda"] == pytest.approx(89.995, abs=5e-3)
    assert data["peak_concurrency"] == pytest.approx(96.5, abs=0.05)


def test_fit_json_writes_no_peak_as_null(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    linear = "1,10\n2,20\n4,40\n8,80\n"  # no contention, no coherency: no peak
    assert cli.main(["capacity", "fit", _sweep(tmp_path, linear), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["peak_concurrency"] is None
    assert data["peak_throughput"] is None
    assert data["lambda"] == pytest.approx(10)


def test_fit_draws_the_plot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    png = tmp_path / "usl.png"
    assert cli.main(["capacity", "fit", _sweep(tmp_path), "--plot", str(png)]) == 0
    assert png.read_bytes().startswith(b"\x89PNG")
    assert f"Plot: {png}" in capsys.readouterr().out


def test_read_sweep_takes_headers_in_any_order_comments_and_no_header() -> None:
    assert read_sweep(SWEEP)[0] == [1, 18, 36, 72, 108, 144, 216]
    assert read_sweep("1,5\n2,9 # two\n\n3,12\n") == ([1, 2, 3], [5, 9, 12])
    text = "throughput, p99_ms, Concurrency\n5, 10, 1\n9, 12, 2\n"
    assert read_sweep(text) == ([1, 2], [5, 9])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("users,rate\n1,2\n", "line 1: expected a header naming the columns"),
        ("1,2\n2,x\n", "line 2: expected numbers"),
        ("1,2\n2\n", "line 2: expected numbers"),
        ("1,2\n2,-3\n", "line 2: throughput must be a finite number > 0"),
        ("concurrency,throughput\n0,3\n", "line 2: concurrency must be a finite number > 0"),
        ("1,2\n2,4\n", "concurrency: expected at least 3 points"),
        ("", "concurrency: expected at least 3 points"),
    ],
)
def test_a_bad_sweep_is_one_line_naming_the_file_and_exit_2(
    text: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _sweep(tmp_path, text)
    assert cli.main(["capacity", "fit", path]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"tailguard: error: SWEEP.csv {path!r}: ")
    assert message in lines[0]


def test_an_unreadable_sweep_is_one_line_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = str(tmp_path / "missing.csv")
    assert cli.main(["capacity", "fit", missing]) == 1
    err = capsys.readouterr().err
    reason = "No such file or directory"
    assert err == f"tailguard: error: SWEEP.csv: cannot read {missing!r}: {reason}\n"


def test_an_unwritable_plot_is_one_line_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = str(tmp_path / "no" / "such" / "dir.png")
    assert cli.main(["capacity", "fit", _sweep(tmp_path), "--plot", target]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"tailguard: error: --plot: cannot write {target!r}")
    assert len(captured.err.splitlines()) == 1


def test_servers_prints_the_count_and_what_it_buys(capsys: pytest.CaptureFixture[str]) -> None:
    # The call-centre worked example of test_erlang.py: 10 Erlangs, 80% within 20 s -> 14.
    argv = ["capacity", "servers", "--rate", str(100 / 1800), "--service-time", "180"]
    assert cli.main([*argv, "--wait-target", "20", "--percentile", "0.8"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Servers: 14")
    assert "10 Erlangs" in out
    assert "71.4%" in out
    assert "88.84% (target 80.00%)" in out


def test_servers_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([*SERVERS, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["servers"] == 9  # 5 Erlangs, 95% within 0.1 s
    assert data["offered_load"] == 5.0
    assert data["service_level"] >= 0.95
    assert set(data) == {
        "servers",
        "offered_load",
        "utilization",
        "wait_probability",
        "service_level",
        "mean_wait",
        "inputs",
    }


def test_capacity_without_a_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["capacity"]) == 2
    assert cli.main(["capacity", "fit"]) == 2  # SWEEP.csv is required
    assert len(capsys.readouterr().err.splitlines()) == 2


@pytest.mark.parametrize("command", ["plan", "fit", "servers"])
def test_help_exits_0(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["capacity", command, "--help"]) == 0
    assert "--json" in capsys.readouterr().out
