"""Customer-value models: BG/NBD and Gamma-Gamma fitted and scored over 100k simulated members.

Target: fit + scoring (expected purchases, P(alive), expected spend, 12-month CLV) of 100k
members <= 10 s; ``--quick``: 10k members, the target scaled down in proportion.

The members' transactions are simulated from the models' own stories (Poisson purchases at a
Gamma rate, a Beta chance of leaving after each repeat purchase, Gamma spend per purchase) in
continuous time over up to two years, and summarised per day with ``rfm_summary`` (timed apart);
the fit is checked against the parameters simulated, so a fast wrong answer shows as WRONG. Then
the BG/NBD fit on CDNOW's calibration period (2,357 customers, weekly) against lifetimes'
``BetaGeoFitter`` on the same data, and the fitted parameters against the paper's.
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from bench.common import Figure, add_common_arguments, machine_facts, print_facts, print_figures, write_json
from loyalty_plugin.analytics.bgnbd import BetaGeoModel
from loyalty_plugin.analytics.gamma_gamma import GammaGammaModel, lifetime_value
from loyalty_plugin.analytics.summary import rfm_summary

UNTIL = pd.Timestamp("2024-12-31")
# Per day: ~5.5 purchases a year on average, a 17 % chance of leaving after each repeat purchase.
TRUTH = {"r": 0.9, "alpha": 60.0, "a": 0.8, "b": 4.0}
SPEND = {"p": 6.0, "q": 4.0, "v": 15.0}
CDNOW_PAPER = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}


def timed(work: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    result = work()
    return result, time.perf_counter() - started


def simulate_transactions(members: int, seed: int) -> pd.DataFrame:
    """One row per purchase (first included): customer, timestamp, amount."""
    rng = np.random.default_rng(seed)
    age = rng.uniform(30.0, 730.0, members)  # days observed, first purchase at day 0
    rate = rng.gamma(TRUTH["r"], 1 / TRUTH["alpha"], members)
    leave = rng.beta(TRUTH["a"], TRUTH["b"], members)
    nu = rng.gamma(SPEND["q"], 1 / SPEND["v"], members)
    who, when = [np.arange(members)], [np.zeros(members)]
    now = np.zeros(members)
    active = np.arange(members)
    while active.size:
        now[active] += rng.exponential(1.0, active.size) / rate[active]
        bought = active[now[active] <= age[active]]
        who.append(bought)
        when.append(now[bought].copy())
        active = bought[rng.random(bought.size) >= leave[bought]]
    customer = np.concatenate(who)
    offset = np.concatenate(when) - age[customer]  # days before UNTIL
    return pd.DataFrame(
        {
            "customer": customer,
            "at": UNTIL + pd.to_timedelta(np.round(offset * 86_400), unit="s"),
            "amount": np.round(rng.gamma(SPEND["p"], 1 / nu[customer]), 2),
        }
    )


def close(fitted: dict[str, float], truth: dict[str, float], rel: float) -> bool:
    return all(abs(fitted[k] / v - 1) <= rel for k, v in truth.items())


def show(params: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.4g}" for k, v in params.items())


def bench_members(members: int, seed: int) -> list[Figure]:
    print(f"\n== {members:,} simulated members, BG/NBD {show(TRUTH)} per day, Gamma-Gamma {show(SPEND)}", flush=True)
    transactions, simulate_seconds = timed(lambda: simulate_transactions(members, seed))
    data, summary_seconds = timed(lambda: rfm_summary(transactions, until=UNTIL))
    x, tx, age, m = data["frequency"], data["recency"], data["T"], data["monetary_value"]
    print(
        f"simulated {len(transactions):,} transactions in {simulate_seconds:.2f} s; rfm_summary "
        f"{summary_seconds:.2f} s: {len(data):,} members, {(x > 0).mean():.0%} with a repeat purchase, "
        f"mean frequency {x.mean():.2f}",
        flush=True,
    )
    bg, bg_seconds = timed(lambda: BetaGeoModel().fit(x, tx, age))
    gg, gg_seconds = timed(lambda: GammaGammaModel().fit(x, m))
    (expected, alive), score_seconds = timed(
        lambda: (bg.expected_purchases(90, x, tx, age), bg.probability_alive(x, tx, age))
    )
    spend, spend_seconds = timed(lambda: gg.expected_spend(x, m))
    clv, clv_seconds = timed(lambda: lifetime_value(bg, gg, x, tx, age, m, months=12, monthly_discount=0.01))
    print(f"BG/NBD: {show(bg.params_)}; log-likelihood {bg.log_likelihood_:,.1f}; degenerate: {bg.degenerate_}")
    print(f"Gamma-Gamma: {show(gg.params_)}; degenerate: {gg.degenerate_}")
    print(
        f"scores: expected purchases in 90 days mean {expected.mean():.3f}, P(alive) median {np.median(alive):.3f}, "
        f"expected spend mean {spend.mean():.2f}, 12-month CLV mean {clv.mean():.2f} (p99 {np.percentile(clv, 99):.0f})"
    )
    # Sampling error, and days floored with same-day purchases merged: close to the truth, not exact.
    rel = 0.1 * max(1.0, (100_000 / members) ** 0.5)
    bg_ok = bg.degenerate_ is None and close(bg.params_, TRUTH, rel)
    gg_ok = gg.degenerate_ is None and close(gg.params_, SPEND, rel)
    finite = all(np.isfinite(v).all() for v in (expected, alive, spend, clv))
    total = bg_seconds + gg_seconds + score_seconds + spend_seconds + clv_seconds
    n = f"{members // 1000}k"
    return [
        Figure(f"rfm_summary, {len(transactions):,} transactions", summary_seconds, "s"),
        Figure(f"BG/NBD fit, {n} members", bg_seconds, "s", None, f"within {rel:.0%} of the truth", bg_ok),
        Figure(f"Gamma-Gamma fit, {n} members", gg_seconds, "s", None, f"within {rel:.0%} of the truth", gg_ok),
        Figure(f"E[purchases 90 d] + P(alive), {n}", score_seconds, "s"),
        Figure(f"expected spend, {n}", spend_seconds, "s"),
        Figure(f"12-month CLV, {n}", clv_seconds, "s"),
        Figure(f"fit + scoring, {n} members", total, "s", 10.0 * members / 100_000, "all finite", finite),
    ]


def bench_cdnow(repeats: int) -> list[Figure]:
    print("\n== CDNOW calibration period (39 weeks), BG/NBD: ours against lifetimes' BetaGeoFitter", flush=True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from importlib.resources import files

            from lifetimes import BetaGeoFitter

            sample = files("lifetimes.datasets") / "CDNOW_sample.txt"
    except Exception as exc:  # lifetimes is a test-only dependency: the bench runs without it
        print(f"lifetimes does not import ({type(exc).__name__}: {exc}); CDNOW comparison skipped")
        return []
    raw = pd.read_csv(sample, sep=r"\s+", header=None, names=["master", "customer", "date", "cds", "amount"], dtype=str)
    raw = raw.assign(at=pd.to_datetime(raw["date"], format="%Y%m%d"), amount=raw["amount"].astype(float))
    data = rfm_summary(raw, until="1997-09-30", period_days=7)
    x, tx, age = data["frequency"], data["recency"], data["T"]
    ours = [timed(lambda: BetaGeoModel().fit(x, tx, age)) for _ in range(repeats)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = [timed(lambda: BetaGeoFitter().fit(x, tx, age)) for _ in range(repeats)]
    model, their_model = ours[0][0], theirs[0][0]
    our_best, their_best = min(s for _, s in ours), min(s for _, s in theirs)
    their_params = {k: float(v) for k, v in their_model.params_.items()}
    gap = max(
        np.max(np.abs(model.expected_purchases(t, x, tx, age) / their_model.predict(t, x, tx, age) - 1))
        for t in (1, 39, 52)
    )
    alive_gap = np.max(
        np.abs(model.probability_alive(x, tx, age) - their_model.conditional_probability_alive(x, tx, age))
    )
    print(f"{len(data):,} customers, {(x > 0).sum():,} with a repeat purchase")
    print(f"ours:      {show(model.params_)}; log-likelihood {model.log_likelihood_:.2f}; best of {repeats}")
    print(f"lifetimes: {show(their_params)}")
    print(f"paper:     {show(CDNOW_PAPER)}; log-likelihood -9582.4")
    print(
        f"predictions, ours against lifetimes: expected purchases (t = 1, 39, 52 weeks) max relative gap {gap:.2e}, "
        f"P(alive) max absolute gap {alive_gap:.2e}"
    )
    paper_ok = close(model.params_, CDNOW_PAPER, 0.01) and abs(model.log_likelihood_ + 9582.4) < 0.1
    return [
        Figure("BG/NBD fit, CDNOW (ours)", our_best * 1000, "ms", None, "paper's figures within 1 %", paper_ok),
        Figure(
            "BG/NBD fit, CDNOW (lifetimes)", their_best * 1000, "ms", None, f"ours {their_best / our_best:.1f}x faster"
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_arguments(parser)
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--quick", action="store_true", help="10k members")
    args = parser.parse_args()
    if args.quick:
        args.members = 10_000
    facts = machine_facts()
    print_facts(facts)
    figures = bench_members(args.members, args.seed)
    figures += bench_cdnow(repeats=5)
    print_figures("customer-value models", figures)
    write_json(args.json, "value_models", figures, facts)


if __name__ == "__main__":
    main()
