"""The offline evaluation on a four-member example small enough to score by hand."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from loyalty_plugin.recommend.blend import Recommender
from loyalty_plugin.recommend.evaluate import evaluate, ranking_metrics

CUTOFF = pd.Timestamp("2026-03-01")


def purchases(rows: list[tuple[str, str, int]]) -> pd.DataFrame:
    return pd.DataFrame([{"user": u, "item": i, "at": CUTOFF + pd.Timedelta(days=d)} for u, i, d in rows])


# Before the cut-off: a has 4 buyers, b 2, c 1, d 1, so popularity ranks a, b, c (then d).
# After it: u1 buys c and e (e is not in the catalog), u2 buys a and d, u4 re-buys a;
# u3 buys nothing more and is not scored; u5 buys after the test weeks and is not scored either.
DATA = purchases(
    [
        ("u1", "a", -30),
        ("u1", "b", -20),
        ("u2", "a", -25),
        ("u2", "c", -3),
        ("u3", "a", -9),
        ("u3", "b", -8),
        ("u3", "d", -7),
        ("u4", "a", -40),
        ("u5", "a", -5),
        ("u1", "c", 3),
        ("u1", "e", 10),
        ("u2", "a", 1),
        ("u2", "d", 2),
        ("u4", "a", 20),
        ("u5", "b", 120),
    ]
)


def dcg(hits_at: list[int]) -> float:
    return sum(1 / math.log2(rank + 1) for rank in hits_at)


def test_popularity_is_scored_as_worked_out_by_hand():
    model = Recommender(popular_half_life_days=None, sources=("popular",))
    result = evaluate(DATA, cutoff=CUTOFF, weeks=4, k=3, models={"popularity": model})
    table = result.table

    # All items: everyone is shown a, b, c.
    # u1 (truth c, e): c at rank 3. u2 (truth a, d): a at rank 1. u4 (truth a): a at rank 1.
    ideal_two = dcg([1, 2])
    expected_all = {
        "users": 3,
        "precision": (1 / 3 + 1 / 3 + 1 / 3) / 3,
        "recall": (1 / 2 + 1 / 2 + 1) / 3,
        "ndcg": (dcg([3]) / ideal_two + dcg([1]) / ideal_two + 1.0) / 3,
        "hit_rate": 1.0,
        "coverage": 3 / 4,
    }
    # New items: past items are left out of candidates and truth, so u1 is shown c, d and
    # u2 is shown b, d. u1 (new truth c, e): c at rank 1. u2 (new truth d): d at rank 2.
    # u4 bought nothing new and is not scored.
    expected_new = {
        "users": 2,
        "precision": (1 / 3 + 1 / 3) / 2,
        "recall": (1 / 2 + 1) / 2,
        "ndcg": (dcg([1]) / ideal_two + dcg([2]) / dcg([1])) / 2,
        "hit_rate": 1.0,
        "coverage": 3 / 4,
    }
    for target, expected in (("all", expected_all), ("new", expected_new)):
        row = table.loc[(target, "popularity")]
        for metric, value in expected.items():
            assert row[metric] == pytest.approx(value), (target, metric)
    assert result.ndcg("all", "popularity") == pytest.approx(expected_all["ndcg"])


def test_ranking_metrics_of_a_miss_and_of_a_perfect_list():
    assert ranking_metrics(["x", "y"], {"z"}, 2) == (0.0, 0.0, 0.0, 0.0)
    assert ranking_metrics(["x", "y"], {"x", "y"}, 2) == pytest.approx((1.0, 1.0, 1.0, 1.0))
    # More relevant items than slots: the ideal list is full, recall counts all of them.
    precision, recall, ndcg, hit = ranking_metrics(["x", "n"], {"x", "y", "z"}, 2)
    assert (precision, recall, hit) == pytest.approx((0.5, 1 / 3, 1.0))
    assert ndcg == pytest.approx(1 / (1 + 1 / math.log2(3)))


def test_buy_again_ranks_recent_purchases_first_and_finds_nothing_new():
    model = Recommender(half_life_days=90.0, trend_weight=0.0, sources=("buy_again",))
    table = evaluate(DATA, cutoff=CUTOFF, weeks=4, k=3, models={"buy_again": model}).table
    assert table.loc[("new", "buy_again"), "ndcg"] == 0.0
    # Each past item was bought once, so the more recent comes first.
    # u1 is shown b, a (bought c, e): no hit. u2 is shown c, a (bought a, d): a at rank 2.
    # u4 is shown a and re-buys it.
    expected = (0.0 + dcg([2]) / dcg([1, 2]) + 1.0) / 3
    assert table.loc[("all", "buy_again"), "ndcg"] == pytest.approx(expected)


def test_progress_is_reported_up_to_the_total():
    seen = []
    evaluate(
        DATA,
        cutoff=CUTOFF,
        weeks=4,
        k=3,
        models={"p": Recommender(sources=("popular",))},
        progress=lambda done, total: seen.append((done, total)),
    )
    assert seen[-1] == (6, 6) and [d for d, _ in seen] == list(range(1, 7))


def test_purchases_without_a_time_are_refused():
    with pytest.raises(ValueError, match=r"lacks column.*at"):
        evaluate(DATA.drop(columns="at"), cutoff=CUTOFF)
