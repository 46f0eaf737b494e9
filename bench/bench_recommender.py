"""The recommender at scale: fit time and peak memory of the item-similarity model beside
``implicit``'s ``CosineRecommender`` on the same matrix, and top-10 query latency in-process.

Sizes: 1M interactions (200k users x 20k items) and 5M (1M users x 100k items); ``--quick``:
100k (20k users x 2k items), targets scaled to a tenth. Targets at 1M: ``ItemSimilarity.fit``
<= 1 s, no slower than implicit, <= 150 MB extra; query p99 <= 2 ms. At 5M the ratio is reported.

Interactions are generated with a realistic skew: user activity log-normal (most members buy
once or twice, a few dozens of times), item popularity Zipf-like, and 60 % of each member's
purchases in a home category of 100 items (the co-purchase structure the model is for), over
a year. The same binary users x items matrix goes to both models (K = 20 neighbours each,
the ``Recommender`` default).

Every measurement runs in a fresh child process, which generates the data, then resets the
kernel's peak-RSS counter (``/proc/self/clear_refs``) and times the fit: "peak extra" is the
peak resident set during the fit minus the resident set before it, so it counts every
allocation, numpy's, scipy's and implicit's C++ alike (tracemalloc would miss the last). Fit
times are the median of 3 fits. BLAS and OpenMP are set to one thread (``OPENBLAS_NUM_THREADS``,
``OMP_NUM_THREADS``, ``MKL_NUM_THREADS``); the product's own threads are set explicitly: ours
(``sparse_dot_topn``, ``n_threads``) and implicit's (``num_threads``) each run with one thread
and with every core, and each is compared with the other at the same thread count. Query
latency: ``Recommender.fit`` on the interactions as a DataFrame (string ids), then
``recommend(user, 10, now=...)`` for 3,000 members drawn at random (plus 10 % unknown ids),
after 300 warm-up calls.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from bench.common import Figure, machine_facts, percentiles, print_facts, print_figures, write_json
from loyalty_plugin.recommend.blend import Recommender
from loyalty_plugin.recommend.similarity import ItemSimilarity

SIZES = {"1M": (200_000, 20_000, 1_000_000), "5M": (1_000_000, 100_000, 5_000_000)}
QUICK_SIZES = {"100k": (20_000, 2_000, 100_000)}
NOW = pd.Timestamp("2026-01-01")
K = 20
CATEGORY = 100
REPEATS = 3
QUERIES = 3_000
#: Every child runs with one BLAS/OpenMP thread (implicit's own ``num_threads`` still applies).
THREADS = {name: "1" for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}


def interactions(users: int, items: int, n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(user, item, day offset) codes, skewed as the module docstring says."""
    rng = np.random.default_rng(seed)
    activity = rng.lognormal(0.0, 1.2, users)
    user = rng.choice(users, size=n, p=activity / activity.sum())
    rank = np.arange(1, items + 1, dtype=float)
    popularity = 1.0 / rank**0.9
    global_item = rng.permutation(items)[rng.choice(items, size=n, p=popularity / popularity.sum())]
    within = 1.0 / np.arange(1, CATEGORY + 1, dtype=float) ** 0.9
    home = rng.integers(0, max(items // CATEGORY, 1), users)
    home_item = home[user] * CATEGORY + rng.choice(CATEGORY, size=n, p=within / within.sum())
    item = np.where(rng.random(n) < 0.6, np.minimum(home_item, items - 1), global_item)
    day = rng.integers(0, 365, n)
    return user, item, day


def binary_matrix(user: np.ndarray, item: np.ndarray, users: int, items: int) -> sparse.csr_matrix:
    matrix = sparse.csr_matrix((np.ones(len(user), dtype=np.float32), (user, item)), shape=(users, items))
    matrix.data[:] = 1.0
    return matrix


def frame(user: np.ndarray, item: np.ndarray, day: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user": pd.Categorical.from_codes(user, [f"m{n}" for n in range(user.max() + 1)]).astype(str),
            "item": pd.Categorical.from_codes(item, [f"sku{n}" for n in range(item.max() + 1)]).astype(str),
            "at": NOW - pd.to_timedelta(day, unit="D"),
        }
    )


def _rss_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1])
    return 0


def measured(fit: Any) -> dict[str, float]:
    """Seconds (median of ``REPEATS``) and peak extra MB of ``fit()``, the first run's memory."""
    before = _rss_kb("VmRSS:")
    try:
        Path("/proc/self/clear_refs").write_text("5")
        peak_of = "VmHWM"
    except OSError:
        peak_of = "ru_maxrss (not reset: an upper bound)"
    times = []
    for n in range(REPEATS):
        started = time.perf_counter()
        result = fit()
        times.append(time.perf_counter() - started)
        if n == 0:
            peak = _rss_kb("VmHWM:") if peak_of == "VmHWM" else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            extra = (peak - before) / 1024
        del result
    return {"seconds": statistics.median(times), "extra_mb": extra, "peak": peak_of}


def child(what: str, size: str, seed: int) -> dict[str, Any]:
    users, items, n = {**SIZES, **QUICK_SIZES}[size]
    user, item, day = interactions(users, items, n, seed)
    if what.startswith("ours"):
        matrix = binary_matrix(user, item, users, items)
        threads = 1 if what == "ours-1" else os.cpu_count()
        return measured(lambda: ItemSimilarity(K, n_threads=threads).fit(matrix)) | {"nnz": matrix.nnz}
    if what.startswith("implicit"):
        from implicit.nearest_neighbours import CosineRecommender

        matrix = binary_matrix(user, item, users, items)
        threads = 1 if what == "implicit-1" else 0
        return measured(lambda: CosineRecommender(K=K, num_threads=threads).fit(matrix, show_progress=False))
    purchases = frame(user, item, day)
    if what == "recommender":
        return measured(lambda: Recommender(k=K).fit(purchases, now=NOW))
    return latency(Recommender(k=K).fit(purchases, now=NOW), users, seed)


def latency(model: Recommender, users: int, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed + 1)
    names = [f"m{n}" for n in rng.integers(0, users, QUERIES)]
    names += [f"stranger{n}" for n in range(QUERIES // 10)]
    rng.shuffle(names)
    for name in names[:300]:
        model.recommend(name, 10, now=NOW)
    samples = []
    for name in names:
        started = time.perf_counter_ns()
        model.recommend(name, 10, now=NOW)
        samples.append((time.perf_counter_ns() - started) / 1e6)
    p50, p99 = percentiles(samples, 50, 99)
    return {"p50_ms": p50, "p99_ms": p99, "queries": len(samples)}


def run_child(what: str, size: str, seed: int) -> dict[str, Any] | None:
    command = [sys.executable, "-m", "bench.bench_recommender", "--child", what, "--size", size, "--seed", str(seed)]
    done = subprocess.run(
        command, capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent, env=os.environ | THREADS
    )
    if done.returncode:
        print(f"  {what} at {size} failed:\n{done.stderr[-2000:]}", flush=True)
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def implicit_available() -> bool:
    try:
        import implicit.nearest_neighbours  # noqa: F401
    except ImportError:
        return False
    return True


def bench_size(size: str, seed: int, scale: float, has_implicit: bool) -> list[Figure]:
    users, items, _ = {**SIZES, **QUICK_SIZES}[size]
    print(f"\n== {size} interactions: {users:,} users x {items:,} items, K={K} ==", flush=True)
    ours = run_child("ours-1", size, seed)
    ours_all = run_child("ours-all", size, seed)
    implicit = run_child("implicit-1", size, seed) if has_implicit else None
    implicit_all = run_child("implicit-all", size, seed) if has_implicit else None
    end_to_end = run_child("recommender", size, seed)
    queries = run_child("latency", size, seed)
    if not has_implicit:
        print("  implicit is not importable: its columns are skipped (pip install implicit)")
    rows = [("ItemSimilarity.fit (ours, 1 thread)", ours), ("implicit CosineRecommender, 1 thread", implicit)]
    rows += [(f"ItemSimilarity.fit (ours, {os.cpu_count()} threads)", ours_all)]
    rows += [(f"implicit CosineRecommender, {os.cpu_count()} threads", implicit_all)]
    rows += [("Recommender.fit (ours, from a DataFrame)", end_to_end)]
    print(f"  {'model':<44} {'fit s':>8} {'peak extra MB':>14}")
    for name, figures in rows:
        if figures:
            print(f"  {name:<44} {figures['seconds']:>8.3f} {figures['extra_mb']:>14.1f}")
    if ours:
        print(f"  matrix: {ours['nnz']:,} distinct (user, item) pairs; peak measured by {ours['peak']}")
    if queries:
        print(
            f"  Recommender.recommend top-10: p50 {queries['p50_ms']:.3f} ms, p99 {queries['p99_ms']:.3f} ms "
            f"over {queries['queries']:,} queries"
        )
    big = size == "5M"
    out = []
    if ours:
        out.append(Figure(f"{size} ItemSimilarity fit", ours["seconds"], "s", None if big else 1.0 * scale))
        out.append(Figure(f"{size} ItemSimilarity peak extra", ours["extra_mb"], "MB", None if big else 150 * scale))
    if ours and implicit:
        for label, mine, other in (("1 thread", ours, implicit), ("all cores", ours_all, implicit_all)):
            if mine and other:
                ratio = mine["seconds"] / other["seconds"]
                out.append(Figure(f"{size} fit time ours / implicit ({label})", ratio, "x", None if big else 1.0))
        out.append(Figure(f"{size} implicit fit (1 thread)", implicit["seconds"], "s"))
        out.append(Figure(f"{size} implicit peak extra", implicit["extra_mb"], "MB"))
    if end_to_end:
        out.append(Figure(f"{size} Recommender fit (DataFrame)", end_to_end["seconds"], "s"))
        out.append(Figure(f"{size} Recommender peak extra", end_to_end["extra_mb"], "MB"))
    if queries:
        out.append(Figure(f"{size} query top-10 p50", queries["p50_ms"], "ms"))
        out.append(Figure(f"{size} query top-10 p99", queries["p99_ms"], "ms", None if big else 2.0))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="100k interactions, targets scaled to a tenth")
    parser.add_argument("--only", choices=[*SIZES, *QUICK_SIZES], help="one size")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", help="also write the figures to this JSON file")
    parser.add_argument("--pg-url", help="accepted for run_all; unused")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--size", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.size, args.seed)))
        return 0
    facts = machine_facts()
    print_facts(facts)
    print("children run with " + ", ".join(f"{k}={v}" for k, v in THREADS.items()))
    sizes = [args.only] if args.only else list(QUICK_SIZES if args.quick else SIZES)
    has_implicit = implicit_available()
    figures = []
    for size in sizes:
        figures += bench_size(size, args.seed, 0.1 if size in QUICK_SIZES else 1.0, has_implicit)
    print_figures("recommender", figures)
    write_json(args.json, "bench_recommender", figures, facts)
    return 1 if any(f.verdict == "FAIL" for f in figures) else 0


if __name__ == "__main__":
    sys.exit(main())
