"""The shop's settings: defaults, naive twins, and one clear line for a bad value."""

from __future__ import annotations

import subprocess
import sys

import pytest

from shop.config import Naive, load_settings
from tailguard.errors import BackendUnavailable, ConfigurationError


def test_defaults_are_embedded(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    for name in ("SHOP_DATABASE_URL", "SHOP_REDIS_URL", "SHOP_NAIVE"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    assert settings.embedded_database
    assert settings.resolved_database_url.startswith("sqlite+aiosqlite:///")
    assert settings.resolved_database_url.endswith(".shop/shop.db")
    assert settings.redis_url is None
    assert settings.naive == frozenset()


def test_naive_is_a_comma_list_of_known_practices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOP_NAIVE", "cache, eager_loading")
    settings = load_settings()
    assert settings.naive == {Naive.CACHE, Naive.EAGER_LOADING}
    assert settings.is_naive(Naive.CACHE)
    assert not settings.is_naive(Naive.POOL)


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("SHOP_NAIVE", "cache,caching", "SHOP_NAIVE"),
        ("SHOP_POOL_SIZE", "lots", "SHOP_POOL_SIZE"),
        ("SHOP_POOL_SIZE", "0", "SHOP_POOL_SIZE"),
        ("SHOP_DATABASE_URL", "mysql://x/y", "SHOP_DATABASE_URL"),
        ("SHOP_REDIS_URL", "localhost:6379", "SHOP_REDIS_URL"),
        ("SHOP_CART_RATE", "many per minute", "SHOP_CART_RATE"),
        ("SHOP_PAYMENTS_URLS", "http://a:1,ftp://b", "SHOP_PAYMENTS_URLS"),
        ("SHOP_SECRET_KEY", "short", "SHOP_SECRET_KEY"),
        ("SHOP_READY_TIMEOUT", "0", "SHOP_READY_TIMEOUT"),
    ],
)
def test_a_bad_value_names_its_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, named: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError) as info:
        load_settings()
    assert str(info.value).startswith(f"{named}=")
    assert "\n" not in str(info.value)


def test_postgres_urls_get_the_async_driver() -> None:
    settings = load_settings(database_url="postgresql://127.0.0.1/shop")
    assert settings.resolved_database_url == "postgresql+asyncpg://127.0.0.1/shop"
    assert not settings.embedded_database


def _shop(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    code = "import sys; from shop.entrypoints.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_the_command_fails_at_start_with_one_line(tmp_path: object) -> None:
    import os

    env = {**os.environ, "SHOP_POOL_SIZE": "lots"}
    result = _shop("migrate", env=env)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert result.stderr.startswith("shop: SHOP_POOL_SIZE='lots'")


def test_serve_refuses_workers_with_the_in_process_session_store() -> None:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOP_")}
    result = _shop("serve", "--workers", "2", env=env)
    assert result.returncode == 2
    assert "--workers=2" in result.stderr
    assert "SHOP_REDIS_URL" in result.stderr


def test_an_empty_variable_counts_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOP_DATABASE_URL", "")
    monkeypatch.setenv("SHOP_REDIS_URL", "")
    settings = load_settings()
    assert settings.database_url is None
    assert settings.redis_url is None


def test_shard_settings_are_checked_with_one_line_naming_the_setting() -> None:
    from shop.adapters.db import Databases, ShardMap

    two = "postgresql://db/a,postgres://db/b"
    settings = load_settings(database_urls=two)
    assert settings.shard_urls == ["postgresql+asyncpg://db/a", "postgresql+asyncpg://db/b"]
    assert settings.resolved_database_url == "postgresql+asyncpg://db/a"  # the first: primary
    assert settings.sharded
    assert not load_settings(database_urls="postgresql://db/a").sharded
    with pytest.raises(ConfigurationError, match=r"SHOP_DATABASE_URLS=.*PostgreSQL URLs"):
        load_settings(database_urls="sqlite+aiosqlite:///a,sqlite+aiosqlite:///b")
    with pytest.raises(ConfigurationError, match=r"SHOP_DATABASE_URLS=.*each shard URL once"):
        load_settings(database_urls="postgresql://db/a,postgresql://db/a")
    with pytest.raises(ConfigurationError, match="SHOP_SHARDS=3: expected at most 2"):
        Databases.from_settings(load_settings(database_urls=two, shards=3))
    databases = Databases.from_settings(load_settings(database_urls=two, shards=1))
    assert [databases.shard_of(u) for u in range(1, 50)] == [0] * 49
    with pytest.raises(ConfigurationError, match="expected at least 3"):
        databases.apply(ShardMap(3))
    databases.apply(ShardMap(1, 1, (1, 2)))
    moving = [u for u in range(1, 200) if databases.moving(u)]
    assert moving, "a freeze from 1 to 2 shards moves some users"
    with pytest.raises(BackendUnavailable, match="moving to another shard"):
        databases.check_writable(moving[0])
    databases.check_writable(next(u for u in range(1, 200) if u not in moving))
