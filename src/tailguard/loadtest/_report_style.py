"""The report's stylesheet, inlined into the page (the report loads nothing from anywhere)."""

from __future__ import annotations

__all__ = ["CSP", "CSS"]

# The page may load nothing: a stray external reference is blocked (and shows as a console error).
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:"

CSS = """
:root { --ink: #111827; --muted: #6b7280; --line: #e5e7eb; --bg: #f3f4f6; --card: #fff;
        --ok: #15803d; --ok-bg: #dcfce7; --bad: #b91c1c; --bad-bg: #fee2e2; --accent: #2563eb; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink);
       font: 14px/1.45 "DejaVu Sans", "Liberation Sans", Arial, Helvetica, sans-serif; }
main { max-width: 1200px; margin: 0 auto; padding: 24px 20px 40px; }
header.report { background: var(--card); border: 1px solid var(--line); border-radius: 10px;
                padding: 18px 22px; border-top: 4px solid var(--accent); }
h1 { font-size: 21px; margin: 0 0 4px; overflow-wrap: anywhere; }
h2 { font-size: 15px; margin: 0 0 10px; }
.sub { color: var(--muted); margin: 0 0 14px; }
.badge { display: inline-block; padding: 1px 9px; border-radius: 999px; font-weight: 600;
         font-size: 12px; vertical-align: middle; background: var(--line); color: var(--ink); }
.badge.pass { background: var(--ok-bg); color: var(--ok); }
.badge.fail { background: var(--bad-bg); color: var(--bad); }
dl.meta { display: flex; flex-wrap: wrap; gap: 10px 36px; margin: 0; }
dl.meta div { min-width: 90px; max-width: 100%; }
dl.meta dt { color: var(--muted); font-size: 11px; text-transform: uppercase;
             letter-spacing: .04em; }
dl.meta dd { margin: 0; font-weight: 600; overflow-wrap: anywhere;
             font-variant-numeric: tabular-nums; }
dl.settings { margin-top: 14px; padding-top: 12px; border-top: 1px solid var(--line); }
dl.settings dd { font-weight: 400; }
section { background: var(--card); border: 1px solid var(--line); border-radius: 10px;
          padding: 16px 20px; margin-top: 16px; min-width: 0; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(480px, 1fr)); gap: 16px;
        margin-top: 16px; }
.grid > section { margin-top: 0; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
table.compact { width: auto; min-width: 420px; }
th, td { padding: 6px 10px; border-bottom: 1px solid var(--line); text-align: right;
         white-space: nowrap; }
th { color: var(--muted); font-weight: 600; font-size: 12px; }
th:first-child, td:first-child { text-align: left; }
tbody tr:last-child td { border-bottom: 0; }
tr.total td { font-weight: 700; background: #f9fafb; }
td.name { max-width: 320px; overflow: hidden; text-overflow: ellipsis; }
td.bad, td.fail { color: var(--bad); font-weight: 600; }
.plot svg { display: block; width: 100%; height: auto; }
.note { color: var(--muted); margin: 6px 0; }
.warn { color: var(--bad); }
footer { color: var(--muted); font-size: 12px; margin-top: 18px; text-align: center; }
"""
