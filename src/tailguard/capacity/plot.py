"""A picture of a USL fit: the measured points, the fitted curve and the peak ``N*``.

Drawn with matplotlib's object API on the Agg canvas (no pyplot, no global state, no display),
so it is safe in tests, servers and threads. Needs the ``capacity`` extra.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

from tailguard.capacity.usl import USLFit

__all__ = ["plot_usl"]


def plot_usl(
    fit: USLFit,
    concurrency: Sequence[float],
    throughput: Sequence[float],
    path: str | os.PathLike[str],
) -> None:
    """Write a PNG to ``path``: ``throughput`` (requests/s, or the data's unit) measured at
    each ``concurrency``, the fitted USL curve and, when it is finite, the peak ``N*``."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    peak = fit.peak_concurrency
    top = max(max(concurrency), peak * 1.25 if math.isfinite(peak) else 0.0)
    n = np.linspace(1.0 if min(concurrency) >= 1 else 0.0, top, 400)
    curve = fit.lambda_ * n / (1 + fit.sigma * (n - 1) + fit.kappa * n * (n - 1))

    figure = Figure(figsize=(7, 4.5), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.plot(n, curve, color="tab:blue", label="USL fit")
    axes.scatter(concurrency, throughput, color="black", zorder=3, label="measured")
    if math.isfinite(peak):
        axes.axvline(peak, color="tab:red", linestyle="--", linewidth=1)
        axes.annotate(
            f"N* = {peak:.1f}\nX(N*) = {fit.peak_throughput:.4g}",
            xy=(peak, fit.peak_throughput),
            xytext=(8, -36),
            textcoords="offset points",
            color="tab:red",
        )
    axes.set_title(
        f"Universal Scalability Law: sigma = {fit.sigma:.4g}, kappa = {fit.kappa:.4g}, "
        f"lambda = {fit.lambda_:.5g}",
        fontsize="medium",
    )
    axes.set_xlabel("concurrency N")
    axes.set_ylabel("throughput X(N)")
    axes.set_xlim(left=0)
    axes.set_ylim(bottom=0)
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right")
    figure.savefig(path, format="png", dpi=100)
