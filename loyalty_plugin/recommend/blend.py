"""The "recommended for you" model: the member's own re-buys (due and trending ones raised),
items similar to what they bought and popular items, blended into one ranking where every pick
carries its reason.

Buy-again wins by far when re-buys count and cannot suggest anything new; item similarity is
the model for items new to the member; recent popularity fills in for members with little
history and, among a member's own items, brings back the seasonal ones. The fitted model is
flat arrays, stored without pickle (``to_bytes``) so that every worker can load the same
version from the database and answer in well under 2 ms.
"""

from __future__ import annotations

import io
import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import sparse

from .buy_again import member_due
from .history import PurchaseHistory, check_purchases, day_number, decay, purchase_history
from .similarity import ItemSimilarity, Weighting

Reason = Literal["buy_again", "similar", "popular"]
SOURCES: tuple[Reason, ...] = ("buy_again", "similar", "popular")
#: Bumped when the stored arrays change meaning; ``from_bytes`` refuses other formats.
FORMAT = 1


@dataclass(frozen=True)
class Pick:
    item: str
    score: float
    reason: Reason
    #: For "similar": the member's purchased item that most supports it.
    because: str | None = None
    #: For "buy_again": the member's re-buy cycle, when known.
    cycle_days: float | None = None


class Recommender:
    """``fit`` takes purchases (columns ``user``, ``item``, ``at``; others are ignored) and the
    moment they were collected; ``recommend`` answers one user from flat arrays.

    Three parts score a candidate, each scaled to 1 at its best:

    - buy again, for the user's own items: ``due_scores`` of their decayed purchase days, plus
      ``trend_weight`` times the item's recent popularity (a member's seasonal items come back
      when everyone buys them);
    - similar: the summed similarity to the user's items, times ``similar_weight``;
    - popular, for the other items: recent popularity (buyers, each counted by how recently they
      last bought, halving every ``popular_half_life_days``), times ``popular_weight``.

    ``half_life_days`` makes older purchases count less in the first two. ``sources`` picks the
    parts (the evaluation compares each alone); ``k``, ``weighting`` and ``block_size`` are
    ``ItemSimilarity``'s. The defaults were chosen on a validation split of the Online Retail
    data (``bench/eval_recommender.py``).
    """

    def __init__(
        self,
        *,
        k: int = 20,
        weighting: Weighting = "tfidf",
        half_life_days: float | None = 90.0,
        popular_half_life_days: float | None = 7.0,
        due_width: float = 0.5,
        due_weight: float = 0.5,
        similar_weight: float = 0.25,
        popular_weight: float = 0.1,
        trend_weight: float = 1.0,
        sources: Sequence[Reason] = SOURCES,
        block_size: int = 20_000,
    ) -> None:
        self.k = k
        self.weighting = weighting
        self.half_life_days = half_life_days
        self.popular_half_life_days = popular_half_life_days
        self.due_width = due_width
        self.due_weight = due_weight
        self.similar_weight = similar_weight
        self.popular_weight = popular_weight
        self.trend_weight = trend_weight
        self.sources = sources
        self.block_size = block_size

    def get_params(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _PARAMS} | {"sources": list(self.sources)}

    def fit(self, purchases: pd.DataFrame, *, now: datetime | pd.Timestamp) -> Recommender:
        """``purchases``: columns user (str), item (str), at (datetime64), optional quantity."""
        unknown = set(self.sources) - set(SOURCES)
        if unknown or not self.sources:
            raise ValueError(f"sources must be a non-empty subset of {', '.join(SOURCES)}; got {list(self.sources)}")
        if self.similar_weight <= 0 or self.popular_weight <= 0:
            raise ValueError("similar_weight and popular_weight must be positive")
        check_purchases(purchases)
        self.now_ = day_number(now)
        self.history_ = purchase_history(purchases, now=now, half_life_days=self.half_life_days)
        h = self.history_
        # Whether, and how recently, each user bought each item: purchase counts would let one
        # heavy re-buyer dominate an item's similarities.
        bought = sparse.csr_matrix(
            (self._recency(h.last_day, self.half_life_days), h.indices, h.indptr), shape=(len(h.users), len(h.items))
        )
        self.similarity_: sparse.csr_matrix = sparse.csr_matrix((len(h.items), len(h.items)), dtype=np.float32)
        if "similar" in self.sources:  # the costly step, for the one source that reads it
            similarity = ItemSimilarity(self.k, weighting=self.weighting, block_size=self.block_size)
            self.similarity_ = similarity.fit(bought).similarity_
        recent = self._recency(h.last_day, self.popular_half_life_days)
        self.popularity_ = np.bincount(h.indices, weights=recent, minlength=len(h.items))
        self._index_popular()
        return self

    def _recency(self, last_day: np.ndarray, half_life_days: float | None) -> np.ndarray:
        return decay(self.now_ - last_day.astype(np.float64), half_life_days).astype(np.float32)

    def _index_popular(self) -> None:
        self.popular_ = np.argsort(-self.popularity_, kind="stable").astype(np.int32)
        top = float(self.popularity_.max()) if len(self.popularity_) else 0.0
        self._popular_scaled = self.popularity_ / top if top > 0 else self.popularity_

    @property
    def items_(self) -> np.ndarray:
        """Every item the model knows, sorted."""
        return self.history_.items

    def known(self, user: str) -> bool:
        return self.history_.row(user) >= 0

    def history(self, user: str) -> list[str]:
        """The items the user bought in the training data (sorted); empty for an unknown user."""
        row = self.history_.row(user)
        if row < 0:
            return []
        h = self.history_
        return h.items[h.indices[h.indptr[row] : h.indptr[row + 1]]].tolist()

    def recommend(
        self,
        user: str,
        k: int = 8,
        *,
        now: datetime | pd.Timestamp,
        exclude: Collection[str] = (),
        new_only: bool = False,
    ) -> list[Pick]:
        """Up to ``k`` picks, best first (for an unknown user, popular items only). Never an item
        of ``exclude``; with ``new_only``, never an item the user bought."""
        h = self.history_
        row = h.row(user)
        mine = slice(h.indptr[row], h.indptr[row + 1]) if row >= 0 else slice(0, 0)
        own = h.indices[mine]
        rebuy = "buy_again" in self.sources and not new_only
        near = self._similar(own, mine) if "similar" in self.sources else _Near.none()
        banned = h.item_rows(list(exclude))
        parts = [own if rebuy else own[:0], near.items]
        if "popular" in self.sources:
            # Enough of the most popular items that k of them are neither banned nor owned: any
            # item further down scores less than each of those.
            parts.append(self.popular_[: k + len(banned) + len(own)])
        items = np.unique(np.concatenate(parts))
        items = items[~np.isin(items, np.concatenate([banned, own]) if new_only else banned)]

        popular = self._popular_scaled[items]
        owned, at_own = _positions(own, items) if rebuy else (_EMPTY, _EMPTY)
        scores = np.zeros(len(items))
        if "popular" in self.sources:
            scores += self.popular_weight * popular
            scores[owned] = 0.0
        close, at_near = _positions(near.items, items)
        scores[close] += self.similar_weight * near.scores[at_near]
        if rebuy and len(own):
            scores[owned] += self._buy_again(mine, now)[at_own] + self.trend_weight * popular[owned]

        best = np.argpartition(-scores, k - 1)[:k] if len(items) > k else np.arange(len(items))
        order = best[np.lexsort((items[best], -scores[best]))]
        own_at, near_at = np.full(len(items), -1), np.full(len(items), -1)
        own_at[owned] = at_own
        near_at[close] = at_near
        picks = []
        for i in order[scores[order] > 0]:
            name, score = str(h.items[items[i]]), float(scores[i])
            if own_at[i] >= 0:
                cycle = float(h.cycle_days[mine][own_at[i]])
                picks.append(Pick(name, score, "buy_again", cycle_days=None if np.isnan(cycle) else cycle))
            elif near_at[i] >= 0 and 2 * self.similar_weight * near.scores[near_at[i]] > score:
                picks.append(Pick(name, score, "similar", because=str(h.items[near.because(near_at[i])])))
            else:
                picks.append(Pick(name, score, "popular"))
        return picks

    def _buy_again(self, mine: slice, now: datetime | pd.Timestamp) -> np.ndarray:
        scores, _, _ = member_due(self.history_, mine, now, due_width=self.due_width, due_weight=self.due_weight)
        return scores / max(scores.max(), 1e-300)

    def _similar(self, own: np.ndarray, mine: slice) -> _Near:
        """Items near the user's, each scored by its summed similarity to the user's items
        (weighted by recency, as in the fit), scaled to the best."""
        s = self.similarity_
        starts = s.indptr[own]
        lengths = s.indptr[own + 1] - starts
        total = int(lengths.sum())
        if total == 0:
            return _Near.none()
        offsets = np.repeat(starts - np.cumsum(lengths) + lengths, lengths) + np.arange(total)
        weight = self._recency(self.history_.last_day[mine], self.half_life_days)
        contribution = s.data[offsets] * np.repeat(weight, lengths)
        items, which = np.unique(s.indices[offsets], return_inverse=True)
        scores = np.bincount(which, weights=contribution)
        return _Near(items, scores / scores.max(), np.repeat(own, lengths), contribution, which)

    def to_bytes(self) -> bytes:
        """The fitted model as a compressed ``.npz``: numeric and fixed-width string arrays, the
        parameters as JSON. No pickle, so loading bytes from the database runs no code."""
        arrays = {f"history_{name}": value for name, value in self.history_.arrays().items()}
        arrays |= {
            "similarity_data": self.similarity_.data,
            "similarity_indices": self.similarity_.indices,
            "similarity_indptr": self.similarity_.indptr,
            "popularity": self.popularity_,
            "meta": np.array(json.dumps({"format": FORMAT, "params": self.get_params(), "now": self.now_})),
        }
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **arrays)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Recommender:
        with np.load(io.BytesIO(data), allow_pickle=False) as stored:
            meta = json.loads(str(stored["meta"]))
            if meta.get("format") != FORMAT:
                raise ValueError(f"stored recommender has format {meta.get('format')}, this code reads {FORMAT}")
            model = cls(**{**meta["params"], "sources": tuple(meta["params"]["sources"])})
            prefix = "history_"
            model.history_ = PurchaseHistory.from_arrays(
                {name[len(prefix) :]: stored[name] for name in stored.files if name.startswith(prefix)}
            )
            n = len(model.history_.items)
            model.similarity_ = sparse.csr_matrix(
                (stored["similarity_data"], stored["similarity_indices"], stored["similarity_indptr"]), shape=(n, n)
            )
            model.popularity_ = stored["popularity"]
        model.now_ = float(meta["now"])
        model._index_popular()
        return model


_PARAMS = (
    "k",
    "weighting",
    "half_life_days",
    "popular_half_life_days",
    "due_width",
    "due_weight",
    "similar_weight",
    "popular_weight",
    "trend_weight",
    "block_size",
)


_EMPTY = np.empty(0, dtype=np.int64)


@dataclass(frozen=True)
class _Near:
    """The items similar to a user's, with every (source item, candidate, contribution) kept
    to name the purchase that most supports a pick."""

    items: np.ndarray
    scores: np.ndarray
    sources: np.ndarray
    contributions: np.ndarray
    which: np.ndarray

    @classmethod
    def none(cls) -> _Near:
        return cls(_EMPTY, np.empty(0), _EMPTY, np.empty(0), _EMPTY)

    def because(self, at: int) -> int:
        """The user's item that contributes most to ``items[at]``."""
        support = self.which == at
        return int(self.sources[support][np.argmax(self.contributions[support])])


def _positions(sorted_values: np.ndarray, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where in ``items`` the values of ``sorted_values`` are, and their index there."""
    if len(sorted_values) == 0:
        return _EMPTY, _EMPTY
    at = np.searchsorted(sorted_values, items).clip(max=len(sorted_values) - 1)
    found = sorted_values[at] == items
    return np.flatnonzero(found), at[found]
