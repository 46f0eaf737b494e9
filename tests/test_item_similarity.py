"""The item-item similarity model on generated purchases: it finds planted co-purchase
structure, keeps only the top k per item, and does not depend on how it is blocked."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

from loyalty_plugin.recommend.similarity import ItemSimilarity


def planted(seed: int = 3, users: int = 600, groups: int = 6, per_group: int = 8) -> sparse.csr_matrix:
    """Each user buys 3-5 items of one group and, rarely, one item at random."""
    rng = np.random.default_rng(seed)
    n_items = groups * per_group
    rows, cols = [], []
    for user in range(users):
        group = rng.integers(groups)
        bought = rng.choice(per_group, size=rng.integers(3, 6), replace=False) + group * per_group
        if rng.random() < 0.2:
            bought = np.append(bought, rng.integers(n_items))
        rows += [user] * len(bought)
        cols += list(bought)
    return sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(users, n_items))


@pytest.mark.parametrize("weighting", ["cosine", "tfidf", "bm25"])
def test_the_model_finds_the_items_bought_together(weighting):
    model = ItemSimilarity(k=7, weighting=weighting).fit(planted())
    for item in range(48):
        neighbours, scores = model.similar_items(item, n=7)
        assert {n // 8 for n in neighbours} == {item // 8}, (item, neighbours)
        assert list(scores) == sorted(scores, reverse=True)


def test_each_item_keeps_at_most_k_neighbours_and_never_itself():
    model = ItemSimilarity(k=5).fit(planted())
    counts = np.diff(model.similarity_.indptr)
    assert counts.max() == 5
    assert model.similarity_.diagonal().sum() == 0


def test_cosine_matches_the_dense_computation():
    rng = np.random.default_rng(8)
    dense = (rng.random((50, 30)) < 0.2) * rng.integers(1, 4, size=(50, 30))
    model = ItemSimilarity(k=30).fit(sparse.csr_matrix(dense))
    norms = np.linalg.norm(dense, axis=0)
    expected = (dense.T @ dense) / np.outer(norms, norms).clip(min=1e-12)
    np.fill_diagonal(expected, 0)
    assert np.allclose(model.similarity_.toarray(), expected, atol=1e-5)


def test_the_result_does_not_depend_on_the_block_size():
    data = planted(seed=11)
    whole = ItemSimilarity(k=6, block_size=10_000).fit(data).similarity_
    for block in (1, 7, 13):
        assert (abs(ItemSimilarity(k=6, block_size=block).fit(data).similarity_ - whole) > 1e-6).nnz == 0


def test_scores_rank_the_group_of_what_a_user_bought_first():
    data = planted(seed=5)
    model = ItemSimilarity(k=10).fit(data)
    basket = sparse.csr_matrix(([1.0, 1.0], ([0, 0], [17, 19])), shape=(1, 48))
    scores = model.scores(basket)[0]
    top = np.argsort(-scores)[:6]
    assert {item // 8 for item in top} == {2}


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError, match="at least 1"):
        ItemSimilarity(k=0).fit(planted())
