"""Pickers: which endpoint takes the next request. Sans-IO: a picker never awaits and never
reads the clock; it is handed ``now`` (seconds).

::

    picker = PowerOfTwo(["http://a:8000", "http://b:8000", "http://c:8000"], seed=1)
    endpoint = picker.pick(now=clock.now())
    picker.start(endpoint)
    ...                                   # send the request
    picker.finish(endpoint, latency=0.012, now=clock.now())

* :class:`RoundRobin`: each available endpoint in turn.
* :class:`LeastConnections`: the fewest requests in flight per unit of weight (ties in turn).
* :class:`Weighted`: nginx's smooth weighted round robin (weights 5, 1, 1 give a a b a c a a).
* :class:`IPHash`: consistent hashing of a key (a client IP) on a ring of virtual nodes, so
  removing one of N endpoints moves only the keys it held, about 1/N of them.
* :class:`PowerOfTwo`: two endpoints at random, the one with the lower peak-EWMA latency x
  (in flight + 1) wins: Finagle's and Linkerd's "P2C + peak EWMA".

Every picker skips endpoints that are ejected, marked down or behind an open breaker, and those
in ``exclude`` (the ones a retry already tried). When that leaves none it falls back, in order,
to endpoints whose breaker admits a call (Envoy's "panic mode": better to try a suspect endpoint
than to fail), then to excluded ones; it raises ``CircuitOpenError`` only when every breaker is
open.
"""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Collection, Iterable, Sequence

from tailguard._digest import digest64
from tailguard.balance._endpoint import Endpoint
from tailguard.errors import CircuitOpenError, ConfigurationError

__all__ = ["IPHash", "LeastConnections", "Picker", "PowerOfTwo", "RoundRobin", "Weighted"]


class Picker:
    """Base of every strategy: holds the endpoints, filters the usable ones, keeps the
    in-flight and latency bookkeeping. Subclasses implement :meth:`choose`."""

    __slots__ = ("_next", "endpoints", "name")

    def __init__(self, endpoints: Iterable[Endpoint | str], *, name: str = "balancer") -> None:
        self.name = name
        self._next = 0
        self.endpoints: tuple[Endpoint, ...] = ()
        self.replace(endpoints)

    # -- the endpoint set ------------------------------------------------------------------

    def replace(self, endpoints: Iterable[Endpoint | str]) -> None:
        """Use ``endpoints`` from now on (strings become ``Endpoint(address)``). An address
        already present keeps its :class:`Endpoint` and so its state (in flight, latency,
        ejection, health, breaker); an ``Endpoint`` given for it only lends its weight and
        decay. Service discovery may refresh the same addresses as often as it likes."""
        given = list(endpoints)
        if not given:
            raise ConfigurationError(f"{type(self).__name__}.endpoints", [], "at least one")
        addresses = [e.address if isinstance(e, Endpoint) else e for e in given]
        if len(set(addresses)) != len(addresses):
            raise ConfigurationError(f"{type(self).__name__}.endpoints", addresses, "no duplicates")
        current = {e.address: e for e in self.endpoints}
        eps: list[Endpoint] = []
        for e, address in zip(given, addresses, strict=True):
            ep = current.get(address)
            if ep is None:
                ep = e if isinstance(e, Endpoint) else Endpoint(e)
            elif isinstance(e, Endpoint) and e is not ep:
                ep.weight, ep.decay = e.weight, e.decay
            eps.append(ep)
        self.endpoints = tuple(eps)
        self._rebuilt()

    def add(self, endpoint: Endpoint | str) -> Endpoint:
        """Add one endpoint; returns it."""
        ep = endpoint if isinstance(endpoint, Endpoint) else Endpoint(endpoint)
        self.replace((*self.endpoints, ep))
        return ep

    def remove(self, address: str) -> Endpoint:
        """Remove the endpoint at ``address``; returns it (KeyError if there is none)."""
        for ep in self.endpoints:
            if ep.address == address:
                self.replace(e for e in self.endpoints if e is not ep)
                return ep
        raise KeyError(address)

    def _rebuilt(self) -> None:
        """Hook: the endpoint set changed."""

    # -- picking ---------------------------------------------------------------------------

    def candidates(self, now: float, exclude: Collection[Endpoint] = ()) -> list[Endpoint]:
        """The endpoints a request may go to at ``now`` (see the module docstring)."""
        eps = self.endpoints
        if not exclude:
            # Endpoint.available, inlined: this runs on every pick.
            usable = [
                e
                for e in eps
                if e.healthy and now >= e.ejected_until and (e.breaker is None or e.admits(now))
            ]
            if usable:
                return usable
        else:
            usable = [e for e in eps if e not in exclude and e.available(now)]
            if usable:
                return usable
            usable = [e for e in eps if e not in exclude and e.admits(now)]
            if usable:
                return usable
        usable = [e for e in eps if e.admits(now)]
        if usable:
            return usable
        waits = [e.breaker.retry_after(now) for e in eps if e.breaker is not None]
        known = [w for w in waits if w is not None]
        raise CircuitOpenError(self.name, retry_after=min(known) if known else None)

    def pick(
        self, *, now: float, key: str | None = None, exclude: Collection[Endpoint] = ()
    ) -> Endpoint:
        """The endpoint for the next request at ``now`` (seconds); ``key`` is for
        :class:`IPHash`, ``exclude`` the endpoints already tried for this request."""
        return self.choose(self.candidates(now, exclude), now, key)

    def choose(self, candidates: Sequence[Endpoint], now: float, key: str | None) -> Endpoint:
        """The strategy: one of ``candidates`` (never empty)."""
        raise NotImplementedError

    # -- bookkeeping -----------------------------------------------------------------------

    def start(self, endpoint: Endpoint) -> None:
        """A request was sent to ``endpoint``."""
        endpoint.in_flight += 1

    def finish(self, endpoint: Endpoint, *, latency: float, now: float, ok: bool = True) -> None:
        """A request to ``endpoint`` ended after ``latency`` seconds, at ``now``. A failure is
        counted in the latency only if it raises it: a fast refusal must not look fast."""
        endpoint.in_flight -= 1
        if ok or latency > endpoint.latency(now):
            endpoint.observe(latency, now)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({[e.address for e in self.endpoints]!r})"


class RoundRobin(Picker):
    """Each usable endpoint in turn."""

    __slots__ = ()

    def choose(self, candidates: Sequence[Endpoint], now: float, key: str | None) -> Endpoint:
        i = self._next
        self._next = i + 1
        return candidates[i % len(candidates)]


class LeastConnections(Picker):
    """The endpoint with the fewest requests in flight per unit of weight; ties go in turn
    (as nginx's ``least_conn``), so an idle pool still spreads its requests."""

    __slots__ = ()

    def choose(self, candidates: Sequence[Endpoint], now: float, key: str | None) -> Endpoint:
        n = len(candidates)
        start = self._next % n
        self._next += 1
        best = candidates[start]
        best_load = best.in_flight / best.weight
        for k in range(1, n):
            e = candidates[(start + k) % n]
            load = e.in_flight / e.weight
            if load < best_load:
                best, best_load = e, load
        return best


class Weighted(Picker):
    """nginx's smooth weighted round robin: every pick adds each usable endpoint's weight to its
    current weight, takes the largest, and subtracts the total from it. Weights {a: 5, b: 1,
    c: 1} give ``a a b a c a a``: the heavy endpoint's turns are spread, not bunched."""

    __slots__ = ("_current",)

    def __init__(self, endpoints: Iterable[Endpoint | str], *, name: str = "balancer") -> None:
        self._current: dict[Endpoint, float] = {}
        super().__init__(endpoints, name=name)

    def _rebuilt(self) -> None:
        self._current = {e: self._current.get(e, 0.0) for e in self.endpoints}

    def choose(self, candidates: Sequence[Endpoint], now: float, key: str | None) -> Endpoint:
        current = self._current
        total = 0.0
        best = candidates[0]
        best_weight = -math.inf
        for e in candidates:
            w = current[e] + e.weight
            current[e] = w
            total += e.weight
            if w > best_weight:
                best, best_weight = e, w
        current[best] -= total
        return best


class IPHash(Picker):
    """Consistent hashing: ``replicas`` virtual nodes per unit of weight on a 64-bit ring
    (blake2b); a key goes to the first usable endpoint clockwise from its hash. Removing or
    ejecting one of N endpoints moves only its own keys (about 1/N); the others stay put.
    Without a ``key`` it picks round robin."""

    __slots__ = ("_hashes", "_owners", "replicas")

    def __init__(
        self, endpoints: Iterable[Endpoint | str], *, replicas: int = 160, name: str = "balancer"
    ) -> None:
        if replicas < 1:
            raise ConfigurationError("IPHash.replicas", replicas, "an int >= 1")
        self.replicas = replicas
        self._hashes: list[int] = []
        self._owners: list[Endpoint] = []
        super().__init__(endpoints, name=name)

    def _rebuilt(self) -> None:
        points = sorted(
            (digest64(f"{e.address}-{r}"), i)
            for i, e in enumerate(self.endpoints)
            for r in range(max(1, round(self.replicas * e.weight)))
        )
        self._hashes = [h for h, _ in points]
        self._owners = [self.endpoints[i] for _, i in points]

    def pick(
        self, *, now: float, key: str | None = None, exclude: Collection[Endpoint] = ()
    ) -> Endpoint:
        if key is None:
            return super().pick(now=now, exclude=exclude)
        owners = self._owners
        n = len(owners)
        start = bisect.bisect(self._hashes, digest64(key))
        for k in range(n):
            e = owners[(start + k) % n]
            if e.available(now) and e not in exclude:
                return e
        # Nothing usable on the ring: the fallbacks of every picker, then still clockwise.
        usable = set(self.candidates(now, exclude))
        return next(owners[(start + k) % n] for k in range(n) if owners[(start + k) % n] in usable)

    def choose(self, candidates: Sequence[Endpoint], now: float, key: str | None) -> Endpoint:
        i = self._next
        self._next = i + 1
        return candidates[i % len(candidates)]


class PowerOfTwo(Picker):
    """Two distinct usable endpoints at random; the lower :meth:`Endpoint.load` wins
    (peak-EWMA latency x (in flight + 1) / weight). ``seed`` or ``rng`` make it deterministic."""

    __slots__ = ("_random", "rng")

    def __init__(
        self,
        endpoints: Iterable[Endpoint | str],
        *,
        seed: int | None = None,
        rng: random.Random | None = None,
        name: str = "balancer",
    ) -> None:
        self.rng = rng if rng is not None else random.Random(seed)
        self._random = self.rng.random
        super().__init__(endpoints, name=name)

    def pick(
        self, *, now: float, key: str | None = None, exclude: Collection[Endpoint] = ()
    ) -> Endpoint:
        # The common case without building the candidate list: draw the pair from all the
        # endpoints and keep it if both are usable. When every endpoint is usable this is the
        # very draw ``choose`` would make; otherwise a pair with an unusable endpoint is drawn
        # again from the candidates, and both ways give each usable pair the same chance.
        eps = self.endpoints
        n = len(eps)
        if n > 1 and not exclude:
            rand = self._random
            i = int(rand() * n)
            j = int(rand() * (n - 1))
            if j >= i:
                j += 1
            a, b = eps[i], eps[j]
            if (
                a.healthy
                and b.healthy
                and now >= a.ejected_until
                and now >= b.ejected_until
                and (a.breaker is None or a.admits(now))
                and (b.breaker is None or b.admits(now))
            ):
                return a if a.load(now) <= b.load(now) else b
        return self.choose(self.candidates(now, exclude), now, key)

    def choose(self, candidates: Sequence[Endpoint], now: float, key: str | None) -> Endpoint:
        n = len(candidates)
        if n == 1:
            return candidates[0]
        rand = self._random
        i = int(rand() * n)
        j = int(rand() * (n - 1))
        if j >= i:
            j += 1
        a, b = candidates[i], candidates[j]
        return a if a.load(now) <= b.load(now) else b
