"""Run every benchmark, each in its own process, and print one table of figures against targets.

``python -m bench.run_all`` (from the repository root) runs the SPEC sizes: 6-7 minutes on
2 cores, half of it loading 1M members into PostgreSQL. ``--quick`` runs small sizes in about
a minute, with the targets scaled down in proportion. Each benchmark's own output is shown as
it runs and kept in ``bench/results/<name>.log``; its figures go to ``bench/results/<name>.json``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

from bench.common import BENCH_DIR, PG_URL, RESULTS_DIR, Figure, machine_facts, print_facts, print_figures

BENCHES = {
    "record_order": "bench.bench_record_order",
    "tiers": "bench.bench_tiers",
    "import": "bench.bench_import",
    "value_models": "bench.bench_value_models",
    "churn_scan": "bench.bench_churn_scan",
    "dashboard": "bench.bench_dashboard",
    "recommender": "bench.bench_recommender",
    "eval_recommender": "bench.eval_recommender",
    "admin": "bench.bench_admin",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, scaled targets")
    parser.add_argument("--only", help=f"comma-separated subset of: {', '.join(BENCHES)}")
    parser.add_argument("--pg-url", default=PG_URL, help="PostgreSQL bench database (emptied!)")
    parser.add_argument("--skip-pg", action="store_true", help="SQLite only")
    args = parser.parse_args()
    chosen = args.only.split(",") if args.only else list(BENCHES)
    unknown = set(chosen) - set(BENCHES)
    if unknown:
        raise SystemExit(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    pg_url = "" if args.skip_pg else args.pg_url
    RESULTS_DIR.mkdir(exist_ok=True)
    facts = machine_facts(pg_url or None)
    figures: list[Figure] = []
    failed = []
    started = time.perf_counter()
    for name in chosen:
        out = RESULTS_DIR / f"{name}.json"
        out.unlink(missing_ok=True)
        command = [sys.executable, "-m", BENCHES[name], "--json", str(out)]
        command += ["--quick"] if args.quick else []
        command += [] if name == "import" else ["--pg-url", pg_url]
        print(f"\n##### {name}: python {' '.join(command[1:])}", flush=True)
        log = RESULTS_DIR / f"{name}.log"
        with (
            log.open("w") as sink,
            subprocess.Popen(
                command, cwd=BENCH_DIR.parent, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            ) as proc,
        ):
            assert proc.stdout is not None
            for line in proc.stdout:
                sys.stdout.write(line)
                sink.write(line)
        if proc.returncode or not out.exists():
            failed.append(name)
            continue
        figures += [Figure(**f) for f in json.loads(out.read_text())["figures"]]
    print("\n" + "=" * 100)
    print_facts(facts)
    title = f"all benchmarks{' (quick: targets scaled to the sizes)' if args.quick else ''}, "
    print_figures(title + f"{time.perf_counter() - started:.0f} s in all", figures)
    misses = [f"{f.name} ({f.verdict})" for f in figures if f.verdict in ("FAIL", "WRONG")]
    if failed:
        print(f"\ndid not finish: {', '.join(failed)} (see bench/results/<name>.log)")
    if misses:
        print(f"\nmissed targets or wrong results: {'; '.join(misses)}")
    sys.exit(1 if failed or misses else 0)


if __name__ == "__main__":
    main()
