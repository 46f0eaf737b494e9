"""The recency x frequency grid that names RFM segments, as plain data a setting can replace.

Kept apart from the scoring code so that reading the settings does not import scikit-learn.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

#: The widely used 5x5 grid: R and F scores 1-5, each cell in exactly one named segment.
DEFAULT_RFM_GRID: list[dict[str, Any]] = [
    {"name": "Champions", "r": [5, 5], "f": [4, 5]},
    {"name": "Loyal", "r": [3, 4], "f": [4, 5]},
    {"name": "Potential loyalists", "r": [4, 5], "f": [2, 3]},
    {"name": "New", "r": [5, 5], "f": [1, 1]},
    {"name": "Promising", "r": [4, 4], "f": [1, 1]},
    {"name": "Need attention", "r": [3, 3], "f": [3, 3]},
    {"name": "About to sleep", "r": [3, 3], "f": [1, 2]},
    {"name": "At risk", "r": [1, 2], "f": [3, 4]},
    {"name": "Can't lose", "r": [1, 2], "f": [5, 5]},
    {"name": "Hibernating", "r": [1, 2], "f": [1, 2]},
]


def _span(segment: Mapping[str, Any], axis: str, where: str) -> range:
    bounds = segment.get(axis)
    if (
        not isinstance(bounds, Sequence)
        or len(bounds) != 2
        or not all(isinstance(b, int) and not isinstance(b, bool) and 1 <= b <= 5 for b in bounds)
        or bounds[0] > bounds[1]
    ):
        raise ValueError(f"{where}: '{axis}' must be [low, high] with 1 <= low <= high <= 5, not {bounds!r}.")
    return range(bounds[0], bounds[1] + 1)


def validate_grid(grid: Any) -> list[dict[str, Any]]:
    """The grid as a list of dicts, or ValueError naming the first problem: every one of the
    25 (R, F) cells must belong to exactly one segment, or some members would have none."""
    if not isinstance(grid, Sequence) or isinstance(grid, str) or not grid:
        raise ValueError("give a list of segments, each {name, r: [low, high], f: [low, high]}.")
    owner: dict[tuple[int, int], str] = {}
    result = []
    for i, segment in enumerate(grid):
        if not isinstance(segment, Mapping) or not isinstance(segment.get("name"), str) or not segment["name"]:
            raise ValueError(f"segment {i + 1}: each segment needs a 'name'.")
        where = f"segment {i + 1} ({segment['name']})"
        r_span, f_span = _span(segment, "r", where), _span(segment, "f", where)
        for r in r_span:
            for f in f_span:
                if (r, f) in owner:
                    raise ValueError(f"{where}: cell R{r} F{f} is already in '{owner[r, f]}'.")
                owner[r, f] = segment["name"]
        result.append({"name": segment["name"], "r": list(segment["r"]), "f": list(segment["f"])})
    missing = [f"R{r} F{f}" for r in range(1, 6) for f in range(1, 6) if (r, f) not in owner]
    if missing:
        raise ValueError(f"no segment covers {', '.join(missing)}.")
    return result
