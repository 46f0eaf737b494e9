"""Purchase histories as CSR-style arrays: per member and item, the number of days they bought
it, the last of those days, the median gap between them and a weight that favours recent
purchases.

One member's history is a slice of flat arrays rather than a pandas lookup, because a
recommendation has to be served in well under 2 ms, and flat arrays of numbers and fixed-width
strings can be stored without pickle.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime

import numpy as np
import pandas as pd

REQUIRED_COLUMNS = ("user", "item", "at")


def check_purchases(purchases: pd.DataFrame) -> None:
    """Refuse input the models would silently misread."""
    if not isinstance(purchases, pd.DataFrame):
        raise ValueError(f"purchases must be a pandas DataFrame, not {type(purchases).__name__}")
    missing = [c for c in REQUIRED_COLUMNS if c not in purchases.columns]
    if missing:
        raise ValueError(
            f"purchases lacks column(s) {', '.join(missing)}: expected user, item, at (and optionally quantity), "
            f"got {', '.join(map(str, purchases.columns)) or 'none'}"
        )
    if purchases["user"].isna().any() or purchases["item"].isna().any() or purchases["at"].isna().any():
        raise ValueError("purchases has empty user, item or at values: drop guest orders and undated lines first")


def day_number(when: datetime | pd.Timestamp) -> float:
    """Days since 1970-01-01, fractional: the unit every age and gap is counted in."""
    return pd.Timestamp(when).value / 86_400e9


def decay(age_days: np.ndarray, half_life_days: float | None) -> np.ndarray:
    """How much a purchase ``age_days`` old still counts: halves every ``half_life_days``."""
    if half_life_days is None:
        return np.ones_like(age_days, dtype=np.float64)
    return np.exp2(-np.clip(age_days, 0.0, None) / half_life_days)


@dataclass(frozen=True, eq=False)
class PurchaseHistory:
    """Users and items are sorted, so a name is found with a binary search. Row ``u``'s items are
    ``indices[indptr[u]:indptr[u + 1]]`` (sorted), and every per-item array is aligned with it."""

    users: np.ndarray
    items: np.ndarray
    indptr: np.ndarray
    indices: np.ndarray
    #: Distinct days the user bought the item.
    purchases: np.ndarray
    #: The last of them, as a day number.
    last_day: np.ndarray
    #: Median days between those purchase days; NaN for an item bought on one day only.
    cycle_days: np.ndarray
    #: Sum over purchase days of their decay at fit time (the purchase-day count without decay).
    weight: np.ndarray

    def row(self, user: str) -> int:
        """The user's row, or -1 for a user not in the history."""
        return _find(self.users, str(user))

    def item_rows(self, items: list[str] | tuple[str, ...] | np.ndarray) -> np.ndarray:
        """Indices of the known items among ``items``; unknown ones are dropped."""
        if len(items) == 0 or len(self.items) == 0:
            return np.empty(0, dtype=np.int64)
        wanted = np.asarray([str(i) for i in items])
        at = np.searchsorted(self.items, wanted).clip(max=len(self.items) - 1)
        return at[self.items[at] == wanted]

    def arrays(self) -> dict[str, np.ndarray]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> PurchaseHistory:
        return cls(**{f.name: arrays[f.name] for f in fields(cls)})


def _find(sorted_names: np.ndarray, name: str) -> int:
    at = int(np.searchsorted(sorted_names, name))
    return at if at < len(sorted_names) and sorted_names[at] == name else -1


def _codes(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    codes, names = pd.factorize(values.astype(str), sort=True)
    return codes.astype(np.int64), np.asarray(names, dtype=str)


def purchase_history(
    purchases: pd.DataFrame, *, now: datetime | pd.Timestamp, half_life_days: float | None
) -> PurchaseHistory:
    """Several lines of one item on one day count as one purchase: what recurs is the visit,
    not the number of lines or units."""
    check_purchases(purchases)
    user, users = _codes(purchases["user"])
    item, items = _codes(purchases["item"])
    day = pd.to_datetime(purchases["at"]).to_numpy().astype("datetime64[D]").astype(np.int64)
    first = int(day.min()) if len(day) else 0
    span = int(day.max()) - first + 1 if len(day) else 1
    keys = np.unique((user * len(items) + item) * span + (day - first))
    pair, day = np.divmod(keys, span)
    day = day + first
    starts = np.flatnonzero(np.r_[True, pair[1:] != pair[:-1]]) if len(pair) else np.empty(0, dtype=np.int64)
    count = np.diff(np.r_[starts, len(pair)])
    pairs = pair[starts]
    indptr = np.zeros(len(users) + 1, dtype=np.int64)
    np.cumsum(np.bincount(pairs // max(len(items), 1), minlength=len(users)), out=indptr[1:])
    ends = starts + count - 1
    age = day_number(now) - day
    weight = np.add.reduceat(decay(age, half_life_days), starts) if len(starts) else np.empty(0)
    return PurchaseHistory(
        users=users,
        items=items,
        indptr=indptr,
        indices=(pairs % max(len(items), 1)).astype(np.int32),
        purchases=count.astype(np.int32),
        last_day=day[ends].astype(np.int32),
        cycle_days=_median_gaps(pair, day, starts, count).astype(np.float32),
        weight=weight.astype(np.float32),
    )


def _median_gaps(pair: np.ndarray, day: np.ndarray, starts: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Median gap between consecutive purchase days of each (user, item) pair, all pairs at once:
    gaps sorted within their pair, then the middle one or two of each."""
    same = pair[1:] == pair[:-1]
    gaps = np.diff(day)[same].astype(np.float64)
    owner = np.repeat(np.arange(len(starts)), count - 1)
    gaps = gaps[np.lexsort((gaps, owner))]
    n = count - 1
    first = np.r_[0, np.cumsum(n)[:-1]] if len(n) else n
    median = np.full(len(starts), np.nan)
    has = n > 0
    lo = first[has] + (n[has] - 1) // 2
    hi = first[has] + n[has] // 2
    median[has] = (gaps[lo] + gaps[hi]) / 2
    return median
