"""Buy it again: a member's own purchases, ranked by how often they buy each item and, for
items they re-buy on a cycle, by how due the next purchase is.

On real purchases a member's own most-bought items predict their next basket far better than
any similarity model when re-buys count, so this is the model for re-buys; the similarity
model is for items new to the member.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Due:
    item: str
    score: float
    purchases: int
    #: Median days between purchases; None for an item bought once.
    cycle_days: float | None
    days_since: float


class BuyAgain:
    """``fit`` takes purchases (columns ``user``, ``item``, ``at``); ``history_`` holds, per
    user and item, the number of purchase days, the last one and the median gap between them.

    ``due_width`` is how far (as a factor of the cycle, on a log scale) a purchase may be early
    or late and still count as due.
    """

    def __init__(self, *, due_width: float = 0.5, due_weight: float = 1.0) -> None:
        self.due_width = due_width
        self.due_weight = due_weight

    def fit(self, purchases: pd.DataFrame) -> BuyAgain:
        days = purchases.assign(day=pd.to_datetime(purchases["at"]).dt.normalize())[["user", "item", "day"]]
        days = days.drop_duplicates().sort_values(["user", "item", "day"])
        gaps = days.groupby(["user", "item"])["day"].diff().dt.total_seconds() / 86400
        days = days.assign(gap=gaps)
        grouped = days.groupby(["user", "item"])
        self.history_ = pd.DataFrame(
            {"purchases": grouped["day"].size(), "last": grouped["day"].max(), "cycle_days": grouped["gap"].median()}
        )
        return self

    def recommend(self, user: str, *, now: pd.Timestamp, n: int = 10) -> list[Due]:
        """The user's items, most likely to be bought again now first."""
        try:
            mine = self.history_.loc[user]
        except KeyError:
            return []
        since = (pd.Timestamp(now) - mine["last"]).dt.total_seconds().to_numpy() / 86400
        cycle = mine["cycle_days"].to_numpy(dtype=float)
        count = mine["purchases"].to_numpy(dtype=float)
        ratio = np.divide(since, cycle, out=np.full_like(since, np.nan), where=cycle > 0)
        due = np.exp(-(np.log(np.clip(ratio, 1e-3, None)) ** 2) / (2 * self.due_width**2))
        due = np.where(np.isnan(ratio), 0.0, due)
        score = count * (1.0 + self.due_weight * due)
        order = np.argsort(-score, kind="stable")[:n]
        return [
            Due(
                item=str(mine.index[i]),
                score=float(score[i]),
                purchases=int(count[i]),
                cycle_days=None if np.isnan(cycle[i]) else float(cycle[i]),
                days_since=float(since[i]),
            )
            for i in order
        ]
