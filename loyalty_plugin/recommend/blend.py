""""Recommended for you": the member's own re-buys (buy it again, due ones raised) blended with
items similar to what they bought, topped up with popular items, each pick with its reason.

Buy-again wins by far when re-buys count and cannot suggest anything new; item similarity is
the model for items new to the member. One score blends them: the member's own items by their
buy-again score, every candidate by its similarity to the member's history (both scaled to the
member's best), the similarity part weighted by ``similar_weight``. The fitted model is flat
arrays, stored without pickle (``to_bytes``) so that every worker can load the same version
from the database.
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

from .buy_again import due_scores
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

    ``sources`` picks the parts of the blend (the evaluation compares each alone); ``half_life_days``
    makes older purchase days count less in every part; ``due_width`` and ``due_weight`` are
    buy-again's (see ``due_scores``); ``k``, ``weighting`` and ``block_size`` are
    ``ItemSimilarity``'s.
    """

    def __init__(
        self,
        *,
        k: int = 50,
        weighting: Weighting = "cosine",
        half_life_days: float | None = 90.0,
        due_width: float = 0.5,
        due_weight: float = 1.0,
        similar_weight: float = 0.5,
        sources: Sequence[Reason] = SOURCES,
        block_size: int = 2000,
    ) -> None:
        self.k = k
        self.weighting = weighting
        self.half_life_days = half_life_days
        self.due_width = due_width
        self.due_weight = due_weight
        self.similar_weight = similar_weight
        self.sources = sources
        self.block_size = block_size

    def get_params(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "weighting": self.weighting,
            "half_life_days": self.half_life_days,
            "due_width": self.due_width,
            "due_weight": self.due_weight,
            "similar_weight": self.similar_weight,
            "sources": list(self.sources),
            "block_size": self.block_size,
        }

    def fit(self, purchases: pd.DataFrame, *, now: datetime | pd.Timestamp) -> Recommender:
        """``purchases``: columns user (str), item (str), at (datetime64), optional quantity."""
        unknown = set(self.sources) - set(SOURCES)
        if unknown or not self.sources:
            raise ValueError(f"sources must be a non-empty subset of {', '.join(SOURCES)}; got {list(self.sources)}")
        check_purchases(purchases)
        self.now_ = day_number(now)
        self.history_ = purchase_history(purchases, now=now, half_life_days=self.half_life_days)
        matrix = self.history_.matrix()
        similarity = ItemSimilarity(self.k, weighting=self.weighting, block_size=self.block_size)
        self.similarity_: sparse.csr_matrix = similarity.fit(matrix).similarity_
        # Buyers, each counted by how recently they last bought the item.
        recency = decay(self.now_ - self.history_.last_day, self.half_life_days)
        self.popularity_ = np.bincount(self.history_.indices, weights=recency, minlength=len(self.history_.items))
        self._index_popular()
        return self

    def _index_popular(self) -> None:
        self.popular_ = np.argsort(-self.popularity_, kind="stable").astype(np.int32)
        self._top_popularity = float(self.popularity_.max()) if len(self.popularity_) else 1.0

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
        """Up to ``k`` picks, best first: the blend, then popular items to fill the list (for an
        unknown user, popular items only). Never an item of ``exclude``; with ``new_only``, never
        an item the user bought."""
        h = self.history_
        banned = h.item_rows(list(exclude))
        row = h.row(user)
        own = h.indices[h.indptr[row] : h.indptr[row + 1]] if row >= 0 else h.indices[:0]
        picks = self._personal(row, own, k, day_number(now), banned, new_only) if row >= 0 else []
        if len(picks) < k and "popular" in self.sources:
            taken = np.concatenate([banned, own, h.item_rows([p.item for p in picks])])
            head = self.popular_[: k - len(picks) + len(taken)]
            head = head[~np.isin(head, taken)][: k - len(picks)]
            picks += [
                Pick(str(h.items[i]), float(self.popularity_[i]) / self._top_popularity, "popular") for i in head
            ]
        return picks

    def _personal(
        self, row: int, own: np.ndarray, k: int, now_day: float, banned: np.ndarray, new_only: bool
    ) -> list[Pick]:
        h = self.history_
        mine = slice(h.indptr[row], h.indptr[row + 1])
        weight = h.weight[mine].astype(np.float64)
        with_buy_again = "buy_again" in self.sources and not new_only
        items = own[:0]
        scores = np.empty(0)
        if with_buy_again:
            cycle = h.cycle_days[mine].astype(np.float64)
            since = now_day - h.last_day[mine]
            scores = due_scores(weight, cycle, since, due_width=self.due_width, due_weight=self.due_weight)
            scores = scores / scores.max()
            items = own
        if "similar" in self.sources:
            candidates, similar, source, contribution, which = self._similar(own, weight)
            at = np.searchsorted(candidates, own).clip(max=max(len(candidates) - 1, 0))
            owned = (candidates[at] == own) if len(candidates) else np.zeros(len(own), dtype=bool)
            if with_buy_again:
                scores[owned] += self.similar_weight * similar[at[owned]]
            fresh = np.ones(len(candidates), dtype=bool)
            if with_buy_again or new_only:
                fresh[at[owned]] = False
            items = np.concatenate([items, candidates[fresh]])
            scores = np.concatenate([scores, self.similar_weight * similar[fresh]])
        keep = ~np.isin(items, banned) & (scores > 0)
        items, scores = items[keep], scores[keep]
        order = np.lexsort((items, -scores))[:k]
        picks = []
        for i in order:
            item = items[i]
            position = np.searchsorted(own, item)
            if with_buy_again and position < len(own) and own[position] == item:
                cycle_days = float(h.cycle_days[mine][position])
                picks.append(
                    Pick(str(h.items[item]), float(scores[i]), "buy_again", cycle_days=_known(cycle_days))
                )
            else:
                support = which == np.searchsorted(candidates, item)
                best = source[support][np.argmax(contribution[support])]
                picks.append(Pick(str(h.items[item]), float(scores[i]), "similar", because=str(h.items[best])))
        return picks

    def _similar(
        self, own: np.ndarray, weight: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Items near the user's, each scored by its summed similarity to the user's items
        (weighted as in the fit), scaled to the best; with each contribution, its source item
        and candidate, for the "because"."""
        s = self.similarity_
        starts = s.indptr[own]
        lengths = s.indptr[own + 1] - starts
        total = int(lengths.sum())
        if total == 0:
            empty = np.empty(0, dtype=np.int64)
            return empty, np.empty(0), empty, np.empty(0), empty
        offsets = np.repeat(starts - np.cumsum(lengths) + lengths, lengths) + np.arange(total)
        contribution = s.data[offsets] * np.repeat(weight, lengths)
        candidates, which = np.unique(s.indices[offsets], return_inverse=True)
        similar = np.bincount(which, weights=contribution)
        return candidates, similar / similar.max(), np.repeat(own, lengths), contribution, which

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


def _known(cycle_days: float) -> float | None:
    return None if np.isnan(cycle_days) else cycle_days
