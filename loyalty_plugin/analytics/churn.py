"""Churn: will a member buy nothing in the next ``horizon_days``? A supervised classifier on a time split.

The label is observable (no purchase in (cutoff, cutoff + horizon]), so instead of trusting a
model of dropout we learn the answer from the shop's own past: features from the history up to
a cutoff (inclusive), labels from the horizon after it. Every figure is measured on a later
period than the one the model was trained on, as it will be used, and next to the baselines it
has to beat (recency alone, BG/NBD alone), so that a number on a dashboard has earned its place.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, roc_auc_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from .bgnbd import BetaGeoModel
from .gamma_gamma import GammaGammaModel, lifetime_value
from .summary import rfm_summary

DAY = pd.Timedelta(days=1)
#: The two windows compared for the trend features: the last 90 days and the 90 before.
TREND_DAYS = 90
#: Below this many labelled customers, or this many of either class, a classifier's AUC and
#: coefficients are noise: the scores fall back to the BG/NBD or the recency curve.
MIN_LABELLED = 50
MIN_PER_CLASS = 10
#: The recency curve needs fewer, being one monotone step function, but not none; so does the
#: BG/NBD, four parameters for the whole population.
MIN_FOR_RECENCY = 20
MIN_FOR_BGNBD = 30
ATTRIBUTES = ("tier_rank", "points_earned", "points_spent")
BGNBD_FEATURES = ["p_alive", "expected_purchases", "p_no_purchase"]

#: Member attributes (tier, points over the feature window) as of a cutoff; a function rather
#: than a frame because training features are taken at earlier cutoffs than today's, and a
#: snapshot of today would leak the very purchases the training labels are made of.
AttributesAt = Callable[[pd.Timestamp], pd.DataFrame | None]


@dataclass(frozen=True)
class History:
    """Features at one cutoff with the BG/NBD fitted on the same history (None when it could not
    be fitted or is degenerate; ``bgnbd_note`` says why) and the RFM summary it was fitted on."""

    cutoff: pd.Timestamp
    features: pd.DataFrame
    summary: pd.DataFrame
    bgnbd: BetaGeoModel | None
    bgnbd_note: str | None


def _gap_features(history: pd.DataFrame) -> pd.DataFrame:
    """Mean, spread and last of the gaps between a customer's purchase days (NaN with one day):
    the customer's own rhythm, against which their current silence is measured."""
    days = history.assign(day=history["at"].dt.floor("D"))[["customer", "day"]].drop_duplicates()
    days = days.sort_values(["customer", "day"])
    gaps = days["day"].diff() / DAY
    gaps[~days["customer"].duplicated()] = np.nan
    by = gaps.groupby(days["customer"])
    return pd.DataFrame({"active_days": by.size(), "gap_mean": by.mean(), "gap_std": by.std(), "gap_last": by.last()})


def _bgnbd(summary: pd.DataFrame) -> tuple[BetaGeoModel | None, str | None]:
    """The BG/NBD fitted on the summary, or None and why not: four parameters from a handful of
    customers, or from customers seen for no time at all, would be numbers without meaning."""
    if len(summary) < MIN_FOR_BGNBD or (summary["T"] <= 0).all():
        return None, f"{len(summary)} customer(s) observed: too few to fit the BG/NBD (it needs {MIN_FOR_BGNBD})"
    model = BetaGeoModel().fit(summary["frequency"], summary["recency"], summary["T"])
    if model.degenerate_:
        return None, f"the BG/NBD fit is degenerate ({model.degenerate_})"
    return model, None


def p_no_purchase(model: BetaGeoModel, t: float, summary: pd.DataFrame) -> np.ndarray:
    """P(no purchase in the next ``t`` periods) under the BG/NBD: dead, or alive and silent.
    An alive customer cannot leave before their next purchase, so silence while alive is the
    Poisson zero averaged over the posterior Gamma(r + x, alpha + T) of their rate."""
    x, tx, age = summary["frequency"], summary["recency"], summary["T"]
    alive = model.probability_alive(x, tx, age)
    r, alpha = model.params_["r"], model.params_["alpha"]
    silent = np.exp((r + x.to_numpy()) * (np.log(alpha + age.to_numpy()) - np.log(alpha + age.to_numpy() + t)))
    return 1 - alive + alive * silent


def history_at(
    transactions: pd.DataFrame,
    *,
    cutoff: datetime,
    horizon_days: float = 90.0,
    attributes: pd.DataFrame | None = None,
    period_days: float = 1.0,
) -> History:
    """Features of every customer with a purchase at or before ``cutoff``, from that history only."""
    cutoff = pd.Timestamp(cutoff)
    history = transactions[transactions["at"] <= cutoff]
    by = history.groupby("customer")
    features = pd.DataFrame(
        {
            "recency_days": (cutoff - by["at"].max()) / DAY,
            "frequency": by.size().astype(float),
            "monetary": by["amount"].mean(),
            "spend_total": by["amount"].sum(),
            "tenure_days": (cutoff - by["at"].min()) / DAY,
        }
    )
    features = features.join(_gap_features(history))
    # How overdue the customer is by their own standard: 3 means three usual gaps of silence.
    features["overdue"] = features["recency_days"] / features["gap_mean"]
    features["repeat_rate"] = (features["active_days"] - 1) / features["tenure_days"].clip(lower=1) * 30
    for name, low, high in (("last_90", 0, TREND_DAYS), ("prev_90", TREND_DAYS, 2 * TREND_DAYS)):
        window = history[(history["at"] > cutoff - high * DAY) & (history["at"] <= cutoff - low * DAY)]
        per = window.groupby("customer")["amount"]
        features[f"orders_{name}"] = per.size().reindex(features.index, fill_value=0).astype(float)
        features[f"spend_{name}"] = per.sum().reindex(features.index, fill_value=0.0)
    features["orders_trend"] = features["orders_last_90"] - features["orders_prev_90"]
    features["spend_trend"] = features["spend_last_90"] - features["spend_prev_90"]
    if attributes is not None:
        present = [c for c in ATTRIBUTES if c in attributes.columns]
        features = features.join(attributes[present].astype(float))
        if {"points_earned", "points_spent"} <= set(present):
            features["points_spent_share"] = features["points_spent"] / features["points_earned"].where(
                features["points_earned"] > 0
            )
    summary = rfm_summary(history, until=cutoff, period_days=period_days)
    model, note = _bgnbd(summary)
    summary = summary.reindex(features.index.astype(str)).set_axis(features.index)
    if model is None:
        features[BGNBD_FEATURES] = np.nan
    else:
        x, tx, age = summary["frequency"], summary["recency"], summary["T"]
        features["p_alive"] = model.probability_alive(x, tx, age)
        # The hypergeometric series can overflow for extreme fits (a and b in the thousands):
        # a missing value is honest, an infinity would be fed to the classifier as a number.
        with np.errstate(invalid="ignore", over="ignore"):
            expected = model.expected_purchases(horizon_days / period_days, x, tx, age)
        features["expected_purchases"] = np.where(np.isfinite(expected), expected, np.nan)
        features["p_no_purchase"] = p_no_purchase(model, horizon_days / period_days, summary)
    features.index.name = "customer"
    return History(cutoff, features, summary, model, note)


def churn_features(
    transactions: pd.DataFrame,
    *,
    cutoff: datetime,
    attributes: pd.DataFrame | None = None,
    period_days: float = 1.0,
    horizon_days: float = 90.0,
) -> pd.DataFrame:
    """Per customer with a purchase at or before ``cutoff``, features from that history only:
    RFM (recency_days, frequency = orders, monetary = mean order), tenure, the rhythm of their
    purchase days (gap mean/std/last, ``overdue`` = silence in usual gaps, ``repeat_rate`` per
    30 days), the trend (orders and spend in the last 90 days against the 90 before), the
    ``attributes`` (tier_rank, points_earned, points_spent, as of the cutoff) when given, and the
    BG/NBD's ``p_alive``, ``expected_purchases`` and ``p_no_purchase`` in ``horizon_days``, fitted
    on the same history in periods of ``period_days``. A degenerate BG/NBD leaves those three NaN
    (missing, which the classifier treats as neutral) rather than feeding it P(alive) = 1 for all.
    """
    return history_at(
        transactions, cutoff=cutoff, horizon_days=horizon_days, attributes=attributes, period_days=period_days
    ).features


def churn_labels(transactions: pd.DataFrame, *, cutoff: datetime, horizon_days: float) -> pd.Series:
    """1 for a customer with a purchase at or before ``cutoff`` and none in (cutoff, cutoff + horizon],
    else 0; indexed like ``churn_features`` at the same cutoff."""
    cutoff = pd.Timestamp(cutoff)
    at = transactions["at"]
    known = pd.Index(transactions.loc[at <= cutoff, "customer"].unique()).sort_values()
    came_back = transactions.loc[(at > cutoff) & (at <= cutoff + horizon_days * DAY), "customer"].unique()
    return pd.Series((~known.isin(came_back)).astype(int), index=known.rename("customer"), name="churned")


def _signed_log(x: np.ndarray) -> np.ndarray:
    """log1p that keeps the sign: trends are negative as often as positive."""
    return np.sign(x) * np.log1p(np.abs(x))


class ChurnModel:
    """P(churn) from ``churn_features``. ``estimator="logistic"`` (the default): median-imputed
    features with missing-value indicators, signed log1p (counts, days and money are heavy-tailed),
    standardised, L2 logistic regression. ``"boosting"``: scikit-learn's histogram gradient
    boosting, shallow and regularised, on the raw features (it handles NaN itself).

    The logistic model was chosen by measurement (``bench/eval_churn.py``): on CDNOW, Online
    Retail and the demo shop it ranks as well as boosting or better at a few thousand labelled
    customers, and its probabilities are calibrated by construction; boosting only catches up
    at tens of thousands. Both are deterministic (``random_state`` seeds the boosting).
    """

    def __init__(self, estimator: str = "logistic", C: float = 0.1, random_state: int = 0) -> None:
        self.estimator = estimator
        self.C = C
        self.random_state = random_state

    def _make(self) -> Pipeline | HistGradientBoostingClassifier:
        if self.estimator == "logistic":
            return make_pipeline(
                SimpleImputer(strategy="median", add_indicator=True),
                FunctionTransformer(_signed_log),
                StandardScaler(),
                LogisticRegression(C=self.C, max_iter=5000),
            )
        if self.estimator == "boosting":
            return HistGradientBoostingClassifier(
                max_iter=150,
                learning_rate=0.05,
                max_depth=3,
                min_samples_leaf=100,
                l2_regularization=1.0,
                early_stopping=False,
                random_state=self.random_state,
            )
        raise ValueError(f"estimator must be 'logistic' or 'boosting', not {self.estimator!r}.")

    def fit(self, features: pd.DataFrame, labels: pd.Series) -> ChurnModel:
        """Labels are aligned on the features' index; both classes must be present."""
        y = labels.reindex(features.index)
        if y.isna().any():
            raise ValueError(f"{int(y.isna().sum())} customer(s) in the features have no label.")
        if y.nunique() < 2:
            raise ValueError("the labels hold a single class: nothing to learn the difference from.")
        # A column with no value at all in training (the BG/NBD outputs when its fit was degenerate)
        # carries nothing to learn; dropping it keeps it neutral when it does have values later.
        self.columns_ = [c for c in features.columns if features[c].notna().any()]
        self.estimator_ = self._make().fit(features[self.columns_].astype(float), y.astype(int))
        return self

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        """P(churn) for each row, 0..1; columns missing from ``features`` count as missing values."""
        return self.estimator_.predict_proba(features.reindex(columns=self.columns_).astype(float))[:, 1]


@dataclass(frozen=True)
class ChurnReport:
    """How the churn classifier did on a held-out period, next to the baselines.

    ``auc``/``brier`` are NaN (and ``note`` says why) when no classifier could be trained or the
    test period holds one class only; ``brier_base_rate`` is the Brier score of predicting the
    training period's churn rate for everyone, what is known without a model. ``baselines``
    holds the AUC, on the same test customers, of ``recency`` (days since the last purchase),
    ``bgnbd_p_alive`` (1 - P(alive)), ``bgnbd_expected_purchases`` (fewer expected purchases,
    more risk) and ``bgnbd_no_purchase`` (the BG/NBD's P(no purchase in the horizon)); NaN
    without a trustworthy BG/NBD.
    ``calibration``: deciles of the predicted risk with their mean prediction and observed churn
    rate. ``risk_source`` and ``risk_note`` are set by ``score_members``: where the scores came
    from and why.
    """

    cutoff: pd.Timestamp
    horizon_days: float
    train_cutoff: pd.Timestamp
    train_horizon_days: float
    n_train: int
    n_test: int
    churn_rate_train: float
    churn_rate_test: float
    auc: float
    brier: float
    brier_base_rate: float
    calibration: pd.DataFrame
    baselines: dict[str, float]
    estimator: str
    note: str | None = None
    bgnbd_note: str | None = None
    risk_source: str | None = None
    risk_note: str | None = None

    def summary(self) -> str:
        lines = [
            f"train: features at {self.train_cutoff:%Y-%m-%d}, labels over {self.train_horizon_days:g} days, "
            f"{self.n_train:,} customers, churn rate {self.churn_rate_train:.3f}",
            f"test:  features at {self.cutoff:%Y-%m-%d}, labels over {self.horizon_days:g} days, "
            f"{self.n_test:,} customers, churn rate {self.churn_rate_test:.3f}",
            f"{self.estimator}: AUC {self.auc:.3f}, Brier {self.brier:.4f} "
            f"(the training churn rate for everyone: {self.brier_base_rate:.4f})",
            "baselines (AUC): " + ", ".join(f"{k} {v:.3f}" for k, v in self.baselines.items()),
        ]
        lines += [f"note: {text}" for text in (self.note, self.bgnbd_note, self.risk_note) if text]
        if not self.calibration.empty:
            lines.append("calibration (decile: n, mean predicted, observed):")
            lines += [
                f"  {row.Index:>2}: {row.n:>6,}  {row.predicted:.3f}  {row.observed:.3f}"
                for row in self.calibration.itertuples()
            ]
        return "\n".join(lines)


def calibration_table(labels: np.ndarray, risk: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """Deciles of the predicted risk (equal counts: ties are split by position), each with its
    size, mean prediction and observed churn rate; fewer bins than ``bins`` for fewer customers."""
    frame = pd.DataFrame({"y": labels, "p": risk})
    frame["decile"] = pd.qcut(frame["p"].rank(method="first"), bins, labels=False, duplicates="drop") + 1
    return frame.groupby("decile").agg(n=("y", "size"), predicted=("p", "mean"), observed=("y", "mean"))


def _auc(labels: np.ndarray, risk: np.ndarray) -> float:
    """AUC over the customers the score has a number for; NaN when they hold one class."""
    known = np.isfinite(risk)
    if len(np.unique(labels[known])) < 2:
        return float("nan")
    return float(roc_auc_score(labels[known], risk[known]))


def _too_few(labels: pd.Series) -> str | None:
    """Why these labels cannot train a classifier worth trusting, or None."""
    churned = int(labels.sum())
    if len(labels) < MIN_LABELLED or min(churned, len(labels) - churned) < MIN_PER_CLASS:
        return (
            f"{len(labels)} labelled customer(s), {churned} churned: a classifier needs at least "
            f"{MIN_LABELLED} with {MIN_PER_CLASS} of each class"
        )
    return None


def _attributes_at(attributes: AttributesAt | None, cutoff: pd.Timestamp) -> pd.DataFrame | None:
    if attributes is None:
        return None
    if not callable(attributes):
        raise TypeError(
            "attributes must be a function of the cutoff returning the attributes as of then: "
            "a snapshot of today would leak the purchases the training labels are made of."
        )
    return attributes(cutoff)


@dataclass(frozen=True)
class _Split:
    """Features at a cutoff and the labels of the horizon after it."""

    history: History
    labels: pd.Series
    horizon_days: float


def _split(
    transactions: pd.DataFrame,
    cutoff: pd.Timestamp,
    horizon_days: float,
    attributes: AttributesAt | None,
    period_days: float,
) -> _Split:
    history = history_at(
        transactions,
        cutoff=cutoff,
        horizon_days=horizon_days,
        attributes=_attributes_at(attributes, cutoff),
        period_days=period_days,
    )
    labels = churn_labels(transactions, cutoff=cutoff, horizon_days=horizon_days).reindex(history.features.index)
    return _Split(history, labels, horizon_days)


def _report(train: _Split, test: _Split, estimator: str) -> ChurnReport:
    y = test.labels.to_numpy()
    features = test.history.features
    baselines = {
        "recency": _auc(y, features["recency_days"].to_numpy()),
        "bgnbd_p_alive": _auc(y, 1 - features["p_alive"].to_numpy()),
        "bgnbd_expected_purchases": _auc(y, -features["expected_purchases"].to_numpy()),
        "bgnbd_no_purchase": _auc(y, features["p_no_purchase"].to_numpy()),
    }
    too_few = _too_few(train.labels)
    nan = float("nan")
    train_rate = float(train.labels.mean()) if len(train.labels) else nan
    auc = brier = nan
    calibration = pd.DataFrame(columns=["n", "predicted", "observed"])
    note = None if too_few is None else f"no classifier trained: {too_few}"
    if too_few is None:
        risk = ChurnModel(estimator).fit(train.history.features, train.labels).predict_proba(features)
        auc, brier = _auc(y, risk), float(brier_score_loss(y, risk))
        calibration = calibration_table(y, risk)
        if np.isnan(auc):
            note = "the test period holds a single class: AUC is undefined"
    return ChurnReport(
        cutoff=test.history.cutoff,
        horizon_days=test.horizon_days,
        train_cutoff=train.history.cutoff,
        train_horizon_days=train.horizon_days,
        n_train=len(train.labels),
        n_test=len(y),
        churn_rate_train=train_rate,
        churn_rate_test=float(y.mean()) if len(y) else nan,
        auc=auc,
        brier=brier,
        brier_base_rate=float(np.mean((y - train_rate) ** 2)) if len(y) else nan,
        calibration=calibration,
        baselines=baselines,
        estimator=estimator,
        note=note,
        bgnbd_note=test.history.bgnbd_note,
    )


def evaluate_split(
    transactions: pd.DataFrame,
    *,
    cutoff: datetime,
    horizon_days: float,
    attributes: AttributesAt | None = None,
    train_cutoff: datetime | None = None,
    train_horizon_days: float | None = None,
    period_days: float = 1.0,
    estimator: str = "logistic",
) -> ChurnReport:
    """Train on an earlier period, test on the held-out one.

    Test: features at ``cutoff``, labels in (cutoff, cutoff + horizon]. Train: features at
    ``train_cutoff`` (default cutoff - horizon), labels over ``train_horizon_days`` (default: up
    to ``cutoff``, at most ``horizon_days``), which must end by ``cutoff`` so that nothing of the
    test period is seen. A shorter training horizon is how data with one long hold-out period
    and little before it (CDNOW) is trained honestly; its base rate then differs from the test
    period's, which the calibration table shows.
    """
    cutoff = pd.Timestamp(cutoff)
    start = cutoff - horizon_days * DAY if train_cutoff is None else pd.Timestamp(train_cutoff)
    available = (cutoff - start) / DAY
    train_horizon = min(horizon_days, available) if train_horizon_days is None else train_horizon_days
    if train_horizon <= 0 or train_horizon > available:
        raise ValueError(
            f"training labels over {train_horizon:g} days from {start:%Y-%m-%d} would not end by the "
            f"test cutoff {cutoff:%Y-%m-%d}."
        )
    train = _split(transactions, start, train_horizon, attributes, period_days)
    test = _split(transactions, cutoff, horizon_days, attributes, period_days)
    return _report(train, test, estimator)


def _recency_curve(labelled: _Split, now: History) -> np.ndarray:
    """The churn rate of the labelled customers as a non-decreasing function of days since their
    last purchase, read off at each member's recency: a calibrated number from little data."""
    curve = IsotonicRegression(increasing=True, out_of_bounds="clip")
    curve.fit(labelled.history.features["recency_days"], labelled.labels)
    return curve.predict(now.features["recency_days"])


def score_members(
    transactions: pd.DataFrame,
    *,
    now: datetime,
    horizon_days: float,
    attributes: AttributesAt | None = None,
    clv_months: int = 12,
    period_days: float = 1.0,
    estimator: str = "logistic",
) -> tuple[pd.DataFrame, ChurnReport]:
    """Churn risk and value of every customer with history at or before ``now``: the nightly job.

    Validation: trained on features at now - 2 x horizon, tested on now - horizon (the latest
    held-out period). Scoring: refitted on features at now - horizon with the labels of the last
    horizon, applied to the features at ``now``. ``risk_source`` says where ``churn_risk`` came
    from: "classifier"; "recency" when the classifier ranked the held-out period worse than days
    since the last purchase (model selection on that period); with too few labelled customers
    the BG/NBD's P(no purchase in the horizon) ("bgnbd"), else the churn rate by recency of the
    labelled customers ("recency"),
    else NaN ("none"); the report's ``risk_note`` says why. ``clv`` (``clv_months`` months) and
    ``expected_spend`` are NaN where the value models are degenerate.
    """
    now = pd.Timestamp(now)
    labelled = _split(transactions, now - horizon_days * DAY, horizon_days, attributes, period_days)
    earlier = _split(transactions, now - 2 * horizon_days * DAY, horizon_days, attributes, period_days)
    report = _report(earlier, labelled, estimator)  # what evaluate_split(cutoff=now - horizon) reports
    current = history_at(
        transactions,
        cutoff=now,
        horizon_days=horizon_days,
        attributes=_attributes_at(attributes, now),
        period_days=period_days,
    )
    features = current.features
    too_few = _too_few(labelled.labels)
    n, churned = len(labelled.labels), int(labelled.labels.sum())
    recency_auc = report.baselines.get("recency", float("nan"))
    if too_few is None and recency_auc > report.auc and n >= MIN_FOR_RECENCY and 0 < churned < n:
        # Model selection on the held-out period: a small shop's classifier can rank worse than
        # days since the last order; then the simpler, calibrated recency curve is the score.
        source = "recency"
        note = (
            f"the classifier ranked the held-out period worse (AUC {report.auc:.3f}) than days since the "
            f"last purchase ({recency_auc:.3f}): the churn rate by recency instead"
        )
        risk = _recency_curve(labelled, current)
    elif too_few is None:
        source, note = "classifier", None
        risk = ChurnModel(estimator).fit(labelled.history.features, labelled.labels).predict_proba(features)
    elif current.bgnbd is not None:
        source, note = "bgnbd", f"{too_few}; BG/NBD P(no purchase in {horizon_days:g} days) instead"
        risk = features["p_no_purchase"].to_numpy()
    elif n >= MIN_FOR_RECENCY and 0 < churned < n:
        source = "recency"
        note = f"{too_few}, and {current.bgnbd_note}: the churn rate by days since the last purchase instead"
        risk = _recency_curve(labelled, current)
    else:
        source = "none"
        note = f"{too_few}, and {current.bgnbd_note}: no trustworthy churn risk"
        risk = np.full(len(features), np.nan)
    scores = pd.DataFrame({"churn_risk": risk, "risk_source": source}, index=features.index)
    scores["p_alive"] = features["p_alive"]
    scores["expected_purchases"] = features["expected_purchases"]
    scores["expected_spend"], scores["clv"] = _value(current, clv_months, period_days)
    scores[["recency_days", "frequency", "monetary"]] = features[["recency_days", "frequency", "monetary"]]
    return scores, replace(report, risk_source=source, risk_note=note)


def _value(history: History, months: int, period_days: float) -> tuple[np.ndarray, np.ndarray]:
    """Expected spend per order and CLV over ``months``; NaN where a value model is degenerate or
    cannot be fitted, and for repeat customers whose repeat orders were free (nothing to model)."""
    summary = history.summary
    spend = np.full(len(summary), np.nan)
    clv = np.full(len(summary), np.nan)
    usable = ((summary["frequency"] == 0) | (summary["monetary_value"] > 0)).to_numpy()
    known = summary[usable]
    if (known["frequency"] > 0).sum() < 2:
        return spend, clv
    gg = GammaGammaModel().fit(known["frequency"], known["monetary_value"])
    if gg.degenerate_:
        return spend, clv
    spend[usable] = gg.expected_spend(known["frequency"], known["monetary_value"])
    if history.bgnbd is not None:
        x, tx, age, m = (known[c] for c in ("frequency", "recency", "T", "monetary_value"))
        with np.errstate(invalid="ignore", over="ignore"):  # as for expected_purchases: NaN, not inf
            value = lifetime_value(history.bgnbd, gg, x, tx, age, m, months=months, period_days=period_days)
        clv[usable] = np.where(np.isfinite(value), value, np.nan)
    return spend, clv
