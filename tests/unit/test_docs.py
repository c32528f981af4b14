"""Every ```python block in docs/*.md runs, in a fresh namespace, without error."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"
BLOCKS = [
    pytest.param(code, id=f"{path.stem}-{i}")
    for path in sorted(DOCS.glob("*.md"))
    for i, code in enumerate(re.findall(r"```python\n(.*?)```", path.read_text(), re.S))
]


@pytest.mark.parametrize("code", BLOCKS)
def test_doc_block_runs(
    code: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    if "TAILGUARD_REDIS_URL" in code:  # the example talks to Redis: give it the test server
        monkeypatch.setenv("TAILGUARD_REDIS_URL", request.getfixturevalue("redis_url"))
    # dont_inherit: a block runs as a user would run it, without this module's __future__.
    exec(compile(code, "<doc>", "exec", dont_inherit=True), {"__name__": "doc"})
    assert capsys.readouterr().out.strip(), "every example prints what it shows"
