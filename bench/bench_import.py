"""Bulk import of order history: ``flask loyalty import-orders FILE.csv`` into a fresh SQLite file.

Target (SPEC §7): 1,000,000 order lines (200k orders) in <= 60 s on SQLite.

The CSV comes from ``generate.py`` (40k customers with Gamma-distributed purchase rates, 1 to
~15 lines per order, two years of history, orders in time order) and is kept in the work
directory for the next run. The command runs as a user would run it, in its own process, and
the figure is its wall time (start-up, the line count for the progress bar and both passes
over the file included). A second run of the same file must import nothing. ``--in-process``
calls ``loyalty_plugin.importer.import_orders`` directly instead (with ``--profile``, under
cProfile).
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import (
    BENCH_DIR,
    Figure,
    add_common_arguments,
    machine_facts,
    make_app,
    print_facts,
    print_figures,
    write_json,
)
from bench.generate import prepare_database, write_order_csv


def order_csv(args: argparse.Namespace) -> Path:
    """The generated file, made once per size and seed (it is deterministic)."""
    path = Path(args.workdir) / f"orders_{args.lines}_{args.orders}_{args.seed}.csv"
    if path.exists() and not args.regenerate:
        print(f"using {path} ({path.stat().st_size / 1e6:.0f} MB)")
        return path
    made = write_order_csv(path, seed=args.seed, orders=args.orders, lines=args.lines, customers=args.customers)
    print(
        f"wrote {path}: {made.lines:,} lines, {made.orders:,} orders, {made.customers:,} customers, "
        f"{made.first} .. {made.last}, {path.stat().st_size / 1e6:.0f} MB in {made.seconds:.1f} s"
    )
    return path


def run_cli(url: str, path: Path, extra: list[str]) -> tuple[float, str]:
    env = dict(os.environ, LOYALTY_BENCH_URL=url, LOYALTY_BENCH_INSTANCE=tempfile.gettempdir())
    flask = Path(sys.executable).with_name("flask")
    command = [str(flask), "--app", "bench.common:cli_app", "loyalty", "import-orders", str(path), *extra]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=BENCH_DIR.parent, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
    return seconds, done.stdout


def run_in_process(url: str, path: Path, enroll: bool, profile: bool) -> tuple[float, str]:
    from loyalty_plugin import importer

    with tempfile.TemporaryDirectory() as instance:
        app = make_app(url, instance)
        state = app.extensions["loyalty"]
        profiler = cProfile.Profile() if profile else None
        with app.app_context():
            started = time.perf_counter()
            if profiler:
                profiler.enable()
            report = importer.import_orders(
                state.store,
                path,
                mapping=None,
                enroll=enroll,
                award_points=False,
                settings=state.settings,
                now=state.clock(),
                progress=None,
            )
            if profiler:
                profiler.disable()
            seconds = time.perf_counter() - started
        state.store.dispose()
    if profiler:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(20)
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)
    return seconds, report.summary()


def number(summary: str, label: str) -> int:
    found = re.search(rf"^\s*{re.escape(label)}\s+([\d,]+)", summary, re.MULTILINE)
    return int(found.group(1).replace(",", "")) if found else -1


def stored(path: Path) -> dict[str, Any]:
    with sqlite3.connect(path) as conn:
        return {
            table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("loyalty_orders", "loyalty_order_lines", "loyalty_members")
        } | {"file MB": round(sum(p.stat().st_size for p in path.parent.glob(path.name + "*")) / 1e6)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_arguments(parser)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=200_000)
    parser.add_argument("--customers", type=int, default=40_000)
    parser.add_argument("--regenerate", action="store_true", help="write the CSV again even if it exists")
    parser.add_argument("--enroll", action="store_true", help="import with --enroll (every customer a member)")
    parser.add_argument("--in-process", action="store_true", help="call importer.import_orders, not the CLI")
    parser.add_argument("--profile", action="store_true", help="with --in-process: cProfile the first run")
    parser.add_argument("--quick", action="store_true", help="100k lines, 20k orders, 4k customers")
    args = parser.parse_args()
    if args.quick:
        args.lines, args.orders, args.customers = 100_000, 20_000, 4_000
    facts = machine_facts()
    print_facts(facts)
    csv_path = order_csv(args)
    db = Path(args.workdir) / "bench_import.sqlite"
    url = f"sqlite:///{db}"
    prepare_database(url)
    how = "importer.import_orders" if args.in_process else "flask loyalty import-orders"
    extra = ["--enroll"] if args.enroll else []
    target = 60.0 * args.lines / 1_000_000
    figures = []
    for attempt in (1, 2):
        if args.in_process:
            seconds, summary = run_in_process(url, csv_path, args.enroll, args.profile and attempt == 1)
        else:
            seconds, summary = run_cli(url, csv_path, extra)
        counts = stored(db)
        imported = number(summary, "lines imported")
        print(f"\nrun {attempt}: {how} {csv_path.name}{' --enroll' if args.enroll else ''}: {seconds:.1f} s wall")
        print("\n".join("  " + line for line in summary.strip().splitlines()))
        print(f"  in the database: {counts}", flush=True)
        if attempt == 1:
            ok = imported == args.lines and counts["loyalty_order_lines"] == args.lines
            figures.append(
                Figure(
                    f"import {args.lines:,} lines, first run",
                    seconds,
                    "s",
                    target,
                    f"{imported:,} lines imported" + ("" if ok else " (NOT ALL)"),
                    ok,
                )
            )
        else:
            unchanged = imported == 0 and counts["loyalty_order_lines"] == args.lines
            figures.append(
                Figure(
                    "import again (must change nothing)",
                    seconds,
                    "s",
                    None,
                    f"{imported:,} lines imported" + ("" if unchanged else " (CHANGED THINGS)"),
                    unchanged,
                )
            )
    print_figures("bulk import into SQLite", figures)
    write_json(args.json, "import", figures, facts)


if __name__ == "__main__":
    main()
