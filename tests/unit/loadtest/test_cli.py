"""``tailguard loadtest`` through ``tailguard.cli.main``: exit codes 0 (SLOs pass), 1 (one
fails, or a file cannot be written), 2 (bad input); JSON out, merge, sweep, scenario files."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tailguard.cli import main
from tailguard.loadtest.results import Result
from tests.unit.loadtest.responders import Responder

pytestmark = pytest.mark.timeout(60)

QUICK = ["--duration", "0.5s", "--max-requests", "300", "--quiet"]


@pytest.fixture(scope="module")
def server() -> Iterator[Responder]:
    with Responder() as responder:
        yield responder


def test_slos_set_the_exit_code(server: Responder, capsys: pytest.CaptureFixture[str]) -> None:
    passing = ["--slo", "p99<5s", "--slo", "errors<1%", "--slo", "rps>1"]
    assert main(["loadtest", server.url, "--users", "2", *QUICK, *passing]) == 0
    assert main(["loadtest", server.url, "--rate", "200", *QUICK, "--slo", "p50<1us"]) == 1
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--users", "2", "--slo", "p99<fast"], "--slo='p99<fast': expected"),
        (
            ["--users", "2", "--slo", "errors<1"],
            "--slo='errors<1': expected errors as a percentage",
        ),
        (["--users", "0"], "--users: expected an integer >= 1"),
        (["--rate", "-5"], "--rate: expected requests per second"),
        (["--users", "2", "--duration", "soon"], "--duration: expected a duration"),
        (["--users", "2", "--rate", "5"], "not allowed with argument"),
        ([], "give the load"),
        (["--users", "2", "--segment", "3/2"], "--segment='3/2': expected i/n"),
        (["--users", "2", "--loop", "trio"], "--loop: invalid choice"),
    ],
)
def test_usage_errors_exit_2_with_one_line(
    server: Responder, argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["loadtest", server.url, *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tailguard: error: ")
    assert says in err
    assert err.count("\n") == 1


def test_a_non_loopback_target_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["loadtest", "http://example.com/", "--users", "1"]) == 2
    assert "--allow-host example.com" in capsys.readouterr().err


def test_json_result_and_summary(
    server: Responder, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run.json"
    argv = ["loadtest", server.url, "--rate", "400", "--duration", "0.5s", "--json", str(out)]
    assert main([*argv, "--slo", "p99<5s"]) == 0
    data = json.loads(out.read_text())
    assert data["format"] == "tailguard-loadtest/1"
    assert data["totals"]["requests"] == 200
    assert data["settings"]["rate"] == 400
    assert data["passed"] is True
    assert Result.from_dict(data).totals.requests == 200
    captured = capsys.readouterr()
    assert "GET /" in captured.out
    assert "p99<5s" in captured.out
    assert "req/s" in captured.err  # one plain progress line per second (not a terminal)
    assert main([*argv, "--json", str(tmp_path / "missing" / "x.json")]) == 1


def test_segments_then_merge(
    server: Responder, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = []
    for i in (1, 2):
        files.append(str(tmp_path / f"part{i}.json"))
        argv = ["loadtest", server.url, "--users", "4", *QUICK, "--segment", f"{i}/2"]
        assert main([*argv, "--json", files[-1]]) == 0
    merged = tmp_path / "merged.json"
    assert main(["loadtest", "merge", *files, "--json", str(merged), "--slo", "p99<5s"]) == 0
    data = json.loads(merged.read_text())
    assert data["totals"]["requests"] == 300
    assert data["settings"]["segment"] == "1/1"
    assert data["settings"]["users"] == 4
    assert main(["loadtest", "merge", *files, "--slo", "p50<1us"]) == 1
    assert main(["loadtest", "merge"]) == 2
    assert main(["loadtest", "merge", *files, "--users", "3"]) == 2
    (tmp_path / "bad.json").write_text("{}")
    assert main(["loadtest", "merge", str(tmp_path / "bad.json")]) == 1
    assert main(["loadtest", "merge", str(tmp_path / "none.json")]) == 1


def test_sweep_prints_a_csv_for_capacity_fit(
    server: Responder, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sweep.json"
    argv = ["loadtest", server.url, "--sweep", "1,2,4", "--duration", "0.3s", "--json", str(out)]
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "concurrency,throughput"
    assert [line.split(",")[0] for line in lines[1:]] == ["1", "2", "4"]
    assert all(float(line.split(",")[1]) > 0 for line in lines[1:])
    data = json.loads(out.read_text())
    assert [p["concurrency"] for p in data["sweep"]] == [1, 2, 4]
    assert set(data["sweep"][0]) == {"concurrency", "throughput", "p99_ms"}


SCENARIO = """
from tailguard.loadtest import User, task, constant

class Browse(User):
    wait_time = constant(0)
    slos = ["errors<1%"]

    @task(3)
    async def home(self):
        await self.client.get("/")

    @task
    async def item(self):
        await self.client.get("/items/1", name="GET /items/{id}")
"""


def test_a_scenario_file(server: Responder, tmp_path: Path) -> None:
    path = tmp_path / "scenario.py"
    path.write_text(SCENARIO)
    out = tmp_path / "run.json"
    argv = ["loadtest", str(path), "--host", server.url, "--users", "3", *QUICK]
    assert main([*argv, "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert set(data["actions"]) == {"home", "GET /items/{id}"}
    assert [s["expr"] for s in data["slos"]] == ["errors<1%"]
    assert data["target"] == str(path)
    assert main(["loadtest", str(path), "--users", "1", *QUICK]) == 2  # no host anywhere
    (tmp_path / "broken.py").write_text("import nothing_such\n")
    assert main(["loadtest", str(tmp_path / "broken.py"), "--users", "1"]) == 2


def test_html_report(server: Responder, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    assert main(["loadtest", server.url, "--users", "2", *QUICK, "--html", str(out)]) == 0
    assert out.read_text().startswith("<!DOCTYPE html>")
