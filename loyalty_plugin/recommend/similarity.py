"""Item-item similarity over the member x item purchase matrix, kept sparse.

``fit`` takes a users x items matrix (purchase counts, or weights that favour recent
purchases) and keeps, for every item, its ``k`` most similar items. The Gram matrix
``X.T @ X`` is computed ``block_size`` items at a time, so memory is bounded by one block of
it, and each row's top ``k`` is taken with ``argpartition`` on that row's own non-zeros (a
per-row loop over the rows with more than ``k``: a vectorised lexsort over the whole block
measured 90x slower).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy import sparse

Weighting = Literal["cosine", "tfidf", "bm25"]


def _weighted(items_by_users: sparse.csr_matrix, weighting: Weighting, k1: float, b: float) -> sparse.csr_matrix:
    """Re-weight an items x users matrix before the cosine: TF-IDF or BM25 damp heavy buyers
    (a customer who buys everything says little about which items go together)."""
    if weighting == "cosine":
        return items_by_users
    matrix = items_by_users.tocoo(copy=True)
    n_items = matrix.shape[0]
    items_per_user = np.bincount(matrix.col, minlength=matrix.shape[1])
    idf = np.log(n_items / (1.0 + items_per_user)).astype(np.float32)
    idf = np.maximum(idf, 0.0)
    if weighting == "tfidf":
        matrix.data = np.sqrt(matrix.data).astype(np.float32) * idf[matrix.col]
    else:
        length = np.asarray(matrix.sum(axis=0)).ravel()
        norm = (1.0 - b + b * length / max(length.mean(), 1e-12)).astype(np.float32)
        data = matrix.data.astype(np.float32)
        matrix.data = data * (k1 + 1.0) / (k1 * norm[matrix.col] + data) * idf[matrix.col]
    return matrix.tocsr()


class ItemSimilarity:
    """``similarity_``: items x items CSR, at most ``k`` entries per row, none on the diagonal."""

    def __init__(
        self,
        k: int = 50,
        *,
        weighting: Weighting = "cosine",
        block_size: int = 2000,
        bm25_k1: float = 1.2,
        bm25_b: float = 0.75,
    ) -> None:
        self.k = k
        self.weighting = weighting
        self.block_size = block_size
        self.bm25_k1 = bm25_k1
        self.bm25_b = bm25_b

    def fit(self, user_items: sparse.spmatrix) -> ItemSimilarity:
        if self.k < 1 or self.block_size < 1:
            raise ValueError("k and block_size must be at least 1")
        items = sparse.csr_matrix(user_items, dtype=np.float32).T.tocsr()
        items = _weighted(items, self.weighting, self.bm25_k1, self.bm25_b)
        norms = np.sqrt(np.asarray(items.multiply(items).sum(axis=1)).ravel())
        items = sparse.diags(np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)) @ items
        users = items.T.tocsc()
        n = items.shape[0]
        rows: list[np.ndarray] = []
        cols: list[np.ndarray] = []
        vals: list[np.ndarray] = []
        for start in range(0, n, self.block_size):
            block = (items[start : start + self.block_size] @ users).tocsr()
            row = np.repeat(np.arange(block.shape[0]), np.diff(block.indptr))
            keep = block.indices != row + start
            index, value, row = block.indices[keep], block.data[keep], row[keep]
            per_row = np.bincount(row, minlength=block.shape[0])
            # Rows with k neighbours or fewer are kept whole in one step; only the others loop.
            whole = per_row[row] <= self.k
            rows.append(row[whole] + start)
            cols.append(index[whole])
            vals.append(value[whole])
            bounds = np.concatenate(([0], np.cumsum(per_row)))
            for offset in np.flatnonzero(per_row > self.k):
                lo, hi = bounds[offset], bounds[offset + 1]
                top = lo + np.argpartition(-value[lo:hi], self.k - 1)[: self.k]
                rows.append(np.full(self.k, start + offset))
                cols.append(index[top])
                vals.append(value[top])
        self.similarity_ = sparse.csr_matrix(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n), dtype=np.float32
        )
        self.similarity_.eliminate_zeros()
        return self

    def similar_items(self, item: int, n: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """The ``n`` items most like ``item``, best first, with their similarity."""
        row = self.similarity_.getrow(item)
        order = np.argsort(-row.data, kind="stable")[:n]
        return row.indices[order], row.data[order]

    def scores(self, user_items: sparse.spmatrix) -> np.ndarray:
        """Each item's score for the users whose purchases are the rows of ``user_items``:
        the sum of its similarities to what they bought."""
        return np.asarray((sparse.csr_matrix(user_items, dtype=np.float32) @ self.similarity_.T).todense())
