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


def default_models(**blend: object) -> dict[str, Recommender]:
    """The blend (with ``blend``'s parameters) beside each of its parts alone; popularity is
    all-time distinct buyers, the usual baseline."""
    return {
        "popularity": Recommender(**{**blend, "half_life_days": None, "sources": ("popular",)}),  # type: ignore[arg-type]
        "buy_again": Recommender(**{**blend, "sources": ("buy_again",)}),  # type: ignore[arg-type]
        "item_knn": Recommender(**{**blend, "sources": ("similar",)}),  # type: ignore[arg-type]
        "blend": Recommender(**blend),  # type: ignore[arg-type]
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


def split(
    purchases: pd.DataFrame, cutoff: datetime | pd.Timestamp, weeks: int
) -> tuple[pd.DataFrame, dict[str, set[str]], dict[str, set[str]]]:
    """Training purchases, and each member's items bought in the test weeks and before."""
    check_purchases(purchases)
    at = pd.to_datetime(purchases["at"])
    cutoff = pd.Timestamp(cutoff)
    train = purchases[at < cutoff]
    test = purchases[(at >= cutoff) & (at < cutoff + pd.Timedelta(weeks=weeks))]
    bought_after = test.astype({"user": str, "item": str}).groupby("user")["item"].agg(set).to_dict()
    bought_before = train.astype({"user": str, "item": str}).groupby("user")["item"].agg(set).to_dict()
    return train, bought_after, bought_before


def evaluate(
    purchases: pd.DataFrame,
    *,
    cutoff: datetime | pd.Timestamp,
    weeks: int = 13,
    k: int = 10,
    models: Mapping[str, Recommender] | None = None,
    progress: Progress | None = None,
) -> Evaluation:
    """Fit each model on the purchases before ``cutoff`` and score it on both targets.
    ``progress(done, total)`` is called as members are scored."""
    train, after, before = split(purchases, cutoff, weeks)
    models = default_models() if models is None else models
    members = sorted(set(after) & set(before))
    total = 2 * len(models) * len(members)
    done = 0
    rows = []
    for name, model in models.items():
        model.fit(train, now=cutoff)
        for target in ("new", "all"):
            scores = []
            shown: set[str] = set()
            for user in members:
                truth = after[user] - before[user] if target == "new" else after[user]
                done += 1
                if truth:
                    picks = model.recommend(user, k, now=cutoff, new_only=target == "new")
                    recommended = [p.item for p in picks]
                    shown.update(recommended)
                    scores.append(ranking_metrics(recommended, truth, k))
                if progress is not None:
                    progress(done, total)
            means = np.mean(scores, axis=0) if scores else np.zeros(4)
            coverage = len(shown) / max(len(model.items_), 1)
            rows.append((target, name, len(scores), *means, coverage))
    table = pd.DataFrame(rows, columns=["target", "model", *METRICS]).set_index(["target", "model"])
    return Evaluation(cutoff=pd.Timestamp(cutoff), weeks=weeks, k=k, table=table.sort_index(level=0, sort_remaining=False))
