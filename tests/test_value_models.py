"""Customer-value models: the RFM summary, BG/NBD, Gamma-Gamma and lifetime value.

Checked three ways: against the published CDNOW figures (Fader, Hardie & Lee 2005; Fader &
Hardie 2013), against lifetimes on the same data, and by recovering the parameters of data
simulated from the models' own generative processes.
"""

from __future__ import annotations

import ast
import itertools
import warnings
from functools import cache
from importlib.resources import files
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, special

from loyalty_plugin.analytics import bgnbd, gamma_gamma, summary
from loyalty_plugin.analytics.bgnbd import BetaGeoModel
from loyalty_plugin.analytics.gamma_gamma import MONTH_DAYS, GammaGammaModel, lifetime_value
from loyalty_plugin.analytics.summary import rfm_summary

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # lifetimes imports pkg_resources, deprecated
    import lifetimes
    from lifetimes.utils import summary_data_from_transaction_data

DATASETS = files("lifetimes.datasets")
CALIBRATION_END = "1997-09-30"  # 39 weeks from 1997-01-01, inclusive


def simulate_bgnbd(
    n: int, r: float, alpha: float, a: float, b: float, seed: int, *, T: tuple[float, float] = (30.0, 78.0)
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(frequency, recency, T) from the BG/NBD's story: Poisson purchases at a Gamma rate, and
    after each repeat purchase a Beta-distributed chance of leaving for good (b = inf: never)."""
    rng = np.random.default_rng(seed)
    age = rng.uniform(*T, n)
    rate = rng.gamma(r, 1 / alpha, n)
    leave = rng.beta(a, b, n) if np.isfinite(b) else np.zeros(n)
    x, tx, now = np.zeros(n), np.zeros(n), np.zeros(n)
    active = np.arange(n)
    while active.size:
        now[active] += rng.exponential(1.0, active.size) / rate[active]
        bought = active[now[active] <= age[active]]
        x[bought] += 1
        tx[bought] = now[bought]
        active = bought[rng.random(bought.size) >= leave[bought]]
    return x, tx, age


def simulate_spend(frequency: np.ndarray, p: float, q: float, v: float, seed: int) -> np.ndarray:
    """Mean spend over each customer's transactions: z ~ Gamma(p, nu), nu ~ Gamma(q, v)."""
    rng = np.random.default_rng(seed)
    nu = rng.gamma(q, 1 / v, frequency.size)
    return rng.gamma(p * frequency, 1 / nu) / frequency


@cache
def cdnow() -> pd.DataFrame:
    """CDNOW's 1/10th sample: one row per purchase record, customer = the sample's id (1..2357)."""
    frame = pd.read_csv(
        DATASETS / "CDNOW_sample.txt",
        sep=r"\s+",
        header=None,
        names=["master_id", "customer", "date", "cds", "amount"],
        dtype={"master_id": str, "customer": str, "date": str},
    )
    frame["at"] = pd.to_datetime(frame["date"], format="%Y%m%d")
    return frame


@cache
def cdnow_weekly() -> pd.DataFrame:
    weekly = rfm_summary(cdnow(), until=CALIBRATION_END, period_days=7)
    weekly.index = weekly.index.astype(int)
    return weekly.sort_index()


@cache
def cdnow_models() -> tuple[BetaGeoModel, GammaGammaModel]:
    data = cdnow_weekly()
    return (
        BetaGeoModel().fit(data["frequency"], data["recency"], data["T"]),
        GammaGammaModel().fit(data["frequency"], data["monetary_value"]),
    )


def history(data: pd.DataFrame) -> tuple[pd.Series, pd.Series, pd.Series]:
    return data["frequency"], data["recency"], data["T"]


# --- the RFM summary ---------------------------------------------------------------------------


def test_summary_counts_a_period_once_ignores_the_first_purchase_and_what_comes_after_until():
    transactions = pd.DataFrame(
        {
            "customer": ["a", "a", "a", "a", "a", 7],
            "at": pd.to_datetime(
                [
                    "2024-01-01 10:00",
                    "2024-01-01 18:00",  # same day as the first: one purchase period worth 15
                    "2024-01-08 09:00",
                    "2024-01-20 23:59",
                    "2024-02-01 00:00",  # after until: ignored
                    "2024-01-31 22:00",  # on until's day: kept
                ]
            ),
            "amount": [10.0, 5.0, 20.0, 30.0, 999.0, 12.5],
        }
    )
    daily = rfm_summary(transactions, until="2024-01-31 08:00")
    assert list(daily.index) == ["7", "a"]
    a = daily.loc["a"]
    assert (a["frequency"], a["recency"], a["T"], a["monetary_value"]) == (2, 19, 30, 25)
    assert (a["orders"], a["total"]) == (3, 65)
    assert (a["first"], a["last"]) == (pd.Timestamp("2024-01-01 10:00"), pd.Timestamp("2024-01-20 23:59"))
    assert tuple(daily.loc["7", ["frequency", "recency", "T", "monetary_value", "total"]]) == (0, 0, 0, 0, 12.5)

    weekly = rfm_summary(transactions, until="2024-01-31", period_days=7)
    assert weekly.loc["a", "frequency"] == 2
    assert weekly.loc["a", "recency"] == pytest.approx(19 / 7)
    assert weekly.loc["a", "T"] == pytest.approx(30 / 7)


def test_summary_cuts_days_in_the_customers_time_zone():
    """22:30 and 23:30 UTC are two days in Paris: two purchase periods, not one."""
    at = pd.to_datetime(["2024-01-01 22:30", "2024-01-01 23:30"]).tz_localize("UTC").tz_convert("Europe/Paris")
    transactions = pd.DataFrame({"customer": ["a", "a"], "at": at, "amount": [1.0, 2.0]})
    row = rfm_summary(transactions, until=pd.Timestamp("2024-01-10 23:30", tz="UTC")).loc["a"]
    assert (row["frequency"], row["recency"], row["T"]) == (1, 1, 10)  # until is Jan 11, 00:30 in Paris
    assert row["last"] == pd.Timestamp("2024-01-02 00:30", tz="Europe/Paris")


def test_summary_of_cdnow_reproduces_the_published_calibration_data():
    """2,357 customers, 946 of them with a repeat purchase in the 39 weeks; recency and T in
    weeks as in Fader, Hardie & Lee's file that lifetimes ships (rounded to 2 decimals there)."""
    ours = cdnow_weekly()
    published = pd.read_csv(DATASETS / "cdnow_customers_summary.csv", index_col="ID")
    with_spend = pd.read_csv(DATASETS / "cdnow_customers_summary_with_transactions.csv", index_col="ID")
    assert len(ours) == 2357
    assert (ours["frequency"] > 0).sum() == 946
    assert ours.index.equals(published.index)
    assert (ours["frequency"] == published["frequency"]).all()
    assert np.allclose(ours["recency"], published["recency"], atol=0.005)
    assert np.allclose(ours["T"], published["T"], atol=0.005)
    assert np.allclose(ours["monetary_value"], with_spend["zbar"], atol=0.0051)
    assert ours["T"].max() == pytest.approx(272 / 7)


@pytest.mark.parametrize(
    ("grain", "period_days", "freq", "multiplier", "slot_after_until"),
    [("D", 1, "D", 1, "2022-07-01"), ("D", 7, "D", 7, "2022-07-01"), ("W", 7, "W", 1, "2022-07-04")],
)
def test_summary_follows_lifetimes_conventions_on_timestamps(grain, period_days, freq, multiplier, slot_after_until):
    """Until includes its whole slot: its day, or with grain="W" its week (Monday to Sunday)."""
    rng = np.random.default_rng(3)
    n = 20_000
    seconds = pd.to_timedelta(rng.integers(0, 2 * 365 * 86_400, n), unit="s")
    transactions = pd.DataFrame(
        {
            "customer": rng.integers(0, 2_000, n),
            "at": pd.Timestamp("2021-01-01") + seconds,
            "amount": rng.gamma(2.0, 10.0, n).round(2),
        }
    )
    until = "2022-06-30 13:00"
    ours = rfm_summary(transactions, until=until, period_days=period_days, grain=grain)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = summary_data_from_transaction_data(
            transactions,
            "customer",
            "at",
            "amount",
            observation_period_end=until,
            freq=freq,
            freq_multiplier=multiplier,
        )
    theirs.index = theirs.index.astype(str)
    theirs = theirs.sort_index()
    assert ours.index.equals(theirs.index)
    columns = ["frequency", "recency", "T", "monetary_value"]
    assert np.allclose(ours[columns], theirs[columns], rtol=0, atol=1e-9)
    kept = transactions[transactions["at"] < slot_after_until]
    assert ours["total"].sum() == pytest.approx(kept["amount"].sum())
    assert ours["last"].max() == kept["at"].max()


def test_summary_rejects_what_it_cannot_summarise():
    frame = pd.DataFrame({"customer": ["a"], "at": [pd.Timestamp("2024-01-01")], "amount": [1.0]})
    with pytest.raises(ValueError, match="lack the column"):
        rfm_summary(frame.drop(columns="amount"), until="2024-02-01")
    with pytest.raises(ValueError, match="period_days must be positive"):
        rfm_summary(frame, until="2024-02-01", period_days=0)
    with pytest.raises(ValueError, match="without a 'customer' or a 'at'"):
        rfm_summary(frame.assign(at=pd.NaT), until="2024-02-01")
    assert rfm_summary(frame, until="2023-12-31").empty


# --- BG/NBD ------------------------------------------------------------------------------------


def test_bgnbd_recovers_the_parameters_it_simulated():
    truth = {"r": 0.25, "alpha": 4.0, "a": 0.8, "b": 2.5}
    model = BetaGeoModel()
    assert not hasattr(model, "params_")
    assert model.fit(*simulate_bgnbd(25_000, **truth, seed=1)) is model
    fitted = model.params_
    assert model.converged_ and model.degenerate_ is None
    assert fitted["r"] == pytest.approx(truth["r"], rel=0.05)
    assert fitted["alpha"] == pytest.approx(truth["alpha"], rel=0.08)
    assert fitted["a"] == pytest.approx(truth["a"], rel=0.2)
    assert fitted["b"] == pytest.approx(truth["b"], rel=0.2)
    # What the data pin down best: the mean purchase rate and the mean dropout probability.
    assert fitted["r"] / fitted["alpha"] == pytest.approx(0.0625, rel=0.05)
    assert fitted["a"] / (fitted["a"] + fitted["b"]) == pytest.approx(0.8 / 3.3, rel=0.05)


def test_bgnbd_on_cdnow_reproduces_the_paper():
    model, _ = cdnow_models()
    published = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    for name, value in published.items():
        assert model.params_[name] == pytest.approx(value, rel=0.01), name
    assert model.log_likelihood_ == pytest.approx(-9582.4, abs=0.1)
    assert model.converged_ and model.degenerate_ is None


def test_bgnbd_predictions_agree_with_lifetimes_on_cdnow():
    data = cdnow_weekly()
    x, tx, age = history(data)
    ours, _ = cdnow_models()
    theirs = lifetimes.BetaGeoFitter().fit(x, tx, age)
    for name in ("r", "alpha", "a", "b"):
        assert ours.params_[name] == pytest.approx(theirs.params_[name], rel=5e-3), name
    # Same parameters: the same formulas, to rounding.
    same = BetaGeoModel()
    same.params_ = theirs.params_.to_dict()
    for t in (1.0, 39.0, 52.0):
        expected = theirs.conditional_expected_number_of_purchases_up_to_time(t, x, tx, age)
        assert np.allclose(same.expected_purchases(t, x, tx, age), expected, rtol=1e-9)
        # Each fitted on its own: within the optimisers' tolerance.
        assert np.allclose(ours.expected_purchases(t, x, tx, age), expected, rtol=2e-3)
    alive = theirs.conditional_probability_alive(x, tx, age)
    assert np.allclose(same.probability_alive(x, tx, age), alive, rtol=1e-9)
    assert np.allclose(ours.probability_alive(x, tx, age), alive, atol=1e-3)
    # Customer 1 of the paper's example: 2 repeat purchases, last at 30.43 weeks, T = 38.86.
    assert ours.expected_purchases(39, 2, 30.43, 38.86) == pytest.approx(1.226, abs=0.005)


@pytest.mark.parametrize("x", [0, 1, 5, 60, 400, 3000])
@pytest.mark.parametrize("params", [(0.243, 4.414, 0.793, 2.426), (2.0, 10.0, 1.0, 3.0), (0.8, 69.0, 1e-5, 21.0)])
def test_expected_purchases_is_the_posterior_expectation_even_for_heavy_buyers(params, x):
    """Against an independent route: P(alive) times the expected purchases of a customer alive
    now, E[(1 - (1 + p t / (alpha + T)) ** -(r + x)) / p] over p ~ Beta(a, b + x) (their rate
    integrated out over its posterior Gamma(r + x, alpha + T)), by quadrature."""
    r, alpha, a, b = params
    model = BetaGeoModel()
    model.params_ = dict(zip(("r", "alpha", "a", "b"), params, strict=True))
    age, t = 40.0, 52.0
    recency = 0.0 if x == 0 else 39.5

    def dropout_free(p: float) -> float:
        rate = t / (alpha + age)
        return -np.expm1(-(r + x) * np.log1p(p * rate)) / p if p > 0 else (r + x) * rate

    def rest_of_density(p: float) -> float:  # Beta(a, b + x)'s density without its p ** (a - 1)
        with np.errstate(divide="ignore"):  # 0 at p = 1, where log1p(-p) is -inf
            return np.exp((b + x - 1) * np.log1p(-p) - special.betaln(a, b + x))

    # p ** (a - 1) as quad's algebraic weight, exact for the singularity at 0; the density is
    # negligible past 50 / (b + x), where a heavy buyer's ~(1 - p) ** x has died out.
    split = min(1.0, 50 / (b + x))
    expected = (
        integrate.quad(lambda p: dropout_free(p) * rest_of_density(p), 0, split, weight="alg", wvar=(a - 1, 0))[0]
        + integrate.quad(lambda p: dropout_free(p) * rest_of_density(p) * p ** (a - 1), split, 1)[0]
    )
    alive = model.probability_alive(x, recency, age)
    assert model.expected_purchases(t, x, recency, age) == pytest.approx(alive * expected, rel=1e-6)


def test_a_population_that_never_drops_out_is_reported_degenerate_and_still_scored():
    """Like Online Retail: nobody leaves, a -> 0 with b growing, so flat that the optimiser stops
    short of the bound; the fit must say so instead of passing for a BG/NBD."""
    x, tx, age = simulate_bgnbd(20_000, r=0.5, alpha=8.0, a=1.0, b=np.inf, seed=2)
    model = BetaGeoModel().fit(x, tx, age)
    assert model.converged_
    assert model.degenerate_ is not None
    assert "a -> 0" in model.degenerate_ and "no dropout" in model.degenerate_
    assert model.params_["a"] / (model.params_["a"] + model.params_["b"]) < 1e-3
    assert model.params_["r"] == pytest.approx(0.5, rel=0.05)  # the purchase side is still right
    alive = model.probability_alive(x, tx, age)
    assert np.isfinite(alive).all() and alive.min() > 0.9
    for t in (1.0, 52.0, 520.0):
        expected = model.expected_purchases(t, x, tx, age)
        assert np.isfinite(expected).all() and (expected >= 0).all()
    # Without dropout a customer's expected purchases are their posterior rate times t.
    rate = (model.params_["r"] + x[:50]) / (model.params_["alpha"] + age[:50])
    assert np.allclose(model.expected_purchases(10.0, x[:50], tx[:50], age[:50]), rate * 10, rtol=0.01)


def test_a_sample_of_real_dropout_is_not_reported_degenerate():
    model = BetaGeoModel().fit(*simulate_bgnbd(5_000, r=0.5, alpha=8.0, a=2.0, b=8.0, seed=4))
    assert model.degenerate_ is None


def test_bgnbd_penalizer_shrinks_the_parameters():
    data = cdnow_weekly()
    plain, _ = cdnow_models()
    shrunk = BetaGeoModel(penalizer=0.1).fit(*history(data))
    assert shrunk.log_likelihood_ < plain.log_likelihood_
    assert shrunk.params_["b"] < plain.params_["b"]


@pytest.mark.parametrize(
    ("frequency", "recency", "T", "message"),
    [
        ([-1, 2], [0, 3], [5, 5], "whole number >= 0"),
        ([1.5, 2], [3, 3], [5, 5], "whole number >= 0"),
        ([1, 2], [6, 3], [5, 5], "cannot exceed T"),
        ([1, 2], [-1, 3], [5, 5], "recency .* must be >= 0"),
        ([0, 2], [1, 3], [5, 5], "must be 0 when frequency is 0"),
        ([1, 2], [0, 3], [5, 5], "must be > 0 when frequency is > 0"),
        ([1, np.nan], [1, 3], [5, 5], "finite"),
        ([1, 2], [1, 3], [5, np.inf], "finite"),
        ([1, 2, 3], [1, 3], [5, 5], "differ in shape"),
    ],
)
def test_bgnbd_rejects_impossible_histories(frequency, recency, T, message):
    with pytest.raises(ValueError, match=message):
        BetaGeoModel().fit(frequency, recency, T)
    model, _ = cdnow_models()
    with pytest.raises(ValueError, match=message):
        model.probability_alive(frequency, recency, T)
    with pytest.raises(ValueError, match=message):
        model.expected_purchases(10, frequency, recency, T)


def test_bgnbd_rejects_what_it_cannot_fit_or_predict():
    with pytest.raises(ValueError, match="observed for some time"):
        BetaGeoModel().fit([0, 0], [0, 0], [0, 0])
    model, _ = cdnow_models()
    with pytest.raises(ValueError, match="t \\(periods ahead\\)"):
        model.expected_purchases(-1, [1], [2], [3])
    with pytest.raises(ValueError, match="the first at position 1"):
        model.probability_alive([1, 1, 1], [2, 4, 4], [3, 3, 3])


# --- Gamma-Gamma and lifetime value ------------------------------------------------------------


def test_gamma_gamma_recovers_the_parameters_it_simulated():
    frequency = 1 + np.random.default_rng(5).poisson(2.0, 30_000).astype(float)
    spend = simulate_spend(frequency, p=6.0, q=4.0, v=15.0, seed=6)
    # Customers without repeat purchases are left out of the fit, whatever their spend column says.
    frequency = np.r_[frequency, np.zeros(1_000)]
    spend = np.r_[spend, np.zeros(1_000)]
    model = GammaGammaModel()
    assert model.fit(frequency, spend) is model
    assert model.converged_ and model.degenerate_ is None
    assert model.params_["p"] == pytest.approx(6.0, rel=0.05)
    assert model.params_["q"] == pytest.approx(4.0, rel=0.1)
    assert model.params_["v"] == pytest.approx(15.0, rel=0.1)
    assert model.population_spend_ == pytest.approx(6.0 * 15.0 / 3.0, rel=0.03)


def test_gamma_gamma_on_cdnow_reproduces_the_note():
    """Fader & Hardie's note fits the 946 repeat customers' mean repeat spend: p 6.25, q 3.74, v 15.44
    (the same from the rounded means lifetimes ships)."""
    _, ours = cdnow_models()
    published = pd.read_csv(DATASETS / "cdnow_customers_summary_with_transactions.csv")
    from_file = GammaGammaModel().fit(published["x"], published["zbar"])
    for model in (ours, from_file):
        assert model.params_["p"] == pytest.approx(6.25, rel=0.01)
        assert model.params_["q"] == pytest.approx(3.74, rel=0.01)
        assert model.params_["v"] == pytest.approx(15.44, rel=0.01)
        assert model.converged_ and model.degenerate_ is None
    # Mean spend of the customers with no repeat purchase: the population's, p v / (q - 1).
    assert ours.expected_spend([0], [0.0])[0] == pytest.approx(6.25 * 15.44 / 2.74, rel=0.01)


def test_gamma_gamma_and_lifetime_value_agree_with_lifetimes_on_cdnow():
    data = cdnow_weekly()
    bg, gg = cdnow_models()
    x, tx, age = history(data)
    repeat = data[data["frequency"] > 0]
    theirs = lifetimes.GammaGammaFitter().fit(repeat["frequency"], repeat["monetary_value"])
    for name in ("p", "q", "v"):
        assert gg.params_[name] == pytest.approx(theirs.params_[name], rel=1e-3), name
    spend = theirs.conditional_expected_average_profit(data["frequency"], data["monetary_value"])
    assert np.allclose(gg.expected_spend(x, data["monetary_value"]), spend, rtol=1e-3)

    their_bg = lifetimes.BetaGeoFitter().fit(x, tx, age)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        their_clv = theirs.customer_lifetime_value(
            their_bg, x, tx, age, data["monetary_value"], time=12, discount_rate=0.01, freq="W"
        )
    clv = lifetime_value(bg, gg, x, tx, age, data["monetary_value"], months=12, period_days=7, monthly_discount=0.01)
    # lifetimes' weekly month is 4.345 weeks, ours 365.25 / 12 / 7 = 4.348: close, not equal.
    assert np.allclose(clv, their_clv, rtol=5e-3)
    assert clv.sum() == pytest.approx(their_clv.sum(), rel=2e-3)


def test_lifetime_value_is_expected_purchases_times_spend_discounted_by_month():
    data = cdnow_weekly().iloc[:200]
    bg, gg = cdnow_models()
    x, tx, age = history(data)
    m = data["monetary_value"]
    undiscounted = lifetime_value(bg, gg, x, tx, age, m, months=12, period_days=7)
    year = 12 * MONTH_DAYS / 7
    assert np.allclose(undiscounted, bg.expected_purchases(year, x, tx, age) * gg.expected_spend(x, m), rtol=1e-9)
    discounted = lifetime_value(bg, gg, x, tx, age, m, months=12, period_days=7, monthly_discount=0.02)
    assert (discounted < undiscounted).all()
    first_month = bg.expected_purchases(MONTH_DAYS / 7, x, tx, age) * gg.expected_spend(x, m) / 1.02
    assert np.allclose(
        lifetime_value(bg, gg, x, tx, age, m, months=1, period_days=7, monthly_discount=0.02), first_month
    )
    # The same customers in days, with alpha in days: the same value.
    daily = BetaGeoModel()
    daily.params_ = {**bg.params_, "alpha": bg.params_["alpha"] * 7}
    in_days = lifetime_value(daily, gg, x, tx * 7, age * 7, m, months=12, monthly_discount=0.02)
    assert np.allclose(in_days, discounted, rtol=1e-9)


def test_gamma_gamma_reports_spend_it_cannot_model():
    frequency = np.r_[np.ones(50), np.full(50, 3.0)]
    identical = GammaGammaModel().fit(frequency, np.full(100, 20.0))
    assert identical.degenerate_ is not None and "infinity" in identical.degenerate_
    assert np.isfinite(identical.expected_spend([0, 1, 3], [0, 20, 20])).all()

    rng = np.random.default_rng(7)
    heavy_tailed = 10 * (1 + rng.pareto(0.7, 2_000))  # the spend distribution has no mean
    model = GammaGammaModel().fit(rng.integers(1, 5, 2_000), heavy_tailed)
    assert model.degenerate_ is not None
    assert np.isfinite(model.expected_spend([0, 1, 4], [0, 10, 10])).all()


def test_gamma_gamma_rejects_spend_it_cannot_use():
    with pytest.raises(ValueError, match="must be > 0 for customers with repeat purchases"):
        GammaGammaModel().fit([1, 2, 3], [10.0, 0.0, 5.0])
    with pytest.raises(ValueError, match="finite amount >= 0"):
        GammaGammaModel().fit([1, 2, 3], [10.0, -4.0, 5.0])
    with pytest.raises(ValueError, match="whole number >= 0"):
        GammaGammaModel().fit([1, -2, 3], [10.0, 4.0, 5.0])
    with pytest.raises(ValueError, match="differ in shape"):
        GammaGammaModel().fit([1, 2, 3], [10.0, 4.0])
    with pytest.raises(ValueError, match="at least two customers with repeat purchases"):
        GammaGammaModel().fit([0, 0, 3], [0.0, 0.0, 5.0])
    bg, gg = cdnow_models()
    with pytest.raises(ValueError, match="months must be a whole number"):
        lifetime_value(bg, gg, [1], [2], [3], [10.0], months=0)
    with pytest.raises(ValueError, match="monthly_discount >= 0"):
        lifetime_value(bg, gg, [1], [2], [3], [10.0], monthly_discount=-0.1)


def test_the_package_does_not_depend_on_lifetimes():
    for module in (summary, bgnbd, gamma_gamma):
        tree = ast.parse(Path(module.__file__).read_text())
        imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        assert not {name for name in imported if name.split(".")[0] in {"lifetimes", "flask", "sqlalchemy"}}


def test_expected_purchases_stay_finite_when_the_dropout_hardly_varies():
    """A fit with a and b in the thousands (seen on demo data) overflows 2F1 at long horizons;
    the fixed-dropout limit takes over and joins the exact value where both exist."""
    model = BetaGeoModel()
    model.params_ = {"r": 0.54, "alpha": 35.9, "a": 1749.0, "b": 22879.0}
    x = np.array([0.0, 1, 3, 10, 50, 200])
    tx = np.array([0.0, 5, 300, 350, 360, 364])
    age = np.full(6, 365.0)
    ahead = [model.expected_purchases(t, x, tx, age) for t in (30, 90, 365, 2000)]
    assert all(np.all(np.isfinite(e)) and np.all(e >= 0) for e in ahead)
    assert all(np.all(later >= earlier) for earlier, later in itertools.pairwise(ahead))
    p = 1749.0 / (1749.0 + 22879.0 + x)
    alive = model.probability_alive(x, tx, age)
    limit = alive / p * (1 - ((35.9 + age) / (35.9 + age + p * 90)) ** (0.54 + x))
    np.testing.assert_allclose(ahead[1], limit, rtol=1e-3)
