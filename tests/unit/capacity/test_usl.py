"""The Universal Scalability Law fit, checked against the coefficients published with the R
package ``usl`` on its own dataset, and against noiseless data from known coefficients."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tailguard.capacity import USLFit, fit_usl
from tailguard.capacity.usl import usl_throughput

# Dataset ``specsdm91`` shipped with the R package ``usl`` (Stefan Moeding, on CRAN): the SPEC
# SDM 91 benchmark of N. J. Gunther, *Guerrilla Capacity Planning* (Springer, 2007), used there
# as the worked example. ``load`` is the number of concurrent users (scripts), ``throughput``
# the scripts completed per hour.
SPECSDM91_LOAD = [1, 18, 36, 72, 108, 144, 216]
SPECSDM91_THROUGHPUT = [64.9, 995.9, 1652.4, 1853.2, 1828.9, 1775.0, 1702.2]

# What ``usl(throughput ~ load, data = specsdm91)`` prints in the package's vignette
# "Analyzing Scalability with usl" (R's ``nls`` on the same model, unweighted least squares on
# throughput), to the digits published: sigma 0.0277, kappa 0.000104, lambda 89.995; and
# ``peak.scalability()``: N* = 96.5 users.
PUBLISHED_SIGMA = 0.0277
PUBLISHED_KAPPA = 0.000104
PUBLISHED_LAMBDA = 89.995
PUBLISHED_PEAK = 96.5


def test_specsdm91_reproduces_the_r_usl_package_coefficients() -> None:
    fit = fit_usl(SPECSDM91_LOAD, SPECSDM91_THROUGHPUT)
    # Within half a unit of the last published digit: the two least-squares fits agree.
    assert fit.sigma == pytest.approx(PUBLISHED_SIGMA, abs=5e-5)  # 0.027728
    assert fit.kappa == pytest.approx(PUBLISHED_KAPPA, abs=5e-7)  # 0.00010437
    assert fit.lambda_ == pytest.approx(PUBLISHED_LAMBDA, abs=5e-3)  # 89.9952
    assert fit.peak_concurrency == pytest.approx(PUBLISHED_PEAK, abs=0.05)  # 96.52
    assert fit.peak_concurrency == pytest.approx(math.sqrt((1 - fit.sigma) / fit.kappa))
    assert fit.peak_throughput == pytest.approx(fit.predict(fit.peak_concurrency))
    assert fit.peak_throughput == pytest.approx(1883.9, abs=0.1)
    assert fit.r_squared == pytest.approx(0.9896, abs=1e-4)


def test_specsdm91_agrees_with_an_unbounded_levenberg_marquardt_fit() -> None:
    # scipy's curve_fit (LM, no bounds) lands on the same interior minimum: the bounds and the
    # starting values did not steer the fit.
    import numpy as np
    from scipy import optimize

    fit = fit_usl(SPECSDM91_LOAD, SPECSDM91_THROUGHPUT)

    def model(n: object, sigma: float, kappa: float, lambda_: float) -> object:
        return lambda_ * n / (1 + sigma * (n - 1) + kappa * n * (n - 1))  # type: ignore[operator]

    (sigma, kappa, lambda_), _ = optimize.curve_fit(
        model,
        np.array(SPECSDM91_LOAD, dtype=float),
        np.array(SPECSDM91_THROUGHPUT),
        p0=[0.03, 1e-4, 90.0],
    )
    assert fit.sigma == pytest.approx(sigma, rel=1e-4)
    assert fit.kappa == pytest.approx(kappa, rel=1e-4)
    assert fit.lambda_ == pytest.approx(lambda_, rel=1e-5)


@settings(deadline=None, max_examples=60)
@given(
    sigma=st.floats(min_value=0.0, max_value=0.3),
    kappa=st.floats(min_value=0.0, max_value=0.01),
    lambda_=st.floats(min_value=0.5, max_value=1e4),
    levels=st.lists(st.integers(1, 256), min_size=4, max_size=10, unique=True),
)
def test_noiseless_data_from_known_coefficients_is_recovered(
    sigma: float, kappa: float, lambda_: float, levels: list[int]
) -> None:
    levels.sort()
    throughput = [usl_throughput(n, sigma, kappa, lambda_) for n in levels]
    fit = fit_usl(levels, throughput)
    assert fit.sigma == pytest.approx(sigma, rel=1e-5, abs=1e-7)
    assert fit.kappa == pytest.approx(kappa, rel=1e-5, abs=1e-9)
    assert fit.lambda_ == pytest.approx(lambda_, rel=1e-6)
    for n, x in zip(levels, throughput, strict=True):
        assert fit.predict(n) == pytest.approx(x, rel=1e-6)
    assert fit.r_squared == pytest.approx(1.0, abs=1e-9)


def test_amdahl_data_has_no_peak() -> None:
    levels = [1, 2, 4, 8, 16, 32]
    fit = fit_usl(levels, [usl_throughput(n, 0.05, 0.0, 100.0) for n in levels])
    assert fit.kappa == 0.0  # not 1e-17: N* is inf, not 1e8
    assert fit.sigma == pytest.approx(0.05)
    assert fit.peak_concurrency == math.inf
    assert fit.peak_throughput == pytest.approx(100.0 / 0.05)


def test_linear_data_has_neither_contention_nor_coherency() -> None:
    fit = fit_usl([1, 2, 4, 8], [10, 20, 40, 80])
    assert (fit.sigma, fit.kappa) == (0.0, 0.0)
    assert fit.lambda_ == pytest.approx(10)
    assert fit.peak_throughput == math.inf


def test_peaks_when_kappa_is_zero() -> None:
    assert USLFit(0.1, 0.0, 50.0, 1.0).peak_concurrency == math.inf
    assert USLFit(0.1, 0.0, 50.0, 1.0).peak_throughput == pytest.approx(500.0)  # lambda / sigma
    assert USLFit(0.0, 0.0, 50.0, 1.0).peak_throughput == math.inf  # linear scaling
    assert USLFit(0.0, 0.01, 50.0, 1.0).peak_concurrency == pytest.approx(10.0)


def test_predict_is_the_usl() -> None:
    fit = USLFit(sigma=0.02, kappa=0.0001, lambda_=90.0, r_squared=1.0)
    assert fit.predict(1) == pytest.approx(90.0)
    assert fit.predict(50) == pytest.approx(90 * 50 / (1 + 0.02 * 49 + 0.0001 * 50 * 49))


def test_to_dict_names_lambda_without_the_underscore() -> None:
    data = fit_usl(SPECSDM91_LOAD, SPECSDM91_THROUGHPUT).to_dict()
    assert list(data) == [
        "sigma",
        "kappa",
        "lambda",
        "peak_concurrency",
        "peak_throughput",
        "r_squared",
    ]


@pytest.mark.parametrize(
    ("concurrency", "throughput", "message"),
    [
        ([1, 2], [1, 2], "^concurrency: expected at least 3 points"),
        ([1, 2, 3], [1, 2], "^throughput: expected at least 3 points"),
        ([1, 2, 3, 4], [1, 2, 3], "^concurrency and throughput: expected equal lengths"),
        ([1, 2, 2, 1], [1, 2, 2, 1], "^concurrency: expected at least 3 different values"),
        ([1, 0, 3], [1, 2, 3], "^concurrency: expected finite numbers > 0"),
        ([1, 2, 3], [1, -2, 3], "^throughput: expected finite numbers > 0"),
        ([1, 2, 3], [1, math.nan, 3], "^throughput: expected finite numbers > 0"),
        ([1, 2, 3], ["a", "b", "c"], "^throughput: expected a sequence of numbers"),
    ],
)
def test_bad_input_raises_value_error_naming_the_argument(
    concurrency: list[float], throughput: list[float], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        fit_usl(concurrency, throughput)


def test_importing_capacity_imports_no_third_party_library() -> None:
    heavy = ["numpy", "scipy", "matplotlib"]
    code = f"import sys, tailguard.capacity;print([m for m in {heavy!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
