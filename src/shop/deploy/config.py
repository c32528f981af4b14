"""What a stack is made of, as asked for: :class:`StackConfig`, checked when made (a bad option
raises ConfigurationError naming it). :mod:`shop.deploy.plan` turns it into ports and programs.

A stack is HAProxy in front of ``instances`` ``shop serve`` processes, the event worker, the
payment simulator and ``recommenders`` recommender simulators, all on one loopback host, against
one PostgreSQL database and one Redis namespace, each program run by supervisord.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from tailguard.errors import ConfigurationError

__all__ = [
    "BALANCES",
    "DEFAULT_DATABASE_URL",
    "DEFAULT_REDIS_URL",
    "MAX_WEIGHT",
    "Balance",
    "StackConfig",
    "StackError",
]

Balance = Literal["roundrobin", "leastconn", "source"]
"""HAProxy's ``balance`` algorithm: in turn (by weight), fewest connections, or a consistent
hash of the client's IP address (the same client lands on the same instance)."""
BALANCES: tuple[str, ...] = get_args(Balance)

DEFAULT_DATABASE_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/shop_stack"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
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
    shards: int = 1
    """Databases users and their orders are sharded over (SHOP_DATABASE_URLS): the database of
    ``database_url`` (also the catalogue's) and ``{name}_s1`` .. ``{name}_s{n-1}`` beside it,
    each created when missing."""
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
        if not 1 <= self.shards <= 64:
            raise bad("shards", self.shards, "an integer from 1 to 64")
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
    def shard_urls(self) -> tuple[str, ...]:
        """The asyncpg URLs of the shards, the primary's first (one: no sharding)."""
        base = self.async_database_url
        head, _, query = base.partition("?")
        root = head.rsplit("/", 1)[0]
        tail = f"?{query}" if query else ""
        names = [self.database_name] + [f"{self.database_name}_s{i}" for i in range(1, self.shards)]
        return tuple(f"{root}/{name}{tail}" for name in names)

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
