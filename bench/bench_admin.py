"""Admin overview and tier report at 100k members and ~2M ledger entries: latency per request.

Target (issue 6): p95 < 300 ms for ``GET <prefix>/admin/`` (``loyalty_admin.overview``) and
``GET <prefix>/admin/tiers`` (``loyalty_admin.tiers``, the default period of twelve months).

The data is the dashboard benchmark's shop (``bench_dashboard.simulate_shop``: ``generate.py``'s
members, orders and lines plus the ledger, lots and coupons the plugin's rules would have
written), bulk-loaded into ``bench/results/bench_admin.sqlite`` and the PostgreSQL bench
database, and checked with ``ledger.verify``. ``--reuse-data`` measures the databases as the
last run left them; ``--sqlite-file`` measures another bench file already loaded (for example
``bench/results/bench_dashboard.sqlite``), copied first with SQLite's backup API so the source
is never written.

Each page is requested in this process through Flask's test client by a logged-in admin (the
host's Flask-Login with any id an admin), so the figure is the page's own work: its SQL and its
rendering, without a network or a server in between. Beside the wall time, the CPU time of this
process per request (``time.process_time``): on a shared machine other load stretches the wall
time, not that; on SQLite the database work is in this process, on PostgreSQL it is not.

The first request of a worker is shown apart: it sums the whole ledger by month once
(``admin_ledger_months``); every later request adds only the newest entries. Each response
must be a 200 showing the member count the database holds.
"""

from __future__ import annotations

import argparse
import re
import sqlite3
import tempfile
import time
from pathlib import Path

from flask import Flask
from sqlalchemy.engine import make_url

from bench.common import (
    Figure,
    add_common_arguments,
    machine_facts,
    make_app,
    percentiles,
    print_facts,
    print_figures,
    write_json,
)

P95_TARGET_MS = 300.0
PAGES = {"overview": "/loyalty/admin/", "tier report": "/loyalty/admin/tiers"}
MEMBERS = re.compile(r'data-testid="members" data-value="(\d+)"')
TIER_MEMBERS = re.compile(r'<tr data-tier="\w+"><th scope="row">[^<]*</th><td class="num" data-value="(\d+)"')


class Admin:
    """Any id is a logged-in admin."""

    is_authenticated = True
    is_active = True
    is_anonymous = False
    is_admin = True

    def __init__(self, user_id: str) -> None:
        self.id = user_id

    def get_id(self) -> str:
        return self.id


def admin_app(url: str, instance: Path) -> Flask:
    from flask_login import LoginManager

    app = make_app(url, instance)
    LoginManager(app).user_loader(Admin)
    return app


def stored_members(url: str) -> int:
    from sqlalchemy import func, select

    from loyalty_plugin.database import make_engine
    from loyalty_plugin.models import Member

    engine = make_engine(url)
    with engine.connect() as conn:
        count = int(conn.scalar(select(func.count()).select_from(Member).where(Member.erased_at.is_(None))) or 0)
    engine.dispose()
    return count


def shown_members(page: str, name: str) -> int | None:
    if name == "overview":
        found = MEMBERS.search(page)
        return int(found.group(1)) if found else None
    counts = TIER_MEMBERS.findall(page)
    return sum(map(int, counts)) if counts else None


def measure(label: str, url: str, args: argparse.Namespace) -> list[Figure]:
    expected = stored_members(url)
    if not expected:
        raise SystemExit(f"no members at {url}: run without --reuse-data first.")
    figures = []
    with tempfile.TemporaryDirectory() as instance:
        app = admin_app(url, Path(instance))
        client = app.test_client()
        with client.session_transaction() as session:
            session["_user_id"] = "bench-admin"
        for name, path in PAGES.items():
            times, cpu, wrong = [], [], 0
            for i in range(args.warmup + args.requests):
                started, cpu_started = time.perf_counter(), time.process_time()
                response = client.get(path)
                elapsed = (time.perf_counter() - started) * 1000
                cpu_ms = (time.process_time() - cpu_started) * 1000
                page = response.get_data(as_text=True)
                if response.status_code != 200 or shown_members(page, name) != expected:
                    wrong += 1
                if i == 0:
                    figures.append(Figure(f"{label} {name}: first request of a worker", elapsed, "ms", None, ""))
                elif i >= args.warmup:
                    times.append(elapsed)
                    cpu.append(cpu_ms)
            p50, p95, worst = percentiles(times, 50, 95, 100)
            (cpu50,) = percentiles(cpu, 50)
            note = f"{len(times)} requests, p50 {p50:.0f} ms, max {worst:.0f} ms" + (
                f", {wrong} WRONG" if wrong else ""
            )
            figures.append(Figure(f"{label} {name} p95", p95, "ms", P95_TARGET_MS, note, correct=not wrong))
            figures.append(Figure(f"{label} {name}: CPU of this process, median", cpu50, "ms", None, ""))
            print(
                f"  {label} {name}: p50 {p50:.1f} ms, p95 {p95:.1f} ms, max {worst:.1f} ms, "
                f"CPU of this process p50 {cpu50:.1f} ms, bad responses {wrong}"
            )
        app.extensions["loyalty"].store.dispose()
    return figures


def load_fresh(url: str, members: int, seed: int) -> str:
    """Simulate and bulk-load the dashboard benchmark's shop; a line saying what was loaded."""
    from bench.bench_dashboard import data_now, load, shop_rows, simulate_shop

    shop = simulate_shop(members, seed=seed, now=data_now())
    loaded = load(url, shop)
    if loaded.discrepancies:
        raise SystemExit(f"ledger.verify found {loaded.discrepancies} difference(s) after loading {url}")
    return f"{shop_rows(shop)}; simulated in {shop.seconds:.0f} s, loaded in {loaded.seconds:.0f} s"


def copy_sqlite(source: str, target: Path) -> None:
    """A consistent copy of a bench file (SQLite's backup API; the source is only read)."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    with sqlite3.connect(f"file:{source}?mode=ro", uri=True) as src, sqlite3.connect(target) as dst:
        src.backup(dst)


def rows_of(url: str) -> str:
    from bench.bench_dashboard import shop_in_database, shop_rows

    return shop_rows(shop_in_database(url))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_arguments(parser)
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--quick", action="store_true", help="10k members, fewer requests")
    parser.add_argument("--requests", type=int, default=40, help="timed requests per page")
    parser.add_argument("--warmup", type=int, default=3, help="untimed requests per page first")
    parser.add_argument("--reuse-data", action="store_true", help="measure the databases as the last run left them")
    parser.add_argument("--sqlite-file", help="measure a copy of this loaded bench SQLite file instead of loading")
    args = parser.parse_args()
    if args.quick:
        args.members, args.requests = min(args.members, 10_000), min(args.requests, 15)
    if args.pg_url and "bench" not in (make_url(args.pg_url).database or ""):
        raise SystemExit(f"Refusing {args.pg_url}: bench databases must have 'bench' in the name.")
    facts = machine_facts(args.pg_url or None)
    print_facts(facts)
    path = Path(args.workdir) / "bench_admin.sqlite"
    targets = [("SQLite", f"sqlite:///{path}")] + ([("PostgreSQL", args.pg_url)] if args.pg_url else [])
    figures: list[Figure] = []
    for label, url in targets:
        if label == "SQLite" and args.sqlite_file:
            copy_sqlite(args.sqlite_file, path)
            print(f"\n{label}: a copy of {args.sqlite_file}: {rows_of(url)}", flush=True)
        elif args.reuse_data:
            print(f"\n{label}: as the last run left it: {rows_of(url)}", flush=True)
        else:
            print(f"\n{label}: loading {args.members:,} members ...", flush=True)
            print(f"{label}: {load_fresh(url, args.members, args.seed)}", flush=True)
        figures += measure(label, url, args)
    print_figures(f"admin pages, in-process (target: p95 < {P95_TARGET_MS:g} ms)", figures)
    write_json(args.json, "admin", figures, facts)


if __name__ == "__main__":
    main()
