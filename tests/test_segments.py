"""RFM scores and their named grid; K-means value segments. Pure pandas/scikit-learn: no app, no DB."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score
from threadpoolctl import threadpool_limits

from loyalty_plugin.analytics.segments import (
    DEFAULT_RFM_GRID,
    ValueSegments,
    name_segments,
    rfm_scores,
    validate_grid,
)

NOW = datetime(2026, 3, 1, 12, 0)


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    """These fits are small: K-means's OpenMP threads only add start-up and, on a busy machine,
    contention that made them ten times slower."""
    with threadpool_limits(1):
        yield


def orders(rows: list[tuple[str, float, float]]) -> pd.DataFrame:
    """(customer, days before NOW, amount) -> a transactions frame."""
    return pd.DataFrame(
        {
            "customer": [c for c, _, _ in rows],
            "at": [NOW - timedelta(days=d) for _, d, _ in rows],
            "amount": [a for _, _, a in rows],
        }
    )


def ten_customers() -> pd.DataFrame:
    """c0..c9: c0 bought most recently, c9 longest ago; ci has i + 1 orders of 10 each."""
    rows = []
    for i in range(10):
        last = 5 + 30 * i
        rows += [(f"c{i}", last + 2 * k, 10.0) for k in range(i + 1)]
    return orders(rows)


def test_rfm_quintiles_rank_recency_frequency_and_spend():
    scores = rfm_scores(ten_customers(), now=NOW)
    assert list(scores.index) == [f"c{i}" for i in range(10)]
    assert scores.loc["c0", "recency_days"] == 5
    assert list(scores["frequency"]) == list(range(1, 11))
    # Ten distinct values: two customers per fifth; R5 = the most recent, F5 = the most orders.
    assert list(scores["r"]) == [5, 5, 4, 4, 3, 3, 2, 2, 1, 1]
    assert list(scores["f"]) == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert list(scores["m"]) == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]


def test_equal_values_get_equal_scores_and_one_order_customers_stay_f1():
    # Six of ten customers bought once: they are all F1, not split 3/3 between F1 and F2, and not
    # lifted to F2 as averaged ranks would.
    rows = [(f"one{i}", 10 + i, 20.0) for i in range(6)]
    rows += [(f"many{i}", d, 20.0) for i in range(4) for d in range(1, i + 3)]
    scores = rfm_scores(orders(rows), now=NOW)
    assert set(scores.loc[[f"one{i}" for i in range(6)], "f"]) == {1}
    assert scores.loc["many3", "f"] == 5
    rows = [("a", 1.1, 5.0), ("b", 1.3, 5.0)] + [(f"c{i}", 40 + i, 5.0) for i in range(8)]
    same_day = rfm_scores(orders(rows), now=NOW)
    assert same_day.loc["a", "r"] == same_day.loc["b", "r"] == 5  # same day: a tie, whatever the hour


def test_only_orders_in_the_window_count():
    scores = rfm_scores(orders([("a", 10, 5.0), ("a", 400, 500.0), ("b", 500, 5.0)]), now=NOW, window_days=365)
    assert list(scores.index) == ["a"]
    assert scores.loc["a", "frequency"] == 1
    assert scores.loc["a", "monetary"] == 5.0
    assert rfm_scores(orders([("a", 400, 5.0)]), now=NOW).empty


def test_named_segments_on_constructed_customers():
    rows = [("champion", d, 30.0) for d in (1, 8, 15, 22, 29, 36, 43)]  # yesterday, and often
    rows += [("sleeper", 330, 15.0)]  # once, long ago
    rows += [("newcomer", 2, 25.0)]  # once, just now
    rows += [("cant_lose", d, 40.0) for d in (250, 260, 270, 280, 290, 300, 310, 320)]
    rows += [(f"filler{i}", 60 + 20 * i, 10.0) for i in range(8)]
    rows += [(f"filler{i}", 62 + 20 * i, 10.0) for i in range(4)]
    scores = rfm_scores(orders(rows), now=NOW)
    segments = name_segments(scores)
    assert segments["champion"] == "Champions"
    assert segments["sleeper"] == "Hibernating"
    assert segments["newcomer"] == "New"
    assert segments["cant_lose"] == "Can't lose"
    assert segments.name == "segment"
    assert segments.index.equals(scores.index)


def test_default_grid_covers_every_cell_once():
    cells = [
        (r, f)
        for seg in DEFAULT_RFM_GRID
        for r in range(seg["r"][0], seg["r"][1] + 1)
        for f in range(seg["f"][0], seg["f"][1] + 1)
    ]
    assert len(cells) == 25
    assert set(cells) == {(r, f) for r in range(1, 6) for f in range(1, 6)}
    assert validate_grid(DEFAULT_RFM_GRID) == DEFAULT_RFM_GRID


def test_a_grid_with_a_gap_or_an_overlap_is_refused_by_name():
    gap = [seg for seg in DEFAULT_RFM_GRID if seg["name"] != "Need attention"]
    with pytest.raises(ValueError, match="R3 F3"):
        validate_grid(gap)
    overlap = copy.deepcopy(DEFAULT_RFM_GRID)
    overlap[1]["f"] = [3, 5]  # Loyal now also claims R3-4 F3
    with pytest.raises(ValueError, match="R4 F3 is already in 'Loyal'"):
        validate_grid(overlap)
    scores = rfm_scores(ten_customers(), now=NOW)
    with pytest.raises(ValueError, match="R3 F3"):
        name_segments(scores, gap)


def test_a_replacement_grid_from_a_setting_is_used():
    grid = [
        {"name": "Active", "r": [3, 5], "f": [1, 5]},
        {"name": "Lapsing", "r": [1, 2], "f": [1, 5]},
    ]
    segments = name_segments(rfm_scores(ten_customers(), now=NOW), grid)
    assert list(segments) == ["Active"] * 6 + ["Lapsing"] * 4


def blobs(seed: int = 1, n: int = 150) -> tuple[pd.DataFrame, np.ndarray]:
    """Three well-separated groups of members: heavy recent spenders, regulars, one-off lapsers."""
    rng = np.random.default_rng(seed)
    groups = [
        # (recency days, orders, spend)
        (5, 40, 4000),
        (60, 6, 300),
        (300, 1, 20),
    ]
    frames, truth = [], []
    for label, (recency, frequency, monetary) in enumerate(groups):
        frames.append(
            pd.DataFrame(
                {
                    "recency_days": recency * rng.uniform(0.9, 1.1, n),
                    "frequency": np.round(frequency * rng.uniform(0.9, 1.1, n)),
                    "monetary": monetary * rng.uniform(0.9, 1.1, n),
                }
            )
        )
        truth += [label] * n
    features = pd.concat(frames, ignore_index=True)
    features.index = [f"m{i}" for i in range(len(features))]
    return features, np.array(truth)


@pytest.fixture(scope="module")
def fitted() -> tuple[ValueSegments, pd.DataFrame, np.ndarray]:
    features, truth = blobs()
    return ValueSegments(sample_size=200).fit(features), features, truth  # silhouette on a sample, as at scale


def test_kmeans_recovers_separated_clusters_and_their_k(fitted: tuple[ValueSegments, pd.DataFrame, np.ndarray]):
    model, features, truth = fitted
    assert model.k_ == 3
    assert sorted(model.silhouette_) == list(range(2, 9))
    assert model.silhouette_[3] == max(model.silhouette_.values())
    assert adjusted_rand_score(truth, model.labels_) == 1.0
    assert model.reason_ is None
    again = ValueSegments(k_range=range(2, 5), sample_size=200).fit(features)
    assert again.silhouette_ == {k: model.silhouette_[k] for k in range(2, 5)}  # deterministic


def test_segments_are_named_by_value_highest_first(fitted: tuple[ValueSegments, pd.DataFrame, np.ndarray]):
    model, features, truth = fitted
    names = model.predict(features)
    assert set(names[truth == 0]) == {"High value"}
    assert set(names[truth == 1]) == {"Mid value"}
    assert set(names[truth == 2]) == {"Low value"}
    assert list(model.centers_.index) == ["High value", "Mid value", "Low value"]
    assert list(model.centers_["members"]) == [150, 150, 150]
    assert model.centers_["monetary"].is_monotonic_decreasing
    newcomer = pd.DataFrame({"recency_days": [4.0], "frequency": [42.0], "monetary": [4100.0]}, index=["x"])
    assert model.predict(newcomer).loc["x"] == "High value"


def test_clv_when_given_decides_the_value_rank():
    features, truth = blobs()
    # The lapsed one-off buyers are given the highest predicted value: the names follow CLV.
    features["clv"] = np.select([truth == 0, truth == 1], [100.0, 10.0], 1000.0)
    model = ValueSegments(k_range=range(2, 5)).fit(features)
    assert model.value_column_ == "clv"
    assert set(model.predict(features)[truth == 2]) == {"High value"}
    # An all-NaN CLV (degenerate value models) is left out, not fed to K-means.
    features["clv"] = np.nan
    model = ValueSegments(k_range=range(2, 5)).fit(features)
    assert model.columns_ == ["recency_days", "frequency", "monetary"]
    assert model.value_column_ == "monetary"


@pytest.mark.parametrize("n", [0, 1, 2])
def test_too_few_members_give_one_segment_with_a_reason(n: int):
    features = blobs()[0].iloc[:n]
    model = ValueSegments().fit(features)
    assert model.k_ == 1
    assert model.silhouette_ == {}
    assert "too few" in model.reason_
    assert list(model.predict(features)) == ["All members"] * n


def test_identical_members_cannot_be_split():
    features = pd.DataFrame({"recency_days": [3.0] * 5, "frequency": [2.0] * 5, "monetary": [9.0] * 5})
    model = ValueSegments().fit(features)
    assert model.k_ == 1
    assert "1 distinct" in model.reason_


def test_value_segments_need_a_value_column():
    with pytest.raises(ValueError, match="monetary"):
        ValueSegments().fit(pd.DataFrame({"recency_days": [1.0, 2.0, 3.0]}))
