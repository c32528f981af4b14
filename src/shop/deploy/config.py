"""What a stack is made of: :class:`StackConfig` (what the user asks for) and :class:`Plan` (the
same with every port chosen and every program spelled out), saved as ``stack.json`` in the
state directory so ``down`` and ``status`` work from another process.

A stack is HAProxy in front of ``instances`` ``shop serve`` processes, the event worker, the
payment simulator and ``recommenders`` recommender simulators, all on one loopback host, against
one PostgreSQL database and one Redis namespace, each program run by supervisord.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from tailguard.errors import ConfigurationError

__all__ = [
    "BALANCES",
    "DEFAULT_DATABASE_URL",
    "DEFAULT_REDIS_URL",
    "Balance",
    "Plan",
    "Program",
    "StackConfig",
    "StackError",
    "find_haproxy",
]

Balance = Literal["roundrobin", "leastconn", "source"]
"""HAProxy's ``balance`` algorithm: in turn (by weight), fewest connections, or a consistent
hash of the client's IP address (the same client lands on the same instance)."""
BALANCES: tuple[str, ...] = get_args(Balance)

DEFAULT_DATABASE_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/shop_stack"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
HAPROXY = "/usr/sbin/haproxy"
MAX_WEIGHT = 256  # HAProxy's bound on a server weight
_NAMESPACE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")  # shop.config.Settings.namespace
_VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DATABASE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


class StackError(RuntimeError):
    """The stack could not be started, reached or stopped; the message says what and why."""


@dataclass(frozen=True, kw_only=True)
class StackConfig:
    """A stack as asked for. Ports set to 0 are picked free at start (what the tests do).

    Times are in seconds. A bad value raises :class:`~tailguard.errors.ConfigurationError`
    naming the option.
    """

    instances: int = 2
    """``shop serve`` processes behind HAProxy."""
    balance: Balance = "roundrobin"
    weights: tuple[int, ...] = ()
    """One HAProxy weight (0..256) per instance; empty: 1 each."""
    worker: bool = True
    """Run the event worker (``shop worker``)."""
    recommenders: int = 3
    """Recommender simulator replicas."""
    database_url: str = DEFAULT_DATABASE_URL
    """PostgreSQL (``postgresql+asyncpg://``); the database is created when missing, then
    migrated, and seeded when empty."""
    redis_url: str = DEFAULT_REDIS_URL
    namespace: str = "stack"
    """``SHOP_NAMESPACE``: the prefix of every Redis key the stack's shops use."""
    state_dir: Path = Path("out/stack")
    """Generated configs, secrets, pids, logs and ``stack.json`` (the URLs)."""
    host: str = "127.0.0.1"
    port: int = 8080
    """HAProxy's frontend."""
    stats_port: int = 8404
    """HAProxy's stats page (``/``, CSV at ``/;csv``) and Prometheus exporter (``/metrics``)."""
    base_port: int = 8001
    """Instance i serves on ``base_port + i``; 0: free ports."""
    simulator_port: int = 9001
    """The payment gateway's port; recommender j serves on ``simulator_port + 1 + j``."""
    check_interval: float = 2.0
    """Seconds between two HAProxy health checks of a server (``inter``)."""
    fall: int = 3
    """Failed checks in a row that take a server out."""
    rise: int = 2
    """Passed checks in a row that put it back."""
    connect_timeout: float = 2.0
    """Seconds HAProxy waits for a TCP connection to an instance (then retries another)."""
    server_timeout: float = 30.0
    """Seconds HAProxy waits for an instance's answer."""
    client_timeout: float = 30.0
    """Seconds HAProxy waits for a client to send (idle client connections)."""
    retries: int = 2
    """Connection attempts HAProxy retries (on another server: ``option redispatch``)."""
    seed_users: int = 1000
    seed_products: int = 500
    seed_orders: int = 20_000
    payments_behaviour: str = "median=20ms,p99=80ms"
    recommendations_behaviour: str = "median=30ms,p99=120ms"
    autorestart: bool = True
    """supervisord restarts a program that exits (or is killed)."""
    env: Mapping[str, str] = field(default_factory=dict)
    """Extra environment for every shop program (e.g. ``SHOP_BROKER_URL``); overrides the
    stack's own ``SHOP_*`` values."""

    def __post_init__(self) -> None:
        def bad(option: str, value: object, expected: str) -> ConfigurationError:
            return ConfigurationError(option, value, expected)

        if self.balance not in BALANCES:
            raise bad("balance", self.balance, f"one of {', '.join(BALANCES)}")
        if not 1 <= self.instances <= 64:
            raise bad("instances", self.instances, "an integer from 1 to 64")
        if self.weights and len(self.weights) != self.instances:
            raise bad("weights", self.weights, f"{self.instances} weights, one per instance")
        if any(not 0 <= w <= MAX_WEIGHT for w in self.weights):
            raise bad("weights", self.weights, f"integers from 0 to {MAX_WEIGHT}")
        if self.weights and not any(self.weights):
            raise bad("weights", self.weights, "at least one weight above 0")
        if not 1 <= self.recommenders <= 16:
            raise bad("recommenders", self.recommenders, "an integer from 1 to 16")
        if not _NAMESPACE.match(self.namespace):
            raise bad("namespace", self.namespace, "lower-case letters, digits, _ or -")
        if not self.database_url.startswith(
            ("postgresql+asyncpg://", "postgresql://", "postgres://")
        ):
            raise bad("database_url", self.database_url, "a postgresql:// URL")
        if not _DATABASE_NAME.match(self.database_name):
            raise bad("database_url", self.database_url, "a URL naming a database")
        if not self.redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise bad("redis_url", self.redis_url, "a redis:// URL")
        for option in ("port", "stats_port", "base_port", "simulator_port"):
            value = getattr(self, option)
            if not 0 <= value <= 65535:
                raise bad(option, value, "a TCP port (0: a free one)")
        for option in ("check_interval", "connect_timeout", "server_timeout", "client_timeout"):
            if getattr(self, option) <= 0:
                raise bad(option, getattr(self, option), "seconds > 0")
        for option in ("fall", "rise"):
            if getattr(self, option) < 1:
                raise bad(option, getattr(self, option), "an integer >= 1")
        if self.retries < 0:
            raise bad("retries", self.retries, "an integer >= 0")
        for key, value in self.env.items():
            if not _VARIABLE.match(key):
                raise bad("env", key, "an environment variable name")
            if '"' in value or value[:1] == "'" or value[-1:] == "'" or "\n" in value:
                # supervisord strips quotes from a value's ends; one line per setting
                raise bad(f"env[{key!r}]", value, 'one line without " or a quote at either end')
        for option in ("seed_users", "seed_products", "seed_orders"):
            if getattr(self, option) < 0:
                raise bad(option, getattr(self, option), "an integer >= 0")

    @property
    def async_database_url(self) -> str:
        """The database URL with the asyncpg driver the shop uses."""
        return "postgresql+asyncpg://" + self.database_url.split("://", 1)[1]

    @property
    def database_name(self) -> str:
        """The database the URL names (``shop_stack`` by default)."""
        path = self.database_url.split("://", 1)[1].split("?", 1)[0]
        return path.split("/", 1)[1] if "/" in path else ""

    @property
    def instance_weights(self) -> tuple[int, ...]:
        """The weights, 1 each when none were given."""
        return self.weights or (1,) * self.instances

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict (:meth:`from_json` reads it back)."""
        data = dataclasses.asdict(self)
        data["state_dir"] = str(self.state_dir)
        data["weights"] = list(self.weights)
        data["env"] = dict(self.env)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StackConfig:
        """The config :meth:`to_json` wrote."""
        values = dict(data)
        values["state_dir"] = Path(values["state_dir"])
        values["weights"] = tuple(values["weights"])
        return cls(**values)


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
            "SHOP_REDIS_URL": config.redis_url,
            "SHOP_NAMESPACE": config.namespace,
            "SHOP_SECRET_KEY": secret_key,
            "SHOP_ADMIN_TOKEN": admin_token,
            "SHOP_PAYMENTS_URLS": self.payments_url,
            "SHOP_RECOMMENDATIONS_URLS": ",".join(self.recommender_urls),
            # N instances share one PostgreSQL (max_connections 100 by default).
            "SHOP_POOL_SIZE": "10",
            "SHOP_MAX_OVERFLOW": "5",
        }
        env.update(config.env)
        return env

    def programs(self, secret_key: str, admin_token: str) -> list[Program]:
        """Every program supervisord runs, simulators first, HAProxy last."""
        shop = (self.python, "-m", "shop.entrypoints.cli")
        env = self.shop_env(secret_key, admin_token)
        config = self.config
        programs = [
            Program(
                "payments",
                (
                    *shop,
                    "payments",
                    "--port",
                    str(self.payments_port),
                    "--behaviour",
                    config.payments_behaviour,
                ),
                self.payments_port,
                priority=100,
            ),
        ]
        for j, port in enumerate(self.recommender_ports):
            programs.append(
                Program(
                    f"recommender-{j}",
                    (
                        *shop,
                        "recommendations",
                        "--port",
                        str(port),
                        "--seed",
                        str(j),
                        "--name",
                        f"recommender-{j}",
                        "--behaviour",
                        config.recommendations_behaviour,
                    ),
                    port,
                    priority=100,
                )
            )
        for name, port in zip(self.instance_names, self.instance_ports, strict=True):
            data = self.state_dir / "data" / name
            programs.append(
                Program(
                    name,
                    (*shop, "serve", "--host", "127.0.0.1", "--port", str(port), "--no-prepare"),
                    port,
                    env={**env, "SHOP_DATA_DIR": str(data)},
                    priority=200,
                )
            )
        if config.worker:
            data = self.state_dir / "data" / "worker"
            programs.append(
                Program(
                    "worker",
                    (*shop, "worker"),
                    None,
                    env={**env, "SHOP_DATA_DIR": str(data)},
                    priority=200,
                )
            )
        programs.append(
            Program(
                "haproxy",
                (self.haproxy, "-db", "-f", str(self.haproxy_cfg)),
                self.port,
                priority=900,
            )
        )
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
