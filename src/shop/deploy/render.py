"""The stack's generated files: ``haproxy.cfg`` and ``supervisord.conf``, from the Jinja2
templates shipped beside this module."""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import jinja2

from shop.deploy.plan import Plan, Program

__all__ = ["render_haproxy", "render_supervisord"]


@dataclass(frozen=True)
class _Server:
    name: str
    port: int
    weight: int


def _template(name: str) -> jinja2.Template:
    source = files("shop.deploy").joinpath(name).read_text()
    environment = jinja2.Environment(
        undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False
    )
    return environment.from_string(source)


def _ms(seconds: float) -> str:
    return f"{max(1, round(seconds * 1000))}ms"


def render_haproxy(plan: Plan) -> str:
    """HAProxy's configuration: the frontend, the ``shop`` backend (balance, weights, health
    checks on ``/readyz``, retries on connection failures only) and the stats listener."""
    config = plan.config
    servers = [
        _Server(name, port, weight)
        for name, port, weight in zip(
            plan.instance_names, plan.instance_ports, config.instance_weights, strict=True
        )
    ]
    return _template("haproxy.cfg.j2").render(
        plan=plan,
        config=config,
        servers=servers,
        ms=_ms,
        # A check slower than the interval would overlap the next one.
        check_timeout=min(config.check_interval, 2.0),
    )


def _escape(value: object) -> str:
    """supervisord expands ``%(name)s`` in its values: a literal % is doubled."""
    text = str(value)
    if "\n" in text or "\r" in text:
        raise ValueError(f"a supervisord value cannot hold a newline: {text!r}")
    return text.replace("%", "%%")


def _command(argv: Iterable[str]) -> str:
    return _escape(shlex.join(argv))


def _environment(env: Mapping[str, str]) -> str:
    # supervisord splits KEY="value",KEY2="value2" with a non-POSIX shlex (a quoted value may
    # hold commas) and strips quote characters from a value's ends (StackConfig refuses values
    # that would not survive that).
    return ",".join(f'{key}="{_escape(value)}"' for key, value in env.items())


def render_supervisord(plan: Plan, programs: list[Program], *, detach: bool) -> str:
    """supervisord's configuration: its control socket, pidfile and logs in the state dir, and
    one ``[program:...]`` per program (stopped and killed as a process group).

    ``detach``: supervisord daemonizes (``up`` from the command line); otherwise it stays in the
    foreground as the caller's child (tests and benches).
    """
    return _template("supervisord.conf.j2").render(
        plan=plan,
        config=plan.config,
        programs=programs,
        detach=detach,
        esc=_escape,
        command=_command,
        environment=_environment,
    )


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by its owner only (it may hold secrets)."""
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(text)
