"""Offline evaluation on one global time cut-off: fit on the purchases before it, recommend at
it, and score the top ``k`` against what each member bought in the ``weeks`` after.

One cut-off for everyone (not a per-member leave-last-out) is what a shop lives through: the
model is fitted on a day and serves the weeks after, popular items included. Two targets:

- ``new``: items new to the member. Their past items are excluded from the candidates
  (``new_only``) and from the truth; members who bought nothing new are left out.
- ``all``: everything they bought in the test weeks, re-buys included.

The members scored are those with purchases in both periods.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from .blend import Recommender
from .history import check_purchases

Progress = Callable[[int, int], None]
METRICS = ("users", "precision", "recall", "ndcg", "hit_rate", "coverage")


@dataclass(frozen=True)
class Evaluation:
    """``table``: one row per (target, model), columns ``METRICS``."""

    cutoff: pd.Timestamp
    weeks: int
    k: int
    table: pd.DataFrame

    def ndcg(self, target: str, model: str) -> float:
        return float(self.table.loc[(target, model), "ndcg"])

    def summary(self) -> str:
        return self.table.to_string(float_format=lambda x: f"{x:.4f}")


def default_models(**blend: Any) -> dict[str, Recommender]:
    """The blend (with ``blend``'s parameters) beside each of its parts alone. Buy-again alone
    offers only the member's own items (due and trending ones raised, as in the blend); item-kNN
    alone ranks every item by similarity, the member's own included when re-buys count.
    Popularity is shown twice: all-time distinct buyers, the usual baseline, and the blend's own
    recent popularity, a harder one."""
    return {
        "popularity": Recommender(**{**blend, "popular_half_life_days": None, "sources": ("popular",)}),
        "recent_popularity": Recommender(**{**blend, "sources": ("popular",)}),
        "buy_again": Recommender(**{**blend, "sources": ("buy_again",)}),
        "item_knn": Recommender(**{**blend, "sources": ("similar",)}),
        "blend": Recommender(**blend),
    }


def ranking_metrics(recommended: list[str], truth: set[str], k: int) -> tuple[float, float, float, float]:
    """Precision, recall, NDCG and hit at ``k`` for one member, relevance 0 or 1; the ideal DCG
    puts ``min(len(truth), k)`` hits first."""
    gains = np.array([item in truth for item in recommended[:k]], dtype=float)
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = float(gains @ discounts[: len(gains)])
    ideal = float(discounts[: min(len(truth), k)].sum())
    hits = float(gains.sum())
    return hits / k, hits / len(truth), dcg / ideal, float(hits > 0)


@dataclass(frozen=True)
class Split:
    """Training purchases, and each member's items bought before the cut-off and in the test weeks."""

    cutoff: pd.Timestamp
    weeks: int
    train: pd.DataFrame
    before: dict[str, set[str]]
    after: dict[str, set[str]]


def split(purchases: pd.DataFrame, *, cutoff: datetime | pd.Timestamp, weeks: int = 13) -> Split:
    check_purchases(purchases)
    at = pd.to_datetime(purchases["at"])
    cutoff = pd.Timestamp(cutoff)
    train = purchases[at < cutoff]
    test = purchases[(at >= cutoff) & (at < cutoff + pd.Timedelta(weeks=weeks))]
    return Split(cutoff, weeks, train, _items_by_user(train), _items_by_user(test))


def _items_by_user(purchases: pd.DataFrame) -> dict[str, set[str]]:
    return purchases.astype({"user": str, "item": str}).groupby("user")["item"].agg(set).to_dict()


def evaluate(
    purchases: pd.DataFrame,
    *,
    cutoff: datetime | pd.Timestamp,
    weeks: int = 13,
    k: int = 10,
    models: Mapping[str, Recommender] | None = None,
    progress: Progress | None = None,
) -> Evaluation:
    """Fit each model (default: ``default_models()``) on the purchases before ``cutoff`` and
    score it on both targets. ``progress(done, total)`` is called as members are scored."""
    data = split(purchases, cutoff=cutoff, weeks=weeks)
    models = default_models() if models is None else models
    for model in models.values():
        model.fit(data.train, now=data.cutoff)
    return score(models, data, k=k, progress=progress)


def score(
    models: Mapping[str, Recommender], data: Split, *, k: int = 10, progress: Progress | None = None
) -> Evaluation:
    """Score models already fitted on ``data.train`` (a grid search fits once, scores many
    weightings)."""
    members = sorted(set(data.after) & set(data.before))
    total = 2 * len(models) * len(members)
    done = 0
    rows = []
    for name, model in models.items():
        for target in ("new", "all"):
            metrics = []
            shown: set[str] = set()
            for user in members:
                truth = data.after[user] - data.before[user] if target == "new" else data.after[user]
                done += 1
                if truth:
                    picks = model.recommend(user, k, now=data.cutoff, new_only=target == "new")
                    recommended = [p.item for p in picks]
                    shown.update(recommended)
                    metrics.append(ranking_metrics(recommended, truth, k))
                if progress is not None:
                    progress(done, total)
            means = np.mean(metrics, axis=0) if metrics else np.zeros(4)
            coverage = len(shown) / max(len(model.items_), 1)
            rows.append((target, name, len(metrics), *means, coverage))
    table = pd.DataFrame(rows, columns=["target", "model", *METRICS]).set_index(["target", "model"])
    return Evaluation(cutoff=data.cutoff, weeks=data.weeks, k=k, table=table.sort_index(level=0, sort_remaining=False))
