"""Reading a concurrency sweep: ``concurrency,throughput`` rows of text (CSV).

A header line is optional; when present it names the two columns, in any order, among others
(``throughput,p99_ms,concurrency``). ``#`` starts a comment; blank lines are skipped.
"""

from __future__ import annotations

import math

__all__ = ["read_sweep"]


def read_sweep(text: str) -> tuple[list[float], list[float]]:
    """Parse a sweep: ``concurrency,throughput`` rows, an optional header line naming those
    columns (in any order, among others), ``#`` comments and blank lines. Raises
    ``ValueError("line N: ...")`` on a row it cannot read."""
    concurrency: list[float] = []
    throughput: list[float] = []
    columns: tuple[int, int] | None = None
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.partition("#")[0].strip()
        if not line:
            continue
        cells = [cell.strip() for cell in line.split(",")]
        if columns is None:
            columns = _header(cells, lineno)
            if columns is not None:
                continue
            columns = (0, 1)
        values = _row(cells, columns, lineno)
        concurrency.append(values[0])
        throughput.append(values[1])
    return concurrency, throughput


def _header(cells: list[str], lineno: int) -> tuple[int, int] | None:
    try:
        [float(cell) for cell in cells]
    except ValueError:
        names = [cell.strip().strip("\"'").lower() for cell in cells]
        if "concurrency" in names and "throughput" in names:
            return names.index("concurrency"), names.index("throughput")
        raise ValueError(
            f"line {lineno}: expected a header naming the columns concurrency and throughput, "
            f"or two numbers, got {','.join(cells)!r}"
        ) from None
    return None


def _row(cells: list[str], columns: tuple[int, int], lineno: int) -> tuple[float, float]:
    try:
        values = (float(cells[columns[0]]), float(cells[columns[1]]))
    except (IndexError, ValueError):
        raise ValueError(
            f"line {lineno}: expected numbers for concurrency,throughput, got {','.join(cells)!r}"
        ) from None
    for name, value in zip(("concurrency", "throughput"), values, strict=True):
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"line {lineno}: {name} must be a finite number > 0, got {value!r}")
    return values
