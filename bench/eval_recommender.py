"""The recommender on real purchases: NDCG@10 and friends on the Online Retail file, the blend
beside popularity, buy-again alone and item-kNN alone.

Run from the repository root: ``.venv/bin/python -m bench.eval_recommender [--tune] [--csv FILE]``.

Protocol (the issue's): one global cut-off, train on the lines before 2011-09-09, test on the
next 13 weeks, top 10, members with purchases in both periods; two targets, items new to the
member (their past items out of candidates and truth) and all items (re-buys count). Targets:
new NDCG@10 >= 0.10 and >= 2x popularity; all NDCG@10 >= 0.37 with the blend at least as good
as buy-again alone.

The blend's hyper-parameters (the ``Recommender`` defaults) were chosen on a validation split
that ends where the test begins: train before 2011-06-10, validate on the 13 weeks to
2011-09-09. ``--tune`` reruns that grid search (about 5 minutes on 2 cores) and evaluates the
winner on the test period; the criterion is NDCG@10 new + NDCG@10 all. The test period is never
used to choose anything.

Cleaning (the data README's): no cancellations, quantity and price > 0, a customer id, stock
codes of 5 digits and an optional letter; 396,046 lines.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.common import Figure, machine_facts, print_facts, write_json
from loyalty_plugin.recommend.blend import Recommender
from loyalty_plugin.recommend.evaluate import Evaluation, default_models, score, split

RETAIL = Path("/work/shared/data/online_retail/online_retail.csv.gz")
TEST_CUTOFF = pd.Timestamp("2011-09-09")
WEEKS = 13
VALIDATION_CUTOFF = TEST_CUTOFF - pd.Timedelta(weeks=WEEKS)
#: Parameters that change the fit: each combination is fitted once.
FIT_GRID: dict[str, tuple[Any, ...]] = {
    "k": (20, 50),
    "weighting": ("cosine", "tfidf"),
    "half_life_days": (90.0, 180.0),
    "popular_half_life_days": (7.0, 14.0),
}
#: Parameters used only when recommending: scored on each fit.
SCORE_GRID: dict[str, tuple[Any, ...]] = {
    "similar_weight": (0.25, 0.5),
    "popular_weight": (0.1, 0.25),
    "trend_weight": (0.5, 1.0, 1.5),
}
TARGET_NEW = 0.10
TARGET_ALL = 0.37


def clean_online_retail(path: Path | str = RETAIL) -> pd.DataFrame:
    """Purchases (user, item, at, quantity) from the raw file, cleaned as its README says."""
    raw = pd.read_csv(path, dtype={"InvoiceNo": str, "StockCode": str, "CustomerID": str})
    keep = (
        ~raw["InvoiceNo"].str.startswith("C")
        & (raw["Quantity"] > 0)
        & (raw["UnitPrice"] > 0)
        & raw["CustomerID"].notna()
        & raw["StockCode"].str.fullmatch(r"\d{5}[A-Za-z]?")
    )
    lines = raw[keep]
    return pd.DataFrame(
        {
            "user": lines["CustomerID"].to_numpy(),
            "item": lines["StockCode"].to_numpy(),
            "at": pd.to_datetime(lines["InvoiceDate"]).to_numpy(),
            "quantity": lines["Quantity"].to_numpy(),
        }
    )


class Bar:
    """A one-line progress bar on stderr, redrawn at most every percent."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.shown = -1

    def __call__(self, done: int, total: int) -> None:
        percent = 100 * done // max(total, 1)
        if percent != self.shown:
            self.shown = percent
            filled = percent // 4
            end = "\n" if done >= total else ""
            print(f"\r{self.label} [{'#' * filled}{'.' * (25 - filled)}] {percent:3d}%", end=end, file=sys.stderr)


def tune(purchases: pd.DataFrame) -> tuple[dict[str, Any], pd.DataFrame]:
    """Grid search on the validation split; the best parameters and every combination's figures."""
    data = split(purchases, cutoff=VALIDATION_CUTOFF, weeks=WEEKS)
    rows = []
    fits = list(itertools.product(*FIT_GRID.values()))
    scorings = list(itertools.product(*SCORE_GRID.values()))
    bar = Bar("tuning on validation")
    for n, values in enumerate(fits):
        fitted = Recommender(**dict(zip(FIT_GRID, values, strict=True))).fit(data.train, now=data.cutoff)
        for m, weights in enumerate(scorings):
            model = copy.copy(fitted)
            for name, value in zip(SCORE_GRID, weights, strict=True):
                setattr(model, name, value)
            result = score({"blend": model}, data)
            params = dict(zip(FIT_GRID, values, strict=True)) | dict(zip(SCORE_GRID, weights, strict=True))
            rows.append(params | {"ndcg_new": result.ndcg("new", "blend"), "ndcg_all": result.ndcg("all", "blend")})
            bar(n * len(scorings) + m + 1, len(fits) * len(scorings))
    table = pd.DataFrame(rows)
    table["criterion"] = table["ndcg_new"] + table["ndcg_all"]
    table = table.sort_values("criterion", ascending=False, kind="stable").reset_index(drop=True)
    best = {name: _plain(table.loc[0, name]) for name in [*FIT_GRID, *SCORE_GRID]}
    return best, table


def _plain(value: Any) -> Any:
    if isinstance(value, float) and np.isnan(value):
        return None
    return value.item() if isinstance(value, np.generic) else value


def evaluate_on(purchases: pd.DataFrame, cutoff: pd.Timestamp, params: dict[str, Any], label: str) -> Evaluation:
    data = split(purchases, cutoff=cutoff, weeks=WEEKS)
    models = default_models(**params)
    started = time.perf_counter()
    for model in models.values():
        model.fit(data.train, now=data.cutoff)
    fitted = time.perf_counter() - started
    result = score(models, data, progress=Bar(label))
    print(f"\n== {label}: train before {cutoff.date()}, test the next {WEEKS} weeks, top 10 ==")
    print(f"{len(data.train):,} training lines; {len(models)} models fitted in {fitted:.1f} s")
    print(result.summary())
    return result


def verdicts(result: Evaluation) -> list[tuple[str, float, str, bool]]:
    new, all_ = result.ndcg("new", "blend"), result.ndcg("all", "blend")
    popular = result.ndcg("new", "popularity")
    recent = result.ndcg("new", "recent_popularity")
    buy_again = result.ndcg("all", "buy_again")
    return [
        ("blend NDCG@10, items new to the member", new, f">= {TARGET_NEW}", new >= TARGET_NEW),
        ("  ratio to popularity (all-time buyers)", new / popular, ">= 2", new >= 2 * popular),
        ("  ratio to recent popularity (for information)", new / recent, "", True),
        ("blend NDCG@10, all items", all_, f">= {TARGET_ALL}", all_ >= TARGET_ALL),
        ("  blend minus buy-again alone", all_ - buy_again, ">= 0", all_ >= buy_again),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(RETAIL), help="the Online Retail CSV (gzip)")
    parser.add_argument("--tune", action="store_true", help="rerun the grid search on the validation split")
    parser.add_argument("--csv", help="write the test table (and with --tune, the grid) to FILE (and FILE.grid.csv)")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    parser.add_argument("--quick", action="store_true", help="accepted for run_all; the evaluation is already quick")
    parser.add_argument("--pg-url", help="accepted for run_all; unused")
    args = parser.parse_args(argv)
    facts = machine_facts()
    print_facts(facts)
    if not Path(args.data).exists():
        print(f"Online Retail skipped: {args.data} is missing.")
        return 0
    purchases = clean_online_retail(args.data)
    print(
        f"{len(purchases):,} purchase lines, {purchases['user'].nunique():,} customers, "
        f"{purchases['item'].nunique():,} items"
    )

    params = Recommender().get_params()
    if args.tune:
        best, grid = tune(purchases)
        print(f"\ngrid search on validation ({len(grid)} combinations), best 10 by NDCG new + all:")
        print(grid.head(10).to_string(float_format=lambda x: f"{x:.4f}"))
        if args.csv:
            grid.to_csv(f"{args.csv}.grid.csv", index=False)
        params |= best
    params.pop("sources")
    print("\nblend parameters: " + ", ".join(f"{k}={v}" for k, v in params.items()))
    evaluate_on(purchases, VALIDATION_CUTOFF, params, "validation")
    result = evaluate_on(purchases, TEST_CUTOFF, params, "test")
    if args.csv:
        result.table.to_csv(args.csv)

    print("\ntargets on the test period:")
    figures = [Figure(f"{t} NDCG@10 {m}", v, "") for (t, m), v in result.table["ndcg"].items()]
    missed = []
    for name, value, target, ok in verdicts(result):
        verdict = "" if not target else "PASS" if ok else "FAIL"
        print(f"  {name:<48} {value:7.4f}  {target:>6}  {verdict}")
        figures.append(Figure(name.strip(), value, "", note=f"target {target}: {verdict}" if target else ""))
        if not ok:
            missed.append(name.strip())
    write_json(args.json, "eval_recommender", figures, facts, params=params)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
