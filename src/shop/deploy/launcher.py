"""``Stack``: the whole shop on loopback, run by supervisord, for the command line, tests and
benches::

    with Stack(StackConfig(instances=3, balance="leastconn", state_dir=tmp)) as stack:
        httpx.get(stack.url + "/products")      # through HAProxy
        stack.kill_instance(1)                  # SIGKILL by pid; supervisord restarts it

``start()`` creates the PostgreSQL database when missing, migrates it (``shop migrate``) and
seeds it when empty (``shop seed``), writes ``haproxy.cfg`` and ``supervisord.conf`` into the
state directory, starts supervisord and waits until every program answers. ``stop()`` shuts
supervisord down, then kills by pid whatever of the stack is left.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from shop.deploy import _procs
from shop.deploy._control import HAProxyRuntime, ServerState, Supervisor
from shop.deploy._ready import not_ready
from shop.deploy.config import Balance, StackConfig, StackError
from shop.deploy.plan import Plan, find_haproxy, make_plan
from shop.deploy.prepare import prepare_database, tail
from shop.deploy.render import render_haproxy, render_supervisord, write_private

__all__ = ["Stack", "StackError"]

START_TIMEOUT = 120.0  # seconds: prepare the database and get every program ready
READY_TIMEOUT = 60.0  # seconds: every program answers after supervisord started them
STOP_TIMEOUT = 30.0  # seconds: supervisord stops its programs (each gets 10 s), then kills


class Stack:
    """The shop stack described by ``config``; ``detach=True`` leaves it running after this
    process exits (the command line), otherwise supervisord is this process's child and dies
    with the thread that called :meth:`start` (Linux's parent-death signal), so call it from
    a thread that outlives the stack."""

    def __init__(self, config: StackConfig | None = None, *, detach: bool = False) -> None:
        self.config = config or StackConfig()
        self.detach = detach
        self._plan: Plan | None = None
        self._supervisord: subprocess.Popen[bytes] | None = None

    @classmethod
    def attach(cls, state_dir: Path) -> Stack:
        """The stack whose ``stack.json`` is in ``state_dir`` (to stop it or ask its status)."""
        path = Path(state_dir) / "stack.json"
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise StackError(f"no stack in {state_dir} ({path} is missing)") from None
        plan = Plan.from_json(data)
        stack = cls(plan.config, detach=True)
        stack._plan = plan
        return stack

    # -- where things are ------------------------------------------------------------------

    @property
    def plan(self) -> Plan:
        """The ports and files in use (known once started or attached)."""
        if self._plan is None:
            raise StackError("the stack is not started (call start() first)")
        return self._plan

    @property
    def url(self) -> str:
        """HAProxy's frontend."""
        return self.plan.url

    @property
    def stats_url(self) -> str:
        return self.plan.stats_url

    @property
    def instance_urls(self) -> tuple[str, ...]:
        """Each instance directly, by index."""
        return self.plan.instance_urls

    @property
    def metrics_urls(self) -> tuple[str, ...]:
        """Each instance's ``/metrics``."""
        return tuple(url + "/metrics" for url in self.plan.instance_urls)

    @property
    def instance_names(self) -> tuple[str, ...]:
        """HAProxy's server names (``X-Served-By``) and supervisord's program names."""
        return self.plan.instance_names

    @property
    def supervisor(self) -> Supervisor:
        return Supervisor(self.plan.supervisor_socket, timeout=STOP_TIMEOUT)

    @property
    def haproxy(self) -> HAProxyRuntime:
        return HAProxyRuntime(self.plan.haproxy_socket)

    def urls(self) -> dict[str, Any]:
        """Every URL of the stack, by role (what ``make stack`` prints)."""
        return self.plan.urls()

    # -- start -----------------------------------------------------------------------------

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Prepare the database, start every program and wait until all are ready.

        Raises StackError (a stack already running in the state dir, haproxy missing, a port in
        use, a program that did not get ready, with its log's tail); what was started is
        stopped again.
        """
        deadline = time.monotonic() + timeout
        state_dir = self.config.state_dir.resolve()
        state_dir.mkdir(parents=True, exist_ok=True)
        if (state_dir / "stack.json").exists():
            running = Stack.attach(state_dir)
            if running.supervisor.reachable():
                raise StackError(
                    f"a stack is already running from {state_dir}: stop it first "
                    f"(python -m shop.deploy down --state-dir {self.config.state_dir})"
                )
            running.stop()  # leftovers of a stack whose supervisord died
        try:
            haproxy = find_haproxy()
        except FileNotFoundError as exc:
            raise StackError(str(exc)) from None
        if self.config.worker:
            self._check_worker_command()
        plan = self._plan = make_plan(self.config, state_dir, haproxy)
        plan.logs.mkdir(exist_ok=True)
        plan.save()
        secret_key = self._secret("secret_key", 48)
        admin_token = self._secret("admin_token", 24)
        prepare_database(plan, remaining=lambda: deadline - time.monotonic())
        write_private(plan.haproxy_cfg, render_haproxy(plan))
        self._check_haproxy_config()
        programs = plan.programs(secret_key, admin_token)
        write_private(plan.supervisord_conf, render_supervisord(plan, programs, detach=self.detach))
        try:
            self._start_supervisord()
            self.wait_ready(max(1.0, deadline - time.monotonic()))
        except BaseException:
            self.stop()
            raise
        self._save_pids()

    def _check_worker_command(self) -> None:
        help_text = subprocess.run(
            [sys.executable, "-m", "shop.entrypoints.cli", "--help"],
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout
        if "worker" not in help_text:
            raise StackError(
                "`shop worker` is not a command of this installation yet: start the stack "
                "without the event worker (--no-worker, StackConfig(worker=False))"
            )

    def _secret(self, name: str, nbytes: int) -> str:
        # One per state dir: a stack started again keeps its users' sessions valid.
        path = self.plan.state_dir / name
        if path.exists():
            return path.read_text().strip()
        value = secrets.token_urlsafe(nbytes)
        write_private(path, value + "\n")
        return value

    def _check_haproxy_config(self) -> None:
        plan = self.plan
        check = subprocess.run(
            [plan.haproxy, "-c", "-q", "-f", str(plan.haproxy_cfg)],
            capture_output=True,
            text=True,
            timeout=30,
        )
        if check.returncode != 0:
            raise StackError(
                f"haproxy refused {plan.haproxy_cfg}: {(check.stdout + check.stderr).strip()}"
            )

    def _start_supervisord(self) -> None:
        plan = self.plan
        argv = [plan.python, "-m", "supervisor.supervisord", "-c", str(plan.supervisord_conf)]
        env = {**os.environ, _procs.MARKER: plan.stack_id}
        if self.detach:
            done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=30)
            if done.returncode != 0:
                raise StackError(f"supervisord did not start: {done.stdout}{done.stderr}")
        else:
            with (plan.logs / "supervisord.out").open("ab") as out:
                self._supervisord = subprocess.Popen(
                    argv,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=_die_with_parent,
                )
        deadline = time.monotonic() + 30
        while not self.supervisor.reachable():
            if self._supervisord is not None and self._supervisord.poll() is not None:
                break
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
        else:
            return
        raise StackError(
            f"supervisord did not start: {tail(plan.logs / 'supervisord.log')}"
            f"{tail(plan.logs / 'supervisord.out')}"
        )

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Wait up to ``timeout`` seconds until the simulators answer ``/healthz``, each
        instance ``/readyz``, HAProxy sees every instance UP, and the frontend answers.

        Raises StackError naming what is not ready (a program supervisord gave up on at once,
        with the tail of its log).
        """
        plan = self.plan
        deadline = time.monotonic() + timeout
        waiting: list[str] = []
        while True:
            waiting = not_ready(self.plan, self.supervisor, self.haproxy)
            if not waiting:
                return
            failed = [p for p in self.supervisor.processes() if p.state in ("FATAL", "EXITED")]
            if failed or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        logs = "\n".join(
            f"--- {p.name} ({p.state}): {tail(plan.logs / (p.name + '.log'))}" for p in failed
        )
        raise StackError(
            f"the stack in {plan.state_dir} did not get ready within {timeout:.0f} s; "
            f"waiting for: {', '.join(waiting)}\n{logs}".rstrip()
        )

    # -- while running ---------------------------------------------------------------------

    def servers(self) -> dict[str, ServerState]:
        """HAProxy's view of each instance (status, weight, checks, requests sent)."""
        return self.haproxy.servers()

    def pids(self) -> dict[str, int]:
        """The pid of every running program, and of supervisord (``supervisord``)."""
        pids = {p.name: p.pid for p in self.supervisor.processes() if p.pid}
        pids["supervisord"] = self.supervisor.pid()
        return pids

    def _name(self, i: int) -> str:
        names = self.instance_names
        if not 0 <= i < len(names):
            raise StackError(f"no instance {i}: the stack has {len(names)} (0..{len(names) - 1})")
        return names[i]

    def instance_pid(self, i: int) -> int:
        """The pid of instance ``i`` (0 when it is not running)."""
        return self.supervisor.process(self._name(i)).pid

    def kill_instance(self, i: int) -> int:
        """SIGKILL instance ``i`` by pid (a crash: nothing drains); returns the pid killed.

        HAProxy takes it out after ``fall`` failed checks; supervisord starts it again when
        ``autorestart`` is on.
        """
        pid = self.instance_pid(i)
        if not pid:
            raise StackError(f"{self._name(i)} is not running")
        if not _procs.signal(pid, None, signal.SIGKILL):
            raise StackError(f"{self._name(i)} (pid {pid}) could not be killed")
        return pid

    def restart_instance(self, i: int, timeout: float = READY_TIMEOUT) -> None:
        """Stop instance ``i`` (SIGTERM: it drains), start it again, and wait up to ``timeout``
        seconds until it is ready and HAProxy sees it UP."""
        name = self._name(i)
        if self.supervisor.process(name).state in ("RUNNING", "STARTING", "BACKOFF"):
            self.supervisor.stop(name)
        self.supervisor.start(name)
        self.wait_ready(timeout)
        self._save_pids()

    def set_weight(self, i: int, weight: int) -> None:
        """Set instance ``i``'s HAProxy weight (0..256) now, through the runtime API; kept in
        ``stack.json`` only until the next start (pass ``weights`` in the config for that)."""
        if not 0 <= weight <= 256:
            raise StackError(f"weight={weight!r}: expected an integer from 0 to 256")
        self.haproxy.set_weight("shop", self._name(i), weight)

    def reconfigure(
        self,
        *,
        balance: Balance | None = None,
        weights: tuple[int, ...] | None = None,
        timeout: float = READY_TIMEOUT,
    ) -> None:
        """Change HAProxy's algorithm or weights: its configuration is written again and only
        HAProxy restarts (the instances keep running); waits up to ``timeout`` seconds."""
        changes: dict[str, Any] = {}
        if balance is not None:
            changes["balance"] = balance
        if weights is not None:
            changes["weights"] = weights
        values = {**self.config.to_json(), **changes, "state_dir": str(self.config.state_dir)}
        self.config = StackConfig.from_json(values)
        plan = self._plan = dataclasses.replace(self.plan, config=self.config)
        write_private(plan.haproxy_cfg, render_haproxy(plan))
        self._check_haproxy_config()
        self.supervisor.stop("haproxy")
        self.supervisor.start("haproxy")
        self.wait_ready(timeout)
        self._save_pids()

    def status(self) -> dict[str, Any]:
        """Whether supervisord runs, each program's state and pid, HAProxy's view of each
        instance, and the URLs."""
        plan = self.plan
        report: dict[str, Any] = {"state_dir": str(plan.state_dir), "urls": plan.urls()}
        if not self.supervisor.reachable():
            return {**report, "running": False}
        report["running"] = True
        report["programs"] = {
            p.name: {"state": p.state, "pid": p.pid} for p in self.supervisor.processes()
        }
        try:
            report["haproxy"] = {n: vars(s) for n, s in self.servers().items()}
        except OSError as exc:
            report["haproxy"] = f"unreachable: {exc}"
        return report

    def _save_pids(self) -> None:
        pids = self.pids()
        self.plan.save({"pids": {n: [pid, _procs.started_at(pid)] for n, pid in pids.items()}})

    # -- stop ------------------------------------------------------------------------------

    def stop(self, timeout: float = STOP_TIMEOUT) -> list[int]:
        """Stop everything the stack started.

        supervisord shuts its programs down (SIGTERM to each group, SIGKILL after 10 s) and
        exits, within ``timeout`` seconds. Then any process of the stack still alive (a pid in
        ``stack.json`` or one marked with the stack's id, e.g. when supervisord itself had
        died) gets SIGTERM, and SIGKILL 5 s later. Returns the pids that were left over.
        """
        if self._plan is None:
            return []
        plan = self.plan
        known: dict[int, int | None] = {}
        with contextlib.suppress(OSError, ValueError):
            saved = json.loads(plan.stack_json.read_text()).get("pids", {})
            known.update({pid: started for pid, started in saved.values()})
        supervisor = Supervisor(plan.supervisor_socket, timeout=timeout)
        if supervisor.reachable():
            with contextlib.suppress(OSError):
                pids = self.pids()
                known.update({pid: _procs.started_at(pid) for pid in pids.values()})
                supervisor.shutdown()
                daemon = pids["supervisord"]
                _procs.wait_gone([(daemon, known[daemon])], timeout)
        if self._supervisord is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._supervisord.wait(timeout)
        known.update(_procs.marked(plan.stack_id))
        left = {pid: started for pid, started in known.items() if _procs.alive(pid, started)}
        for pid, started in left.items():
            _procs.signal(pid, started, signal.SIGTERM)
        for pid in _procs.wait_gone(left.items(), 5.0):
            _procs.signal(pid, left[pid], signal.SIGKILL)
        if self._supervisord is not None:
            if self._supervisord.poll() is None:
                self._supervisord.kill()
            self._supervisord.wait(5)
        still = _procs.wait_gone(known.items(), 5.0)
        if still:
            raise StackError(f"processes of the stack survived SIGKILL: {still}")
        plan.save({"stopped": True})
        return sorted(left)

    def __enter__(self) -> Stack:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _die_with_parent() -> None:
    # Linux: supervisord gets SIGTERM (and stops its programs) when its parent dies.
    import ctypes

    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
