"""The shop's settings: one pydantic-settings object per process, from ``SHOP_*`` variables.

Defaults are embedded (a SQLite file and in-process parts under ``.shop/``); setting
``SHOP_DATABASE_URL`` or ``SHOP_REDIS_URL`` switches to the real services with no other change.
A bad value fails at start with one line naming the variable (:func:`load_settings`).

Every practice the shop shows can be switched to its naive twin, on the same code path, with
``SHOP_NAIVE`` (a comma list of :class:`Naive` names) so the lab measures what each buys.
"""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from tailguard.errors import ConfigurationError

__all__ = ["Naive", "Settings", "load_settings"]


class Naive(enum.StrEnum):
    """The practices, by the name ``SHOP_NAIVE`` switches off (the one place they are named)."""

    EAGER_LOADING = "eager_loading"  # N+1 lazy loads of order items and products
    CONCURRENCY = "concurrency"  # the dashboard awaits its branches one after another
    CACHE = "cache"  # every read goes to the database
    TIMEOUTS = "timeouts"  # no timeout and no fallback around the recommender
    BREAKER = "breaker"  # no circuit breaker around payments
    BULKHEAD = "bulkhead"  # no bound on concurrent payment calls
    RETRY_BUDGET = "retry_budget"  # retries without a budget (amplification in an outage)
    JITTER = "jitter"  # synchronized TTLs and no single flight
    RATE_LIMIT = "rate_limit"  # no per-user rate limit on the cart
    POOL = "pool"  # an unbounded database pool
    BALANCING = "balancing"  # round robin instead of PowerOfTwo over recommender replicas


def _split(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """Everything a shop process reads from its environment (``SHOP_`` + the upper-cased name)."""

    # An empty variable counts as unset (a parent that clears SHOP_DATABASE_URL for a child).
    model_config = SettingsConfigDict(
        env_prefix="SHOP_", extra="forbid", frozen=True, env_ignore_empty=True
    )

    data_dir: Path = Path(".shop")
    """Where the embedded defaults keep their files (the SQLite database, the JWT secret)."""
    database_url: str | None = None
    """``postgresql+asyncpg://...`` or ``sqlite+aiosqlite:///...``; default: SQLite in data_dir."""
    database_urls: Annotated[list[str], NoDecode] = []
    """PostgreSQL shards for users and their orders (comma list), by user id (JumpHash); the
    catalogue stays in SHOP_DATABASE_URL (default: the first shard). One URL: no sharding."""
    shards: int | None = Field(None, ge=1, le=1024)
    """How many of SHOP_DATABASE_URLS hold users when the database has no shard map yet (a new
    deployment; default all of them); ``shop reshard --to N`` changes it from then on."""
    shard_refresh: float = Field(0.5, gt=0, le=60)
    """Seconds between an instance's reads of the shard map (sharded only)."""
    redis_url: str | None = None
    """``redis://...``: sessions, L2 cache, rate limits, invalidation; default: in-process."""

    namespace: str = Field("shop", pattern=r"^[a-z][a-z0-9_-]{0,31}$")
    """The prefix of every Redis key and channel the shop uses (cache, carts, rate limits,
    invalidation): shops sharing one Redis with different databases need different ones."""

    pool_size: int = Field(20, ge=1, le=1000)
    """Connections the database pool keeps open (the guide's ``pool_size``)."""
    max_overflow: int = Field(10, ge=0, le=1000)
    """Connections opened beyond pool_size under burst, closed when returned."""
    pool_timeout: float = Field(30.0, gt=0)
    """Seconds a request waits for a pooled connection before failing."""
    pool_recycle: float = Field(3600.0, gt=0)
    """Seconds after which a connection is replaced (server-side idle limits)."""
    pool_pre_ping: bool = True
    """Check a connection with a cheap round trip before handing it out."""

    secret_key: str | None = Field(None, min_length=32)
    """HS256 secret for tokens; default: generated once per data_dir, in ``data_dir/secret``."""
    admin_token: str | None = Field(None, min_length=16)
    """The ``X-Admin-Token`` of catalogue writes; default: generated once per data_dir."""
    token_ttl: float = Field(3600.0, gt=0, le=7 * 86400)
    """Seconds a token is valid."""
    session_ttl: float = Field(1800.0, gt=0)
    """Seconds a cart session lives after its last use (sliding)."""
    cookie_secure: bool = False
    """Mark the session cookie Secure (HTTPS only)."""

    payments_urls: Annotated[list[str], NoDecode] = []
    """Payment gateway replicas (comma list); empty: a simulator inside the serving process."""
    recommendations_urls: Annotated[list[str], NoDecode] = []
    """Recommender replicas (comma list); empty: simulators inside the serving process."""
    recommender_replicas: int = Field(3, ge=1, le=16)
    """How many embedded recommender replicas to start when none is given."""
    payment_timeout: float = Field(2.0, gt=0)
    """Seconds one charge may take, retries included."""
    recommendation_timeout: float = Field(0.25, gt=0)
    """Seconds the dashboard waits for recommendations before its fallback."""
    retry_budget: float = Field(0.1, ge=0.0, le=1.0)
    """Retries of charges may add at most this fraction of the charges (plus 1/s): the
    amplification an outage can cause (``retry_budget`` naive twin: 3 attempts each)."""
    payment_concurrency: int = Field(50, ge=1)
    """The payment bulkhead: charges in flight at once."""
    payment_queue: int = Field(50, ge=0)
    """The payment bulkhead: charges waiting for a slot."""

    cache_ttl: float = Field(60.0, gt=0)
    """Seconds a cached product or profile lives."""
    cart_rate: str = "120/minute"
    """Per-user rate limit on the cart routes (tailguard.ratelimit syntax)."""
    max_body_bytes: int = Field(64 * 1024, ge=1024)
    """Largest request body accepted, in bytes (413 beyond)."""

    broker_url: str | None = None
    """The Redis holding the event stream (redis://host:port/db); default SHOP_REDIS_URL. A
    separate one keeps the events apart from sessions and cache."""
    events_worker: Literal["auto", "embedded", "off"] = "auto"
    """Who applies the order events: ``embedded`` a worker inside each serving process (on an
    in-process stream without Redis), ``off`` a separate ``shop worker``; ``auto`` is embedded
    without SHOP_REDIS_URL and off with it."""
    events_batch: int = Field(100, ge=1, le=10_000)
    """Events the relay publishes and a worker takes per pass."""
    events_claim_idle: float = Field(30.0, gt=0)
    """Seconds an event may stay pending with a consumer before another one claims it."""
    events_max_deliveries: int = Field(5, ge=1, le=1000)
    """Deliveries of one event before it goes to the dead-letter stream."""
    events_maxlen: int = Field(1_000_000, ge=1000)
    """The stream's approximate cap in entries (older entries are trimmed)."""
    relay_interval: float = Field(1.0, gt=0)
    """Seconds an idle outbox relay waits before looking again; a commit in the same process
    wakes it at once, so this bounds only the delay of rows another process left."""

    ready_timeout: float = Field(0.5, gt=0, le=60)
    """Seconds each dependency has to answer ``/readyz`` (the database's answer decides
    readiness: too short a time takes a busy but healthy instance out of the balancer)."""

    tracing: Literal["off", "console", "otlp"] = "off"
    """OpenTelemetry spans: none, one line each on stdout, or OTLP/HTTP to
    ``OTEL_EXPORTER_OTLP_ENDPOINT``."""
    trace_sample_ratio: float = Field(1.0, ge=0.0, le=1.0)
    """The share of new traces recorded."""

    naive: Annotated[frozenset[Naive], NoDecode] = frozenset()
    """Practices switched to their naive twin (comma list of Naive names)."""

    @field_validator("naive", mode="before")
    @classmethod
    def _parse_naive(cls, value: Any) -> Any:
        return _split(value)

    @field_validator("payments_urls", "recommendations_urls", mode="before")
    @classmethod
    def _parse_urls(cls, value: Any) -> Any:
        urls = _split(value)
        for url in urls or ():
            if not isinstance(url, str) or not url.startswith(("http://", "https://")):
                raise ValueError(f"{url!r} is not an http:// or https:// URL")
        return urls

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str | None) -> str | None:
        return None if value is None else _database_url(value)

    @field_validator("database_urls", mode="before")
    @classmethod
    def _parse_database_urls(cls, value: Any) -> Any:
        urls = _split(value)
        checked = [_database_url(url) for url in urls or ()]
        if len(checked) > 1 and not all(u and u.startswith("postgresql") for u in checked):
            raise ValueError("PostgreSQL URLs for shards (postgresql+asyncpg://...)")
        if len(set(checked)) != len(checked):
            raise ValueError("each shard URL once")
        return checked

    @field_validator("redis_url", "broker_url")
    @classmethod
    def _check_redis_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("expected redis://host:port/db")
        return value

    @field_validator("cart_rate")
    @classmethod
    def _check_rate(cls, value: str) -> str:
        from tailguard.ratelimit import parse_rates

        parse_rates(value)
        return value

    def is_naive(self, practice: Naive) -> bool:
        """True when ``practice`` is switched to its naive twin."""
        return practice in self.naive

    @property
    def resolved_database_url(self) -> str:
        """The primary database (the catalogue; everything when not sharded): the setting, the
        first shard, or the embedded SQLite file."""
        if self.database_url:
            return self.database_url
        if self.database_urls:
            return self.database_urls[0]
        return f"sqlite+aiosqlite:///{(self.data_dir / 'shop.db').resolve()}"

    @property
    def shard_urls(self) -> list[str]:
        """The databases users and their orders live in, in shard order (one: the primary)."""
        return list(self.database_urls) or [self.resolved_database_url]

    @property
    def sharded(self) -> bool:
        """True when user data is split over more than one database."""
        return len(self.shard_urls) > 1

    @property
    def event_broker_url(self) -> str | None:
        """The Redis of the event stream: SHOP_BROKER_URL, else SHOP_REDIS_URL, else none (an
        in-process stream)."""
        return self.broker_url or self.redis_url

    @property
    def embedded_worker(self) -> bool:
        """True when each serving process applies the order events itself."""
        if self.events_worker == "auto":
            return not self.event_broker_url
        return self.events_worker == "embedded"

    @property
    def embedded_database(self) -> bool:
        """True when the database is the embedded SQLite file."""
        return self.resolved_database_url.startswith("sqlite")


def _database_url(value: str) -> str:
    if value.startswith(("postgres://", "postgresql://")):
        value = "postgresql+asyncpg://" + value.split("://", 1)[1]
    if not value.startswith(("postgresql+asyncpg://", "sqlite+aiosqlite://")):
        raise ValueError("expected postgresql+asyncpg://... or sqlite+aiosqlite:///...")
    return value


def load_settings(**overrides: Any) -> Settings:
    """Read the settings; a bad value raises ConfigurationError naming the variable.

    ``overrides`` take precedence over the environment (used by the CLI and the tests).
    """
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else "?"
        variable = f"SHOP_{field.upper()}"
        value = error.get("input")
        message = str(error["msg"]).removeprefix("Value error, ")
        # "expected Input should be a valid integer" reads better as "expected a valid integer"
        for prefix in ("Input should be ", "Value should be "):
            message = message.removeprefix(prefix)
        raise ConfigurationError(variable, value, message) from None
