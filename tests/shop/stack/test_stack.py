"""The stack on real HAProxy, PostgreSQL and Redis: any instance serves any user, sessions
outlive their instance, HAProxy honours its algorithm and weights and takes a killed instance
out, and ``down`` leaves no process behind."""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from shop.deploy import Stack, StackConfig
from shop.deploy._procs import alive, port_in_use
from tests.shop.stack.conftest import get, served_by, sign_in

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.timeout(120)]

SETTLE = 10.0
"""Seconds HAProxy may take to see a change (checks every 0.3 s here)."""


def _cart(url: str, headers: dict[str, str]) -> tuple[str, list[dict[str, object]]]:
    response = get(url + "/cart", headers=headers)
    assert response.status_code == 200, response.text
    return response.headers.get("x-served-by", "direct"), response.json()["items"]


def test_a_cart_built_through_one_instance_is_read_through_another(stack: Stack) -> None:
    a, b = stack.instance_urls
    headers = sign_in(a, 1)
    added = httpx.post(
        a + "/cart/items", json={"product_id": 3, "quantity": 2}, headers=headers, timeout=10
    )
    assert added.status_code == 201, added.text

    _, on_b = _cart(b, headers)
    assert on_b == added.json()["items"]
    through_haproxy = [_cart(stack.url, headers) for _ in range(6)]
    assert {items == on_b for _, items in through_haproxy} == {True}
    assert {name for name, _ in through_haproxy} == set(stack.instance_names)


def test_a_session_survives_the_restart_of_the_instance_that_made_it(stack: Stack) -> None:
    a = stack.instance_urls[0]
    headers = sign_in(a, 2)
    added = httpx.post(a + "/cart/items", json={"product_id": 5}, headers=headers, timeout=10)
    assert added.status_code == 201, added.text
    before = stack.instance_pid(0)

    stack.restart_instance(0)

    assert stack.instance_pid(0) not in (0, before)
    assert not alive(before)
    _, items = _cart(a, headers)
    assert items == added.json()["items"]
    profile = get(a + "/users/2", headers=headers)
    assert profile.status_code == 200, profile.text


def test_roundrobin_splits_by_weight(stack: Stack) -> None:
    stack.reconfigure(balance="roundrobin", weights=(3, 1))
    assert {n: s.weight for n, s in stack.servers().items()} == {"shop-0": 3, "shop-1": 1}

    counts = collections.Counter(served_by(stack.url + "/healthz") for _ in range(40))

    assert abs(counts["shop-0"] - 30) <= 2, counts
    assert counts["shop-0"] + counts["shop-1"] == 40

    stack.set_weight(1, 0)  # at run time, through HAProxy's runtime API
    try:
        assert {served_by(stack.url + "/healthz") for _ in range(8)} == {"shop-0"}
    finally:
        stack.set_weight(1, 1)


def test_source_keeps_each_client_on_one_instance(stack: Stack) -> None:
    stack.reconfigure(balance="source", weights=(1, 1))

    homes = {}
    for client in range(2, 22):  # 20 clients, each from its own loopback address
        address = f"127.0.0.{client}"
        seen = {served_by(stack.url + "/healthz", local_address=address) for _ in range(4)}
        assert len(seen) == 1, (address, seen)
        homes[address] = seen.pop()

    assert set(homes.values()) == set(stack.instance_names), homes


def test_leastconn_serves(stack: Stack) -> None:
    stack.reconfigure(balance="leastconn", weights=(1, 1))
    assert "balance leastconn" in stack.plan.haproxy_cfg.read_text()
    assert {served_by(stack.url + "/healthz") for _ in range(10)} <= set(stack.instance_names)


def _log(stack: Stack) -> str:
    return (stack.plan.logs / "haproxy.log").read_text()[-3000:]


def test_the_health_check_takes_a_killed_instance_out(stack: Stack) -> None:
    stack.reconfigure(balance="roundrobin", weights=(1, 1))
    try:
        pid = stack.kill_instance(1)
        deadline = time.monotonic() + SETTLE
        answered = 0
        while not stack.servers()["shop-1"].status.startswith("DOWN"):
            # Retried on the other instance (retry-on conn-failure, redispatch) meanwhile.
            response = get(stack.url + "/products/1")
            assert response.status_code == 200, (response.text, stack.servers(), _log(stack))
            answered += 1
            assert time.monotonic() < deadline, stack.servers()
            time.sleep(0.05)

        assert not alive(pid)
        assert stack.servers()["shop-1"].check_status == "L4CON"  # connection refused
        assert {served_by(stack.url + "/products/1") for _ in range(10)} == {"shop-0"}
    finally:
        stack.restart_instance(1)
    assert stack.servers()["shop-1"].status == "UP"


def test_every_listed_url_answers(stack: Stack) -> None:
    urls = stack.urls()
    assert urls["metrics"] == [u + "/metrics" for u in stack.instance_urls]
    for url in urls["metrics"]:
        response = get(url)
        assert response.status_code == 200
        assert "# HELP" in response.text
    assert get(urls["stats"] + ";csv").text.startswith("# pxname,svname")
    assert "haproxy_server_uweight" in get(urls["haproxy_metrics"]).text
    for url in [urls["payments"], *urls["recommenders"]]:
        assert get(url + "/healthz").status_code == 200
    saved = json.loads(stack.plan.stack_json.read_text())
    assert saved["urls"] == urls
    assert (stack.plan.state_dir / "secret_key").stat().st_mode & 0o777 == 0o600


def _deploy(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shop.deploy", *args],
        capture_output=True,
        text=True,
        timeout=90,
    )


def _up(config: StackConfig, state_dir: Path) -> dict[str, list[int]]:
    """``python -m shop.deploy up``, detached, with one instance; the pids it recorded."""
    started = _deploy(
        "up", "--state-dir", str(state_dir), "--instances", "1", "--recommenders", "1",
        "--database-url", config.database_url, "--redis-url", config.redis_url,
        "--namespace", config.namespace, "--port", "0", "--stats-port", "0",
        "--base-port", "0", "--simulator-port", "0", "--json",
        *([] if config.worker else ["--no-worker"]),
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    assert json.loads(started.stdout)["frontend"].startswith("http://127.0.0.1:")
    pids: dict[str, list[int]] = json.loads((state_dir / "stack.json").read_text())["pids"]
    assert {"supervisord", "haproxy", "shop-0", "payments", "recommender-0"} <= set(pids)
    assert all(alive(pid, started) for pid, started in pids.values())
    return pids


@pytest.mark.parametrize("supervisord", ["running", "killed"])
def test_down_leaves_no_process_behind(
    stack_config: StackConfig, tmp_path: Path, supervisord: str
) -> None:
    state_dir = tmp_path / "stack"
    try:
        pids = _up(stack_config, state_dir)
        frontend = json.loads((state_dir / "stack.json").read_text())["port"]
        if supervisord == "killed":  # its programs are orphans: down finds them by pid
            os.kill(pids["supervisord"][0], signal.SIGKILL)
        assert _deploy("status", "--state-dir", str(state_dir)).returncode == (
            0 if supervisord == "running" else 1
        )
    finally:
        stopped = _deploy("down", "--state-dir", str(state_dir))
    assert stopped.returncode == 0, stopped.stderr
    assert [name for name, (pid, t) in pids.items() if alive(pid, t)] == []
    assert not port_in_use("127.0.0.1", frontend)
    if supervisord == "killed":
        assert "killed leftover pids" in stopped.stdout
