"""axe-core in the page under test: the serious and critical violations, and a readable message.

The axe-core bundle is the one shipped in the ``axe_playwright_python`` package (read with
``importlib.resources``), evaluated in the page rather than added as a ``<script>`` tag so a
Content-Security-Policy on the shop cannot block it.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from typing import Any

BLOCKING_IMPACTS = ("serious", "critical")


@cache
def axe_source() -> str:
    return (files("axe_playwright_python") / "axe.min.js").read_text(encoding="utf-8")


def axe_violations(page: Any, impacts: tuple[str, ...] = BLOCKING_IMPACTS) -> list[dict[str, Any]]:
    """Run axe on the page as it is now; its violations with one of ``impacts``."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(axe_source())
    results = page.evaluate("options => axe.run(document, options)", {"resultTypes": ["violations"]})
    return [v for v in results["violations"] if v.get("impact") in impacts]


def describe(violations: list[dict[str, Any]]) -> str:
    """One paragraph per rule: id, impact, help, link, then the offending nodes' selectors."""
    parts = []
    for v in violations:
        nodes = "\n".join(f"    - {' '.join(map(str, node['target']))}" for node in v["nodes"])
        parts.append(f"  {v['id']} ({v['impact']}): {v['help']}\n    {v['helpUrl']}\n{nodes}")
    return "\n".join(parts)


def assert_no_violations(page: Any, where: str) -> None:
    violations = axe_violations(page)
    assert not violations, f"axe: serious or critical violations on {where}:\n{describe(violations)}"
