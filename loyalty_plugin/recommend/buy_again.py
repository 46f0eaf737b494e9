"""Buy it again: a member's own purchases, ranked by how often (and, with a half-life, how
recently) they buy each item and, for items they re-buy on a cycle, by how due the next
purchase is.

On real purchases a member's own most-bought items predict their next basket far better than
any similarity model when re-buys count, so this is the model for re-buys; the similarity
model is for items new to the member.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from .history import PurchaseHistory, check_purchases, day_number, purchase_history


@dataclass(frozen=True)
class Due:
    item: str
    score: float
    purchases: int
    #: Median days between purchases; None for an item bought once.
    cycle_days: float | None
    days_since: float


def due_scores(
    frequency: np.ndarray,
    cycle_days: np.ndarray,
    days_since: np.ndarray,
    *,
    due_width: float,
    due_weight: float,
) -> np.ndarray:
    """``frequency`` raised by up to ``1 + due_weight`` times for items whose cycle says the next
    purchase is about now. Early and late are judged on a log scale (a week late on a weekly
    item is as late as a month on a monthly one); items without a cycle are never due."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = days_since / cycle_days
    known = np.isfinite(ratio) & (cycle_days > 0)
    due = np.zeros_like(frequency, dtype=np.float64)
    due[known] = np.exp(-(np.log(np.clip(ratio[known], 1e-3, None)) ** 2) / (2 * due_width**2))
    return frequency * (1.0 + due_weight * due)


def member_due(
    history: PurchaseHistory, mine: slice, now: datetime | pd.Timestamp, *, due_width: float, due_weight: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``due_scores`` of one member's items (their slice of ``history``), with each item's cycle
    in days (NaN when bought once) and the days since it was last bought."""
    since = day_number(now) - history.last_day[mine]
    cycle = history.cycle_days[mine].astype(np.float64)
    weight = history.weight[mine].astype(np.float64)
    return due_scores(weight, cycle, since, due_width=due_width, due_weight=due_weight), cycle, since


class BuyAgain:
    """``fit`` takes purchases (columns ``user``, ``item``, ``at``); ``history_`` holds, per
    user and item, the number of purchase days, the last one and the median gap between them.

    ``due_width`` is how far (as a factor of the cycle, on a log scale) a purchase may be early
    or late and still count as due. ``half_life_days`` makes older purchase days count less.
    """

    def __init__(self, *, due_width: float = 0.5, due_weight: float = 1.0, half_life_days: float | None = None) -> None:
        self.due_width = due_width
        self.due_weight = due_weight
        self.half_life_days = half_life_days

    def fit(self, purchases: pd.DataFrame, *, now: datetime | pd.Timestamp | None = None) -> BuyAgain:
        """``now`` (default: the last purchase) is the moment the decay is measured from."""
        check_purchases(purchases)
        at = pd.Timestamp(now) if now is not None else pd.to_datetime(purchases["at"]).max()
        self.history_: PurchaseHistory = purchase_history(purchases, now=at, half_life_days=self.half_life_days)
        return self

    def recommend(self, user: str, *, now: datetime | pd.Timestamp, n: int = 10) -> list[Due]:
        """The user's items, most likely to be bought again now first."""
        history = self.history_
        row = history.row(user)
        if row < 0:
            return []
        mine = slice(history.indptr[row], history.indptr[row + 1])
        score, cycle, since = member_due(history, mine, now, due_width=self.due_width, due_weight=self.due_weight)
        order = np.argsort(-score, kind="stable")[:n]
        return [
            Due(
                item=str(history.items[history.indices[mine][i]]),
                score=float(score[i]),
                purchases=int(history.purchases[mine][i]),
                cycle_days=None if np.isnan(cycle[i]) else float(cycle[i]),
                days_since=float(since[i]),
            )
            for i in order
        ]
