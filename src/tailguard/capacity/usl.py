"""The Universal Scalability Law (Gunther, *Guerrilla Capacity Planning*, 2007).

Throughput at concurrency ``N`` (users, connections, workers, nodes)::

    X(N) = lambda * N / (1 + sigma * (N - 1) + kappa * N * (N - 1))

- ``lambda``: throughput of one unit of concurrency with no contention (requests/s);
- ``sigma``: contention, the serial fraction (Amdahl's law when ``kappa`` is 0);
- ``kappa``: coherency, the cost of units keeping each other consistent; when it is above 0
  throughput peaks at ``N* = sqrt((1 - sigma) / kappa)`` and *falls* beyond it.

``fit_usl(concurrency, throughput)`` fits the three coefficients by nonlinear least squares on
throughput (as the R package ``usl`` does with ``nls``), starting from the exact solution of the
linearized model ``N / X = (1 + sigma (N-1) + kappa N (N-1)) / lambda``, a quadratic in ``N``.
numpy and scipy are imported on the first fit, so importing this module stays light.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["USLFit", "fit_usl", "usl_throughput"]

MIN_POINTS = 3  # three coefficients
RESOLUTION = 1e-12  # smallest share of the USL's denominator a fitted term may stand for


def usl_throughput(n: float, sigma: float, kappa: float, lambda_: float) -> float:
    """The USL's throughput at concurrency ``n`` (same unit as ``lambda_``, e.g. requests/s)."""
    return lambda_ * n / (1 + sigma * (n - 1) + kappa * n * (n - 1))


@dataclass(frozen=True, slots=True)
class USLFit:
    """Fitted USL coefficients; throughput is in the unit of the data (e.g. requests/s)."""

    sigma: float  # contention, >= 0
    kappa: float  # coherency, >= 0
    lambda_: float  # throughput at N = 1 with no contention, > 0
    r_squared: float  # 1 - SS_residual / SS_total over the fitted throughputs

    @property
    def peak_concurrency(self) -> float:
        """``N* = sqrt((1 - sigma) / kappa)``: where throughput peaks; ``inf`` when
        ``kappa`` is 0 (throughput only approaches ``lambda / sigma``)."""
        if self.kappa == 0:
            return math.inf
        return math.sqrt(max(0.0, 1 - self.sigma) / self.kappa)

    @property
    def peak_throughput(self) -> float:
        """``X(N*)``; with ``kappa`` 0 the asymptote ``lambda / sigma`` (``inf`` if both are 0)."""
        if self.kappa == 0:
            return self.lambda_ / self.sigma if self.sigma > 0 else math.inf
        return self.predict(self.peak_concurrency)

    def predict(self, n: float) -> float:
        """Throughput at concurrency ``n``."""
        return usl_throughput(n, self.sigma, self.kappa, self.lambda_)

    def to_dict(self) -> dict[str, float]:
        """``sigma``, ``kappa``, ``lambda``, ``peak_concurrency``, ``peak_throughput``,
        ``r_squared`` (the peaks may be ``inf``)."""
        return {
            "sigma": self.sigma,
            "kappa": self.kappa,
            "lambda": self.lambda_,
            "peak_concurrency": self.peak_concurrency,
            "peak_throughput": self.peak_throughput,
            "r_squared": self.r_squared,
        }


def fit_usl(concurrency: Sequence[float], throughput: Sequence[float]) -> USLFit:
    """Fit the USL to measured ``throughput`` (any rate unit) at each ``concurrency`` (units
    of concurrency: users, connections, workers, nodes).

    Needs at least three points with three different concurrencies, every value finite and
    positive; raises ``ValueError`` naming the argument otherwise. Repeated concurrencies
    (several runs at one level) are fine. Coefficients are bounded: ``0 <= sigma <= 1``,
    ``kappa >= 0``, ``lambda > 0``.
    """
    n_list = _values("concurrency", concurrency)
    x_list = _values("throughput", throughput)
    if len(n_list) != len(x_list):
        raise ValueError(
            f"concurrency and throughput: expected equal lengths, got {len(n_list)} and "
            f"{len(x_list)}"
        )
    if len(set(n_list)) < MIN_POINTS:
        raise ValueError(
            f"concurrency: expected at least {MIN_POINTS} different values, got "
            f"{sorted(set(n_list))}"
        )

    import numpy as np
    from scipy.optimize import least_squares  # type: ignore[import-untyped]  # no stubs

    n = np.asarray(n_list, dtype=float)
    x = np.asarray(x_list, dtype=float)
    start = _linearized(n, x)

    def residuals(p: Any) -> Any:
        return p[2] * n / (1 + p[0] * (n - 1) + p[1] * n * (n - 1)) - x

    # The coefficients differ by six orders of magnitude (kappa ~ 1e-4, lambda ~ 1e2):
    # x_scale="jac" makes the steps scale-free, and the tight tolerances let noiseless data
    # be recovered to many digits.
    solution = least_squares(
        residuals,
        start,
        bounds=([0.0, 0.0, 0.0], [1.0, np.inf, np.inf]),
        x_scale="jac",
        xtol=1e-15,
        ftol=1e-15,
        gtol=1e-15,
        max_nfev=10_000,
    )
    sigma, kappa, lambda_ = (float(v) for v in solution.x)
    # A term worth less than RESOLUTION of the denominator at every measured concurrency is
    # rounding noise, not contention or coherency: call it 0, so that N* is inf, not 1e8.
    if sigma * float(np.max(np.abs(n - 1))) < RESOLUTION:
        sigma = 0.0
    if kappa * float(np.max(np.abs(n * (n - 1)))) < RESOLUTION:
        kappa = 0.0
    ss_res = float(np.sum(solution.fun**2))
    ss_tot = float(np.sum((x - x.mean()) ** 2))
    # With constant throughput (ss_tot 0) the fit is either exact (1) or not (0).
    r_squared = 1 - ss_res / ss_tot if ss_tot > 0 else float(ss_res == 0)
    return USLFit(sigma=sigma, kappa=kappa, lambda_=lambda_, r_squared=r_squared)


def _linearized(n: Any, x: Any) -> list[float]:
    """Starting values: ``N / X = a + b N + c N^2`` is linear in ``(a, b, c)`` with
    ``lambda = 1 / (a + b + c)``, ``kappa = c lambda``, ``sigma = b lambda + kappa``;
    clipped into the bounds."""
    import numpy as np

    design = np.column_stack([np.ones_like(n), n, n * n])
    a, b, c = np.linalg.lstsq(design, n / x, rcond=None)[0]
    total = a + b + c
    lambda_ = 1 / total if total > 0 else float(np.max(x / n))
    kappa = max(c * lambda_, 0.0)
    sigma = min(max(b * lambda_ + kappa, 0.0), 1.0)
    return [float(sigma), float(kappa), float(lambda_)]


def _values(name: str, values: Sequence[float]) -> list[float]:
    try:
        floats = [float(v) for v in values]
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a sequence of numbers") from None
    if len(floats) < MIN_POINTS:
        raise ValueError(f"{name}: expected at least {MIN_POINTS} points, got {len(floats)}")
    bad = [v for v in floats if not (math.isfinite(v) and v > 0)]
    if bad:
        raise ValueError(f"{name}: expected finite numbers > 0, got {bad[0]!r}")
    return floats
