"""The stack's configuration without starting it: bad options named, the generated HAProxy
configuration valid for every algorithm (checked by haproxy itself), values passed to
supervisord intact, and clear errors for a missing haproxy or a port in use."""

from __future__ import annotations

import shlex
import socket
import subprocess
from pathlib import Path

import pytest
from supervisor.datatypes import dict_of_key_value_pairs

from shop.deploy import BALANCES, Stack, StackConfig, StackError
from shop.deploy import plan as deploy_plan
from shop.deploy.__main__ import main
from shop.deploy.plan import Plan
from shop.deploy.render import render_haproxy, render_supervisord
from tailguard.errors import ConfigurationError


def _plan(tmp_path: Path, **options: object) -> Plan:
    config = StackConfig(state_dir=tmp_path, **options)  # type: ignore[arg-type]
    n, k = config.instances, config.recommenders
    return Plan(
        config=config,
        state_dir=tmp_path,
        stack_id="test",
        port=18080,
        stats_port=18404,
        instance_ports=tuple(range(18001, 18001 + n)),
        payments_port=19001,
        recommender_ports=tuple(range(19002, 19002 + k)),
    )


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"balance": "random"}, "balance='random': expected one of roundrobin, leastconn, source"),
        ({"instances": 2, "weights": (1, 2, 3)}, "weights=(1, 2, 3): expected 2 weights"),
        ({"instances": 2, "weights": (1, 300)}, "expected integers from 0 to 256"),
        ({"instances": 2, "weights": (0, 0)}, "at least one weight above 0"),
        ({"database_url": "sqlite+aiosqlite:///x.db"}, "database_url="),
        ({"namespace": "Bad Name"}, "namespace='Bad Name'"),
        ({"port": 70000}, "port=70000"),
        ({"check_interval": 0}, "check_interval=0"),
    ],
)
def test_a_bad_option_is_named(options: dict[str, object], named: str) -> None:
    with pytest.raises(ConfigurationError, match=named.replace("(", r"\(").replace(")", r"\)")):
        StackConfig(**options)  # type: ignore[arg-type]


def test_the_command_line_names_a_bad_option(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["up", "--instances", "2", "--weights", "1,2,3"]) == 2
    assert "--weights=(1, 2, 3): expected 2 weights" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        main(["up", "--balance", "random"])
    assert exited.value.code == 2
    assert "invalid choice: 'random'" in capsys.readouterr().err


@pytest.mark.parametrize("balance", BALANCES)
def test_haproxy_accepts_the_generated_configuration(
    haproxy: str, tmp_path: Path, balance: str
) -> None:
    plan = _plan(tmp_path, instances=3, balance=balance, weights=(3, 1, 0))
    text = render_haproxy(plan)
    plan.haproxy_cfg.write_text(text)

    check = subprocess.run([haproxy, "-c", "-f", str(plan.haproxy_cfg)], capture_output=True)

    assert check.returncode == 0, check.stderr.decode()
    assert b"WARNING" not in check.stdout + check.stderr, check.stderr.decode()
    assert f"balance {balance}\n" in text
    assert ("hash-type consistent" in text) == (balance == "source")
    assert "server shop-0 127.0.0.1:18001 weight 3" in text
    assert "server shop-2 127.0.0.1:18003 weight 0" in text
    assert "option httpchk GET /readyz" in text
    # Only connection failures are retried: a request that reached an instance is not resent.
    assert "retry-on conn-failure\n" in text
    assert "option redispatch" in text


def test_supervisord_gets_every_value_intact(tmp_path: Path) -> None:
    env = {"SHOP_NAIVE": "cache,jitter", "SHOP_X": "50% off, isn't it"}
    plan = _plan(tmp_path, worker=True, env=env)
    programs = plan.programs("k" * 40, "t" * 20)
    text = render_supervisord(plan, programs, detach=False)

    shop0 = text.split("[program:shop-0]")[1].split("[program:")[0]
    lines = dict(line.split("=", 1) for line in shop0.strip().splitlines())
    parsed = dict_of_key_value_pairs(lines["environment"].replace("%%", "%"))
    assert {k: parsed[k] for k in env} == env
    assert parsed["SHOP_RECOMMENDATIONS_URLS"] == ",".join(plan.recommender_urls)
    assert parsed["SHOP_SECRET_KEY"] == "k" * 40
    assert shlex.split(lines["command"])[-6:] == [
        "serve", "--host", "127.0.0.1", "--port", "18001", "--no-prepare",
    ]  # fmt: skip
    assert "[program:worker]" in text
    assert "[program:worker]" not in render_supervisord(
        _plan(tmp_path, worker=False), _plan(tmp_path, worker=False).programs("k", "t"),
        detach=True,
    )  # fmt: skip


def test_a_value_supervisord_cannot_pass_on_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ConfigurationError, match="env\\['SHOP_Q'\\]="):
        StackConfig(env={"SHOP_Q": 'say "hi"'})
    assert main(["up", "--env", "SHOP_Q='hi'"]) == 2
    assert "--env['SHOP_Q']=\"'hi'\": expected one line" in capsys.readouterr().err


def test_a_missing_haproxy_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(deploy_plan, "HAPROXY", str(tmp_path / "no-haproxy"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(StackError, match=r"haproxy is not installed .*make haproxy"):
        Stack(StackConfig(state_dir=tmp_path, worker=False)).start()


def test_a_port_in_use_is_named(haproxy: str, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = StackConfig(
            state_dir=tmp_path, worker=False, port=0, stats_port=port, base_port=0,
            simulator_port=0,
        )  # fmt: skip
        with pytest.raises(StackError, match=f"port {port} \\(HAProxy's stats page\\) is already"):
            Stack(config).start()
    assert not list(tmp_path.glob("*.conf"))  # nothing was started
