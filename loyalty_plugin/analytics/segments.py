"""Member segments: RFM scores named by the recency x frequency grid, and K-means value segments.

RFM is the segmentation a marketer can read off a table (bought lately? often? much?); the
K-means segments group members by value without fixed cut-offs and are named by the value
each group holds, so "Top value" means the same thing whatever k the data asked for.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score
from sklearn.preprocessing import StandardScaler

from .rfm_grid import DEFAULT_RFM_GRID, validate_grid

__all__ = ["DEFAULT_RFM_GRID", "ValueSegments", "name_segments", "rfm_scores", "validate_grid"]

DAY = pd.Timedelta(days=1)


def _quintile(values: pd.Series, *, higher_is_better: bool = True) -> pd.Series:
    """Score 1-5: one plus the whole fifths of customers who do strictly worse.

    Equal values get equal scores and a tie takes the lowest score of its group: the many
    one-order customers are all F1, whatever share of the base they are. Averaging tied ranks
    (the other common choice) would lift them all to F2 or F3 once they are the majority,
    leaving F1, and with it "New" and "Promising", empty. The price: a tie at the top that is
    more than a fifth of the customers (everyone with the highest frequency, say) does not
    reach 5, which happens in tiny shops, not in real recency or spend.
    """
    worse = values.rank(method="min", ascending=higher_is_better) - 1
    return (1 + (5 * worse) // len(values)).astype(int)


def rfm_scores(transactions: pd.DataFrame, *, now: datetime, window_days: float = 365) -> pd.DataFrame:
    """Recency (whole days since the last order), frequency (orders) and monetary value (total
    spend) over the orders in (now - window_days, now], each scored 1-5 as quintiles, 5 best:
    R5 = the most recent fifth. Customers without an order in the window are left out: the
    scores compare active customers with each other.

    Recency counts whole days so that everyone who bought on the same day ties (same score)
    instead of being ordered by the hour of their purchase.
    """
    now = pd.Timestamp(now)
    recent = transactions[(transactions["at"] > now - window_days * DAY) & (transactions["at"] <= now)]
    per = recent.groupby("customer").agg(last=("at", "max"), frequency=("at", "size"), monetary=("amount", "sum"))
    scores = pd.DataFrame(
        {
            "recency_days": ((now - per["last"]) // DAY).astype(int),
            "frequency": per["frequency"].astype(int),
            "monetary": per["monetary"].astype(float),
        },
        index=per.index.rename("customer"),
    )
    scores["r"] = _quintile(scores["recency_days"], higher_is_better=False)
    scores["f"] = _quintile(scores["frequency"])
    scores["m"] = _quintile(scores["monetary"])
    return scores


def name_segments(scores: pd.DataFrame, grid: Sequence[Any] = DEFAULT_RFM_GRID) -> pd.Series:
    """The segment of each customer from their ``r`` and ``f`` scores; the grid is checked first,
    so a grid from a setting that misses a cell fails here, loudly, not with unnamed members."""
    cell = {}
    for segment in validate_grid(grid):
        (r_low, r_high), (f_low, f_high) = segment["r"], segment["f"]
        cell.update({(r, f): segment["name"] for r in range(r_low, r_high + 1) for f in range(f_low, f_high + 1)})
    names = [cell[r, f] for r, f in zip(scores["r"], scores["f"], strict=True)]
    return pd.Series(names, index=scores.index, name="segment", dtype=object)


#: Names by value rank, highest first, for each k; beyond the table: "Value rank i".
VALUE_NAMES: dict[int, tuple[str, ...]] = {
    2: ("High value", "Low value"),
    3: ("High value", "Mid value", "Low value"),
    4: ("Top value", "High value", "Mid value", "Low value"),
    5: ("Top value", "High value", "Mid value", "Low value", "Lowest value"),
    6: ("Top value", "High value", "Upper-mid value", "Lower-mid value", "Low value", "Lowest value"),
    7: ("Top value", "High value", "Upper-mid value", "Mid value", "Lower-mid value", "Low value", "Lowest value"),
    8: (
        "Top value",
        "Very high value",
        "High value",
        "Upper-mid value",
        "Lower-mid value",
        "Low value",
        "Very low value",
        "Lowest value",
    ),
}
SINGLE_SEGMENT = "All members"


def _value_names(k: int) -> list[str]:
    if k == 1:
        return [SINGLE_SEGMENT]
    return list(VALUE_NAMES.get(k, [f"Value rank {i + 1}" for i in range(k)]))


class ValueSegments:
    """K-means on standardised member features, k chosen by the silhouette, segments named by
    value rank ("Top value" first).

    ``columns`` are the features used when present (``clv`` is often missing or NaN); counts and
    money are log1p-transformed (``log_columns``) because a few big spenders would otherwise
    take whole clusters to themselves. The silhouette of each candidate k is measured on a
    fixed-seed sample of at most ``sample_size`` members: it costs O(n^2) (a 10k sample takes
    about a second per k, 5k a quarter of that) and 5k estimate it to +-0.003, finer than the
    gaps between candidates on real bases; K-means itself is fitted on every member.

    Learned: ``columns_`` (features used), ``k_``, ``silhouette_`` ({k: score}, to explain the
    choice), ``labels_`` (0 = highest value), ``names_`` (name of each label), ``centers_``
    (mean raw features per segment, highest value first, with ``members``), ``value_column_``
    and ``reason_`` (why there is a single segment, else None).
    """

    def __init__(
        self,
        k_range: Sequence[int] = range(2, 9),
        random_state: int = 0,
        sample_size: int = 5_000,
        columns: Sequence[str] = ("recency_days", "frequency", "monetary", "clv"),
        log_columns: Sequence[str] = ("frequency", "monetary", "clv"),
    ) -> None:
        self.k_range = k_range
        self.random_state = random_state
        self.sample_size = sample_size
        self.columns = columns
        self.log_columns = log_columns

    def _matrix(self, features: pd.DataFrame) -> np.ndarray:
        """The model's input: chosen columns, gaps filled with the fitted medians, logs taken."""
        frame = features[self.columns_].astype(float).fillna(self.medians_)
        for column in self.columns_:
            if column in self.log_columns:
                frame[column] = np.log1p(frame[column].clip(lower=0))
        return frame.to_numpy()

    def fit(self, features: pd.DataFrame) -> ValueSegments:
        """One K-means per candidate k on all members; ``k_`` has the highest silhouette (the
        smaller k on a tie). Too few distinct members for two segments: one, with ``reason_``."""
        usable = [c for c in self.columns if c in features.columns and (features.empty or features[c].notna().any())]
        value = next((c for c in ("clv", "monetary") if c in usable), None)
        if value is None:
            raise ValueError("value segments need a 'monetary' or 'clv' column with numbers in it.")
        self.columns_, self.value_column_ = usable, value
        self.medians_ = features[usable].astype(float).median()
        raw = self._matrix(features)
        self.scaler_ = StandardScaler().fit(raw) if len(raw) else None
        x = self.scaler_.transform(raw) if self.scaler_ is not None else raw
        distinct = len(np.unique(x, axis=0)) if len(x) else 0
        candidates = [k for k in self.k_range if 2 <= k < distinct]
        self.silhouette_: dict[int, float] = {}
        models: dict[int, KMeans] = {}
        sample = self.sample_size if len(x) > self.sample_size else None
        for k in candidates:
            models[k] = KMeans(n_clusters=k, n_init=4, random_state=self.random_state).fit(x)
            self.silhouette_[k] = float(
                silhouette_score(x, models[k].labels_, sample_size=sample, random_state=self.random_state)
            )
        if not candidates:
            self.k_, self.model_ = 1, None
            self.reason_ = (
                f"{len(x)} member(s) with {distinct} distinct feature rows: too few to split into "
                f"{min(self.k_range, default=2)} or more segments."
            )
            clusters = np.zeros(len(x), dtype=int)
            self.rank_ = np.zeros(1, dtype=int)
        else:
            self.k_ = max(self.silhouette_, key=lambda k: self.silhouette_[k])
            self.model_, self.reason_ = models[self.k_], None
            clusters = self.model_.labels_
            means = pd.Series(features[value].to_numpy(dtype=float)).groupby(clusters).mean()
            order = means.sort_values(ascending=False, kind="stable").index.to_numpy()
            self.rank_ = np.argsort(order)  # cluster id -> value rank
        self.labels_ = self.rank_[clusters]
        self.names_ = _value_names(self.k_)
        centers = features[usable].astype(float).groupby(self.labels_).mean()
        centers["members"] = np.bincount(self.labels_, minlength=self.k_)[centers.index]
        centers.index = [self.names_[i] for i in centers.index]
        self.centers_ = centers
        return self

    def predict(self, features: pd.DataFrame) -> pd.Series:
        """The segment name of each member (index kept), by the nearest fitted centre."""
        if self.model_ is None:
            labels = np.zeros(len(features), dtype=int)
        else:
            labels = self.rank_[self.model_.predict(self.scaler_.transform(self._matrix(features)))]
        return pd.Series([self.names_[i] for i in labels], index=features.index, name="segment", dtype=object)
