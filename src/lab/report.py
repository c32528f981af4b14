"""The ledger on the terminal (rich) and as an HTML report (the load lab's, plus the ledger and
the capacity plot)."""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

from lab.ledger import Ledger

__all__ = ["ledger_html", "print_ledger", "write_html"]


def _fmt(value: float) -> str:
    return f"{value:,.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def print_ledger(ledger: Ledger) -> None:
    """The ledger as a table on stdout."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title="What each practice buys (on: the practice; off: its naive twin)")
    for column in ("practice", "experiment", "figure", "on", "off", "ratio", "verdict"):
        table.add_column(column, justify="right" if column in ("on", "off", "ratio") else "left")
    for row in ledger.rows:
        colour = {"helps": "green", "hurts": "red"}.get(row.verdict, "yellow")
        table.add_row(
            row.practice,
            row.experiment,
            f"{row.metric} ({row.unit})",
            _fmt(row.on),
            _fmt(row.off),
            f"{row.ratio:g}x",
            f"[{colour}]{row.verdict}[/]",
        )
    Console(width=160).print(table)


def ledger_html(ledger: Ledger) -> str:
    """The ledger as an HTML table."""
    head = "".join(
        f"<th>{h}</th>"
        for h in ("practice", "experiment", "figure", "on", "off", "ratio", "verdict")
    )
    rows = []
    for row in ledger.rows:
        cells = [
            row.practice,
            row.experiment,
            f"{row.metric} ({row.unit})",
            _fmt(row.on),
            _fmt(row.off),
            f"{row.ratio:g}x",
            row.verdict,
        ]
        rows.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def write_html(ledger: Ledger, results: dict[str, Any], path: Path) -> Path:
    """The report: the realistic scenario's load-lab report, the ledger, the capacity plan."""
    from tailguard.loadtest.report import render_html

    sections = [("What each practice buys", ledger_html(ledger))]
    capacity = results.get("capacity")
    if capacity:
        plot = Path(capacity.get("plot", ""))
        image = ""
        if plot.is_file():
            data = base64.b64encode(plot.read_bytes()).decode()
            image = f'<img alt="USL fit" src="data:image/png;base64,{data}" style="max-width:100%">'
        summary = html.escape(capacity.get("summary", ""))
        sections.append(("Capacity", f"<pre>{summary}</pre>{image}"))
    scenario = results.get("scenario") or {"format": "tailguard-loadtest/1", "target": "shop"}
    page = render_html(
        scenario, title="tailguard demo: the shop under the guide's load", extra_sections=sections
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page)
    return path
