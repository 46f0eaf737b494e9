"""The admin's recommendations page: the fitted versions and the newest one's offline scores.

The A/B figures themselves are :func:`loyalty_plugin.experiments.ab_figures`. A version's
artifact (the fitted model, megabytes) is never read here: the statements name the columns
they show.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from .experiments import Interval
from .models import RecommenderVersion

#: Days the page shows unless asked for another period (today included).
DEFAULT_DAYS = 30
#: The order the scores table lists models in: the served blend, then what it is judged against.
MODELS = ("blend", "popularity", "buy_again")
TARGETS = ("new", "all")
METRICS = ("precision", "recall", "ndcg", "hit_rate", "coverage")


def default_period(today: date) -> tuple[date, date]:
    return today - timedelta(days=DEFAULT_DAYS - 1), today


def versions() -> Select[Any]:
    """Every stored version, newest first (a statement, for the page and the CSV)."""
    v = RecommenderVersion
    return select(
        v.id.label("version"),
        v.fitted_at.label("fitted_at"),
        v.fit_seconds.label("fit_seconds"),
        v.users.label("users"),
        v.items.label("items"),
        v.interactions.label("interactions"),
        v.trained_until.label("trained_until"),
    ).order_by(v.id.desc())


@dataclass(frozen=True)
class Scores:
    """The newest version's offline evaluation: the last ``weeks`` weeks before ``cutoff``
    held out, top ``k`` scored per member; ``rows`` in ``TARGETS`` x ``MODELS`` order."""

    version: int
    cutoff: str
    weeks: int
    k: int
    rows: list[dict[str, Any]]


def newest_scores(session: Session) -> Scores | None:
    """None when no version was fitted, or the newest had too few orders to hold any out."""
    found = session.execute(
        select(RecommenderVersion.id, RecommenderVersion.scores).order_by(RecommenderVersion.id.desc()).limit(1)
    ).first()
    if found is None or not found.scores:
        return None
    scores = found.scores

    def order(row: dict[str, Any]) -> tuple[int, int]:
        target, model = row.get("target"), row.get("model")
        return (
            TARGETS.index(target) if target in TARGETS else len(TARGETS),
            MODELS.index(model) if model in MODELS else len(MODELS),
        )

    return Scores(
        found.id,
        str(scores.get("cutoff", "")),
        int(scores.get("weeks", 0)),
        int(scores.get("k", 0)),
        sorted(scores.get("rows", []), key=order),
    )


def score_table(scores: Scores | None) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]:
    """The scores as CSV columns and rows (no rows without scores)."""
    columns = ("version", "cutoff", "target", "model", "users", *METRICS)
    if scores is None:
        return columns, []
    rows = [
        (scores.version, scores.cutoff, r.get("target"), r.get("model"), r.get("users"), *(r.get(m) for m in METRICS))
        for r in scores.rows
    ]
    return columns, rows


def finite(value: float | None) -> float | None:
    """A figure a chart can take: NaN (an interval of one member) becomes "no value"."""
    return None if value is None or math.isnan(value) else value


def chart_series(intervals: list[Interval | None], scale: float = 1.0) -> tuple[list[Any], list[Any]]:
    """Values and [low, high] bars of ``intervals`` for a chart, times ``scale``."""
    values, ranges = [], []
    for iv in intervals:
        value, low, high = (finite(iv.value), finite(iv.low), finite(iv.high)) if iv else (None, None, None)
        values.append(None if value is None else round(value * scale, 4))
        ranges.append(None if low is None or high is None else [round(low * scale, 4), round(high * scale, 4)])
    return values, ranges
