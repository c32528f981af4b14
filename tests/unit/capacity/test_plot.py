"""The USL plot: a PNG, drawn without pyplot's global state."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tailguard.capacity import USLFit, fit_usl
from tailguard.capacity.plot import plot_usl

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
LOAD = [1, 18, 36, 72, 108, 144, 216]  # specsdm91, as in test_usl.py
THROUGHPUT = [64.9, 995.9, 1652.4, 1853.2, 1828.9, 1775.0, 1702.2]


def test_the_fit_is_drawn_to_a_png(tmp_path: Path) -> None:
    path = tmp_path / "usl.png"
    plot_usl(fit_usl(LOAD, THROUGHPUT), LOAD, THROUGHPUT, path)
    assert path.read_bytes().startswith(PNG_MAGIC)


def test_a_fit_without_a_peak_is_drawn_too(tmp_path: Path) -> None:
    path = tmp_path / "amdahl.png"
    plot_usl(USLFit(0.05, 0.0, 100.0, 1.0), [1, 2, 4, 8], [100, 190, 350, 600], str(path))
    assert path.read_bytes().startswith(PNG_MAGIC)


def test_plotting_leaves_pyplot_alone(tmp_path: Path) -> None:
    path = str(tmp_path / "p.png")
    code = (
        "import sys\n"
        "from tailguard.capacity import USLFit\n"
        "from tailguard.capacity.plot import plot_usl\n"
        f"plot_usl(USLFit(0.03, 1e-4, 90.0, 1.0), [1, 2, 3], [90, 170, 240], {path!r})\n"
        "print('matplotlib.pyplot' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
