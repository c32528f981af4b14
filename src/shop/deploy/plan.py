"""A stack with every port chosen and every program spelled out: :class:`Plan`, what the
rendered configs say, saved as ``stack.json`` in the state directory so ``down`` and ``status``
work from another process."""

from __future__ import annotations

import json
import shutil
import sys
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shop.deploy._procs import free_port, port_in_use
from shop.deploy.config import StackConfig, StackError

__all__ = ["HAPROXY", "Plan", "Program", "find_haproxy", "make_plan"]

HAPROXY = "/usr/sbin/haproxy"  # Debian's package


@dataclass(frozen=True)
class Program:
    """One program of the stack, as supervisord runs it."""

    name: str
    """supervisord's name for it (``haproxy``, ``shop-0``, ``worker``, ``payments``, ...)."""
    command: tuple[str, ...]
    port: int | None
    """Where it serves HTTP (None: the worker)."""
    env: Mapping[str, str] = field(default_factory=dict)
    priority: int = 500
    """supervisord starts lower priorities first and stops them last."""

    @property
    def url(self) -> str | None:
        """``http://127.0.0.1:port`` for a program that serves HTTP."""
        return None if self.port is None else f"http://127.0.0.1:{self.port}"


@dataclass(frozen=True)
class Plan:
    """A config with every port chosen: what the rendered configs and ``stack.json`` say."""

    config: StackConfig
    state_dir: Path
    """Absolute."""
    stack_id: str
    """Marks every process of this stack (``TAILGUARD_STACK`` in its environment)."""
    port: int
    stats_port: int
    instance_ports: tuple[int, ...]
    payments_port: int
    recommender_ports: tuple[int, ...]
    haproxy: str = HAPROXY
    python: str = sys.executable

    @property
    def host(self) -> str:
        return self.config.host

    @property
    def url(self) -> str:
        """The HAProxy frontend."""
        return f"http://{self.host}:{self.port}"

    @property
    def stats_url(self) -> str:
        """HAProxy's stats page (CSV at ``stats_url + ';csv'``)."""
        return f"http://{self.host}:{self.stats_port}/"

    @property
    def instance_names(self) -> tuple[str, ...]:
        """``shop-0``, ``shop-1``, ...: the supervisord program and the HAProxy server name."""
        return tuple(f"shop-{i}" for i in range(len(self.instance_ports)))

    @property
    def instance_urls(self) -> tuple[str, ...]:
        return tuple(f"http://127.0.0.1:{port}" for port in self.instance_ports)

    @property
    def payments_url(self) -> str:
        return f"http://127.0.0.1:{self.payments_port}"

    @property
    def recommender_urls(self) -> tuple[str, ...]:
        return tuple(f"http://127.0.0.1:{port}" for port in self.recommender_ports)

    # -- files in the state directory ------------------------------------------------------

    @property
    def logs(self) -> Path:
        return self.state_dir / "logs"

    @property
    def haproxy_cfg(self) -> Path:
        return self.state_dir / "haproxy.cfg"

    @property
    def supervisord_conf(self) -> Path:
        return self.state_dir / "supervisord.conf"

    @property
    def supervisord_pidfile(self) -> Path:
        return self.state_dir / "supervisord.pid"

    @property
    def supervisor_socket(self) -> Path:
        """supervisord's control socket (in the state dir when its path fits a socket's
        108 bytes, in /tmp otherwise)."""
        path = self.state_dir / "supervisor.sock"
        if len(str(path)) < 100:
            return path
        return Path("/tmp") / f"tailguard-stack-{self.stack_id}.sock"

    @property
    def haproxy_socket(self) -> Path:
        """HAProxy's runtime API (``set weight``, ``show stat``), admin level, mode 600."""
        path = self.state_dir / "haproxy.sock"
        if len(str(path)) < 100:
            return path
        return Path("/tmp") / f"tailguard-stack-{self.stack_id}-haproxy.sock"

    @property
    def stack_json(self) -> Path:
        return self.state_dir / "stack.json"

    # -- the programs ----------------------------------------------------------------------

    def shop_env(self, secret_key: str, admin_token: str) -> dict[str, str]:
        """The environment every shop program shares: one database, one Redis namespace, one
        secret and admin token (any instance serves any user), the simulators by URL."""
        config = self.config
        env = {
            "SHOP_DATABASE_URL": config.async_database_url,
            "SHOP_DATABASE_URLS": ",".join(config.shard_urls) if config.shards > 1 else "",
            "SHOP_REDIS_URL": config.redis_url,
            "SHOP_NAMESPACE": config.namespace,
            "SHOP_SECRET_KEY": secret_key,
            "SHOP_ADMIN_TOKEN": admin_token,
            "SHOP_PAYMENTS_URLS": self.payments_url,
            "SHOP_RECOMMENDATIONS_URLS": ",".join(self.recommender_urls),
            # N instances share one PostgreSQL (max_connections 100 by default).
            "SHOP_POOL_SIZE": "10",
            "SHOP_MAX_OVERFLOW": "5",
            # /readyz decides whether HAProxy keeps an instance: N instances, HAProxy and the
            # simulators share the host's cores, and a busy but healthy instance may take more
            # than the default 0.5 s to get a database connection and answer SELECT 1.
            "SHOP_READY_TIMEOUT": "1.0",
        }
        env.update(config.env)
        return env

    def programs(self, secret_key: str, admin_token: str) -> list[Program]:
        """Every program supervisord runs: simulators first, HAProxy last."""
        config = self.config
        env = self.shop_env(secret_key, admin_token)

        def shop(*args: str) -> tuple[str, ...]:
            return (self.python, "-m", "shop.entrypoints.cli", *args)

        def data(name: str) -> dict[str, str]:
            return {**env, "SHOP_DATA_DIR": str(self.state_dir / "data" / name)}

        args = [*f"payments --port {self.payments_port}".split(), "--behaviour"]
        payments = shop(*args, config.payments_behaviour)
        programs = [Program("payments", payments, self.payments_port, priority=100)]
        for j, port in enumerate(self.recommender_ports):
            args = f"recommendations --port {port} --seed {j} --name recommender-{j}".split()
            recommender = shop(*args, "--behaviour", config.recommendations_behaviour)
            programs.append(Program(f"recommender-{j}", recommender, port, priority=100))
        for name, port in zip(self.instance_names, self.instance_ports, strict=True):
            args = f"serve --host 127.0.0.1 --port {port} --no-prepare".split()
            programs.append(Program(name, shop(*args), port, env=data(name), priority=200))
        if config.worker:
            programs.append(
                Program("worker", shop("worker"), None, env=data("worker"), priority=200)
            )
        haproxy = (self.haproxy, "-db", "-f", str(self.haproxy_cfg))
        programs.append(Program("haproxy", haproxy, self.port, priority=900))
        return programs

    def urls(self) -> dict[str, Any]:
        """The URLs ``make stack`` prints and ``stack.json`` keeps."""
        return {
            "frontend": self.url,
            "stats": self.stats_url,
            "haproxy_metrics": f"http://{self.host}:{self.stats_port}/metrics",
            "instances": list(self.instance_urls),
            "metrics": [url + "/metrics" for url in self.instance_urls],
            "payments": self.payments_url,
            "recommenders": list(self.recommender_urls),
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "stack_id": self.stack_id,
            "config": self.config.to_json(),
            "state_dir": str(self.state_dir),
            "port": self.port,
            "stats_port": self.stats_port,
            "instance_ports": list(self.instance_ports),
            "payments_port": self.payments_port,
            "recommender_ports": list(self.recommender_ports),
            "haproxy": self.haproxy,
            "python": self.python,
            "urls": self.urls(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Plan:
        return cls(
            config=StackConfig.from_json(data["config"]),
            state_dir=Path(data["state_dir"]),
            stack_id=data["stack_id"],
            port=data["port"],
            stats_port=data["stats_port"],
            instance_ports=tuple(data["instance_ports"]),
            payments_port=data["payments_port"],
            recommender_ports=tuple(data["recommender_ports"]),
            haproxy=data["haproxy"],
            python=data["python"],
        )

    def save(self, extra: Mapping[str, Any] | None = None) -> None:
        """Write ``stack.json`` (with ``extra`` keys, e.g. the pids)."""
        data = {**self.to_json(), **(extra or {})}
        self.stack_json.write_text(json.dumps(data, indent=2) + "\n")


def find_haproxy() -> str:
    """The haproxy binary (``/usr/sbin/haproxy`` or on PATH); FileNotFoundError naming the fix."""
    if Path(HAPROXY).is_file():
        return HAPROXY
    found = shutil.which("haproxy")
    if found:
        return found
    raise FileNotFoundError(
        f"haproxy is not installed (not at {HAPROXY}, not on PATH): run `make haproxy` "
        "(apt-get install haproxy)"
    )


def make_plan(config: StackConfig, state_dir: Path, haproxy: str) -> Plan:
    """``config`` with its ports chosen: 0 picks a free one; a port in use (or given twice)
    raises StackError naming it and the option that sets it."""
    wanted: list[tuple[str, str, int]] = [
        ("port", "HAProxy's frontend", config.port),
        ("stats_port", "HAProxy's stats page", config.stats_port),
    ]
    for i in range(config.instances):
        port = config.base_port + i if config.base_port else 0
        wanted.append(("base_port", f"instance shop-{i}", port))
    wanted.append(("simulator_port", "the payment simulator", config.simulator_port))
    for j in range(config.recommenders):
        port = config.simulator_port + 1 + j if config.simulator_port else 0
        wanted.append(("simulator_port", f"recommender-{j}", port))
    chosen: list[int] = []
    for option, role, port in wanted:
        how = f"--{option.replace('_', '-')} (StackConfig.{option}; 0 picks a free port)"
        if port == 0:
            port = free_port(config.host, taken=chosen)
        elif port in chosen:
            raise StackError(f"port {port} ({role}) is also given to another program: change {how}")
        elif port > 65535 or port_in_use(config.host, port):
            raise StackError(
                f"port {port} ({role}) is already in use on {config.host}: stop what "
                f"listens there or change {how}"
            )
        chosen.append(port)
    n, k = config.instances, config.recommenders
    return Plan(
        config=config,
        state_dir=state_dir,
        stack_id=uuid.uuid4().hex[:12],
        port=chosen[0],
        stats_port=chosen[1],
        instance_ports=tuple(chosen[2 : 2 + n]),
        payments_port=chosen[2 + n],
        recommender_ports=tuple(chosen[3 + n : 3 + n + k]),
        haproxy=haproxy,
    )
