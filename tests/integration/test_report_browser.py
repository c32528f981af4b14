"""The HTML report in a real browser: headless Debian chromium loads it from a file, paints it
without a console error, and shows the run's own figures.

chromium comes from Debian's ``chromium`` package (``make browser`` installs it). Without it
this test skips, except under ``CI=true``, where it fails.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from tailguard.loadtest.report import render_html
from tests.browser import open_page, png_size, require_chromium
from tests.unit.loadtest.test_report import build_result, shown

WINDOW = (1280, 2400)


def keep(report: Path, png: bytes) -> None:
    """Copy the page and its screenshot to $TAILGUARD_REPORT_SCREENSHOT, to look at by eye."""
    if target := os.environ.get("TAILGUARD_REPORT_SCREENSHOT"):
        shutil.copyfile(report, Path(target).with_suffix(".html"))
        Path(target).write_bytes(png)


async def test_the_report_renders_cleanly_in_chromium(tmp_path: Path) -> None:
    require_chromium()
    result = build_result(sweep=True)
    report = tmp_path / "report.html"
    report.write_text(render_html(result), encoding="utf-8")

    page = await open_page(report, window=WINDOW)

    keep(report, page.screenshot_png)
    assert page.console_errors == []
    assert png_size(page.screenshot_png) == WINDOW
    assert len(page.screenshot_png) > 20_000  # a painted page, not a blank one
    totals = result["totals"]
    assert f"Load test: {result['target']}" in page.text
    assert shown(totals["latency_ms"]["p99"]) in page.text
    assert f"{totals['requests']:,}" in page.text
    assert "SLOs failed" in page.text


async def test_console_errors_are_caught(tmp_path: Path) -> None:
    """The check above can fail: a page that throws and logs is reported as such."""
    require_chromium()
    broken = tmp_path / "broken.html"
    broken.write_text(
        "<!DOCTYPE html><title>broken</title><p>hello</p>"
        "<script>console.error('logged', 42); undefinedFunction();</script>"
        '<img src="missing.png">',
        encoding="utf-8",
    )

    page = await open_page(broken, window=(400, 300))

    assert page.text == "hello"
    joined = "\n".join(page.console_errors)
    assert "console.error: logged 42" in joined
    assert "undefinedFunction" in joined
    assert "missing.png" in joined
