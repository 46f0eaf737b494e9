"""The churn classifier: features and labels on a time split, the model, its evaluation against the
baselines, the nightly scoring and its fallbacks. Pure pandas/scikit-learn: no app, no DB."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal
from threadpoolctl import threadpool_limits

from loyalty_plugin.analytics.churn import (
    ChurnModel,
    churn_features,
    churn_labels,
    evaluate_split,
    score_members,
)
from loyalty_plugin.demo import demo_catalog
from loyalty_plugin.demo.planner import Planner

NOW = datetime(2026, 1, 1)
DAY = timedelta(days=1)
SCORE_COLUMNS = [
    "churn_risk",
    "risk_source",
    "p_alive",
    "expected_purchases",
    "expected_spend",
    "clv",
    "recency_days",
    "frequency",
    "monetary",
]


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    """These fits are small: HistGradientBoosting's OpenMP threads only add start-up and, on a busy machine,
    contention that made them ten times slower."""
    with threadpool_limits(1):
        yield


def demo_orders(customers: int, seed: int, start: datetime, end: datetime) -> pd.DataFrame:
    """The demo shop's orders as seed-demo plans them (refunds aside), priced from the catalog."""
    catalog = demo_catalog()
    price = {item.sku: float(item.price) for item in catalog}
    planner = Planner(np.random.default_rng(seed), catalog, start, end)
    rows = [
        (person.user_id, at, sum(price[sku] * qty for sku, qty in lines.items()))
        for person in planner.customers(customers)
        for at, lines in planner.orders_of(person)
    ]
    return pd.DataFrame(rows, columns=["customer", "at", "amount"])


@pytest.fixture(scope="module")
def demo() -> pd.DataFrame:
    """Two years of a 3,000-customer demo shop up to NOW."""
    return demo_orders(3000, seed=1, start=NOW - 730 * DAY, end=NOW)


def frame(rows: list[tuple[str, float, float]], cutoff: datetime = NOW) -> pd.DataFrame:
    """(customer, days after ``cutoff`` (negative: before), amount) -> transactions."""
    return pd.DataFrame(
        {
            "customer": [c for c, _, _ in rows],
            "at": pd.to_datetime([cutoff + d * DAY for _, d, _ in rows]),
            "amount": [a for _, _, a in rows],
        }
    )


def poisson_orders(customers: int, every_days: float, *, seed: int = 0, span: int = 720) -> pd.DataFrame:
    """Customers who buy at random at one rate and never leave: no dropout to find."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(customers):
        t = rng.uniform(0, 60)
        while t < span:
            rows.append((f"p{i:04d}", t - span, 20.0))
            t += rng.exponential(every_days)
    return frame(rows)


def bgnbd_orders(customers: int, *, days: float, seed: int) -> pd.DataFrame:
    """The BG/NBD's own story: gamma-distributed rates, a beta-distributed chance of leaving after
    each purchase, first purchases spread over the last ``days``."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(customers):
        rate, leave = rng.gamma(2.0, 1 / 20), rng.beta(2, 6)
        t = rng.uniform(0, days)
        while t < days:
            rows.append((f"b{i:04d}", t - days, 10.0 + 20 * rng.random()))
            if rng.random() < leave:
                break
            t += rng.exponential(1 / rate)
    return frame(rows)


def test_labels_mark_who_bought_nothing_in_the_horizon():
    tx = frame(
        [
            ("back", -10, 5.0),
            ("back", 5, 5.0),
            ("gone", -10, 5.0),
            ("gone", 31, 5.0),  # after the horizon: still churned
            ("edge", -1, 5.0),
            ("edge", 30, 5.0),  # the horizon's last moment counts
            ("at_cutoff", 0, 5.0),  # the cutoff's own moment is history
            ("newcomer", 3, 5.0),  # no history at the cutoff: not labelled
        ]
    )
    labels = churn_labels(tx, cutoff=NOW, horizon_days=30)
    assert labels.to_dict() == {"at_cutoff": 1, "back": 0, "edge": 0, "gone": 1}
    assert labels.name == "churned"


def test_features_see_nothing_after_the_cutoff(demo: pd.DataFrame):
    cutoff = NOW - 180 * DAY
    features = churn_features(demo, cutoff=cutoff)
    assert_frame_equal(features, churn_features(demo[demo["at"] <= cutoff], cutoff=cutoff))
    assert features.index.equals(churn_labels(demo, cutoff=cutoff, horizon_days=90).index)
    assert features[["p_alive", "expected_purchases", "p_no_purchase"]].notna().all().all()
    assert features["p_alive"].between(0, 1).all()
    assert (features["expected_purchases"] >= 0).all()


def test_rhythm_and_trend_features():
    tx = frame(
        [
            ("regular", -100, 10.0),
            ("regular", -90, 20.0),
            ("regular", -70, 30.0),
            ("once", -40, 8.0),
            ("twice_a_day", -5.5, 4.0),
            ("twice_a_day", -5.2, 6.0),
        ]
    )
    f = churn_features(tx, cutoff=NOW)
    regular = f.loc["regular"]
    assert (regular["recency_days"], regular["frequency"], regular["monetary"]) == (70, 3, 20)
    assert (regular["tenure_days"], regular["spend_total"], regular["active_days"]) == (100, 60, 3)
    assert (regular["gap_mean"], regular["gap_last"]) == (15, 20)
    assert regular["gap_std"] == pytest.approx(np.std([10, 20], ddof=1))
    assert regular["overdue"] == pytest.approx(70 / 15)  # silent for 4.7 of their usual gaps
    # The last 90 days are (cutoff - 90, cutoff]: the order on day -90 belongs to the 90 before.
    assert (regular["orders_last_90"], regular["orders_prev_90"], regular["orders_trend"]) == (1, 2, -1)
    assert (regular["spend_last_90"], regular["spend_prev_90"]) == (30, 30)
    assert np.isnan(f.loc["once", "gap_mean"]) and np.isnan(f.loc["once", "overdue"])
    assert f.loc["twice_a_day", "frequency"] == 2 and f.loc["twice_a_day", "active_days"] == 1
    # Three customers are no population for a BG/NBD: its outputs are missing, not made up.
    assert f[["p_alive", "expected_purchases"]].isna().all().all()


def test_member_attributes_join_the_features():
    tx = frame([("a", -3, 10.0), ("b", -30, 10.0)])
    attributes = pd.DataFrame(
        {"tier_rank": [2, 0], "points_earned": [400, 0], "points_spent": [100, 0]}, index=["a", "b"]
    )
    f = churn_features(tx, cutoff=NOW, attributes=attributes)
    assert f.loc["a", ["tier_rank", "points_earned", "points_spent", "points_spent_share"]].tolist() == [
        2,
        400,
        100,
        0.25,
    ]
    assert np.isnan(f.loc["b", "points_spent_share"])  # nothing earned: no share to speak of
    assert "tier_rank" not in churn_features(tx, cutoff=NOW).columns


def test_a_degenerate_bgnbd_leaves_its_outputs_out():
    # Nobody ever leaves: the BG/NBD's dropout runs into a -> 0, P(alive) would be 1 for all.
    tx = poisson_orders(400, every_days=45)
    f = churn_features(tx, cutoff=NOW - 30 * DAY)
    assert f[["p_alive", "expected_purchases", "p_no_purchase"]].isna().all().all()
    scores, report = score_members(tx, now=NOW, horizon_days=30)
    assert "degenerate" in report.bgnbd_note
    assert report.risk_source == "classifier"  # trained without the missing columns
    assert scores["churn_risk"].between(0, 1).all()
    assert scores[["p_alive", "expected_purchases", "clv"]].isna().all().all()
    assert np.isnan(report.baselines["bgnbd_p_alive"])


def test_classifier_beats_recency_on_the_demo_shop(demo: pd.DataFrame):
    report = evaluate_split(demo, cutoff=NOW - 90 * DAY, horizon_days=90)
    assert report.note is None and report.bgnbd_note is None
    assert report.auc > report.baselines["recency"]
    assert report.auc > 0.75
    # Better than predicting the base rate for everyone, whose Brier score is p (1 - p).
    rate = report.churn_rate_test
    assert report.brier < rate * (1 - rate) < report.brier_base_rate
    assert 0 < rate < 1 and 0 < report.churn_rate_train < 1
    assert report.train_cutoff == pd.Timestamp(NOW - 180 * DAY)
    assert 0 < report.n_train < report.n_test
    table = report.calibration
    assert len(table) == 10 and table["n"].sum() == report.n_test
    assert table["predicted"].is_monotonic_increasing
    assert table["observed"].iloc[0] < 0.3 < 0.8 < table["observed"].iloc[-1]
    assert set(report.baselines) == {"recency", "bgnbd_p_alive", "bgnbd_expected_purchases", "bgnbd_no_purchase"}
    assert "AUC" in report.summary()


@pytest.mark.parametrize("estimator", ["logistic", "boosting"])
def test_churn_model_is_deterministic(demo: pd.DataFrame, estimator: str):
    cutoff = NOW - 90 * DAY
    features = churn_features(demo, cutoff=cutoff).iloc[:1000]
    labels = churn_labels(demo, cutoff=cutoff, horizon_days=90)
    first = ChurnModel(estimator).fit(features, labels).predict_proba(features)
    again = ChurnModel(estimator).fit(features, labels).predict_proba(features)
    np.testing.assert_array_equal(first, again)
    assert first.shape == (len(features),)
    assert ((first > 0) & (first < 1)).all()


def test_churn_model_refuses_a_single_class():
    features = pd.DataFrame({"recency_days": [1.0, 2.0, 3.0]}, index=["a", "b", "c"])
    with pytest.raises(ValueError, match="single class"):
        ChurnModel().fit(features, pd.Series([1, 1, 1], index=features.index))
    with pytest.raises(ValueError, match="no label"):
        ChurnModel().fit(features, pd.Series([1, 0], index=["a", "b"]))


def test_score_members_on_the_demo_shop(demo: pd.DataFrame):
    scores, report = score_members(demo, now=NOW, horizon_days=90)
    assert list(scores.columns) == SCORE_COLUMNS
    assert set(scores.index) == set(demo["customer"])
    assert (scores["risk_source"] == "classifier").all()
    assert report.risk_source == "classifier" and report.risk_note is None
    assert report.cutoff == pd.Timestamp(NOW - 90 * DAY)
    assert report.auc == evaluate_split(demo, cutoff=NOW - 90 * DAY, horizon_days=90).auc  # the latest held-out period
    assert scores["churn_risk"].between(0, 1).all()
    assert scores["p_alive"].between(0, 1).all()
    assert (scores["clv"].dropna() >= 0).all() and scores["clv"].notna().mean() > 0.95
    assert (scores["expected_spend"] > 0).all()
    # Long gone is riskier than just seen.
    recent = scores.loc[scores["recency_days"] < 30, "churn_risk"].mean()
    gone = scores.loc[scores["recency_days"] > 300, "churn_risk"].mean()
    assert recent < 0.5 < 0.9 < gone


def test_too_few_labelled_customers_fall_back_to_the_bgnbd():
    # A young shop: 300 customers, most of them newer than the 180-day horizon.
    tx = bgnbd_orders(300, days=200, seed=1)
    scores, report = score_members(tx, now=NOW, horizon_days=180)
    assert report.risk_source == "bgnbd"
    assert "labelled customer(s)" in report.risk_note and "BG/NBD" in report.risk_note
    assert (scores["risk_source"] == "bgnbd").all()
    assert scores["churn_risk"].between(0, 1).all()
    assert np.isnan(report.auc) and report.note.startswith("no classifier trained")
    # Silence after many purchases is what the BG/NBD reads as leaving.
    long_silent = scores["recency_days"] > 120
    assert scores.loc[long_silent, "churn_risk"].mean() > scores.loc[~long_silent, "churn_risk"].mean()


def test_without_a_bgnbd_the_recency_curve_is_used():
    tx = poisson_orders(40, every_days=45)  # too few to train, BG/NBD degenerate, both classes
    scores, report = score_members(tx, now=NOW, horizon_days=30)
    assert report.risk_source == "recency"
    assert "degenerate" in report.risk_note
    by_recency = scores.sort_values("recency_days")["churn_risk"]
    assert by_recency.between(0, 1).all() and by_recency.is_monotonic_increasing


@pytest.mark.parametrize("customers", [0, 3])
def test_no_trustworthy_model_gives_nan_with_a_reason(customers: int):
    tx = poisson_orders(customers, every_days=30)
    scores, report = score_members(tx, now=NOW, horizon_days=30)
    assert len(scores) == customers
    assert report.risk_source == "none"
    assert "no trustworthy churn risk" in report.risk_note
    assert scores["churn_risk"].isna().all()


def test_everyone_staying_is_one_class_and_no_risk_is_made_up():
    weekly = [(f"w{i}", day + i % 7, 20.0) for i in range(60) for day in range(-700, -7, 7)]
    tx = frame(weekly)  # everyone buys every week: nobody churned in any 30 days
    scores, report = score_members(tx, now=NOW, horizon_days=30)
    assert report.risk_source == "none"
    assert "0 churned" in report.risk_note
    assert scores["churn_risk"].isna().all()


def test_attributes_must_be_given_as_of_each_cutoff(demo: pd.DataFrame):
    snapshot = pd.DataFrame({"tier_rank": 0}, index=demo["customer"].unique())
    with pytest.raises(TypeError, match="leak"):
        score_members(demo, now=NOW, horizon_days=90, attributes=snapshot)  # type: ignore[arg-type]
    seen = []

    def as_of(cutoff: pd.Timestamp) -> pd.DataFrame:
        seen.append(cutoff)
        return snapshot

    report = evaluate_split(demo, cutoff=NOW - 90 * DAY, horizon_days=90, attributes=as_of)
    assert seen == [pd.Timestamp(NOW - 180 * DAY), pd.Timestamp(NOW - 90 * DAY)]
    assert report.auc > 0.75


def test_training_labels_may_not_reach_into_the_test_period(demo: pd.DataFrame):
    with pytest.raises(ValueError, match="would not end by"):
        evaluate_split(
            demo, cutoff=NOW - 90 * DAY, horizon_days=90, train_cutoff=NOW - 120 * DAY, train_horizon_days=60
        )
    # A shorter horizon inside the training period is the honest way (CDNOW's).
    report = evaluate_split(demo, cutoff=NOW - 90 * DAY, horizon_days=90, train_cutoff=NOW - 150 * DAY)
    assert report.train_horizon_days == 60
