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

The member figures and the ledger's monthly totals are kept in the database (migration 0006,
``admin_figures``): a page refreshes them (recomputing only members changed since, or whose
figures expired with time) and reads a few dozen group totals. The bench therefore shows:
- the schema upgrade to head (``--reuse-data`` databases were loaded at an older revision);
- the first request after the upgrade, which builds the kept figures for every member and
  folds the whole ledger: once per database (the bench forgets them first, so every run
  measures it);
- per page, the first request of a fresh worker (a new app) and then the timed requests;
- the overview again with ``--writes`` new orders and a refund recorded through the plugin's
  API before each timed request, so each refresh has real changes to fold in. Those orders
  stay in the bench database (ids ``bench-admin-<time>-<n>``);
- the tier report for a period other than the default (summed from the orders; no target).

Each response must be a 200 showing the member count the database holds.
"""

from __future__ import annotations

import argparse
import random
import re
import sqlite3
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.engine import make_url

from bench.common import (
    BenchAdmin,
    Figure,
    add_common_arguments,
    machine_facts,
    percentiles,
    print_facts,
    print_figures,
    write_json,
)

if TYPE_CHECKING:
    from loyalty_plugin import Loyalty

P95_TARGET_MS = 300.0
PAGES = {"overview": "/loyalty/admin/", "tier report": "/loyalty/admin/tiers"}
MEMBERS = re.compile(r'data-testid="members" data-value="(\d+)"')
TIER_MEMBERS = re.compile(r'<tr data-tier="\w+"><th scope="row">[^<]*</th><td class="num" data-value="(\d+)"')


def admin_app(url: str, instance: Path) -> tuple[Flask, Loyalty]:
    from flask_login import LoginManager

    from loyalty_plugin import Loyalty

    app = Flask("loyalty_bench", instance_path=str(instance))
    app.config.update(SECRET_KEY="bench", LOYALTY_DATABASE_URI=url)
    loyalty = Loyalty(app)
    LoginManager(app).user_loader(BenchAdmin)
    return app, loyalty


def forget_kept_figures(url: str) -> None:
    """As just after the upgrade: no kept figures, nothing of the ledger folded."""
    from sqlalchemy import delete, update

    from loyalty_plugin.database import make_engine
    from loyalty_plugin.models import AdminLedgerMonth, AdminState

    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(update(AdminState).values(settings="", ledger_folded_to=0))
        conn.execute(delete(AdminLedgerMonth))
    engine.dispose()


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


def logged_in(app: Flask) -> FlaskClient:
    client = app.test_client()
    with client.session_transaction() as session:
        session["_user_id"] = "bench-admin"
    return client


def timed_get(client: FlaskClient, path: str, name: str, expected: int) -> tuple[float, float, bool]:
    """Wall and CPU milliseconds of one request, and whether it showed the right member count."""
    started, cpu_started = time.perf_counter(), time.process_time()
    response = client.get(path)
    elapsed = (time.perf_counter() - started) * 1000
    cpu_ms = (time.process_time() - cpu_started) * 1000
    right = response.status_code == 200 and shown_members(response.get_data(as_text=True), name) == expected
    return elapsed, cpu_ms, right


def series(
    label: str,
    name: str,
    run: Callable[[], tuple[float, float, bool]],
    args: argparse.Namespace,
    target: float | None = P95_TARGET_MS,
) -> list[Figure]:
    """``args.warmup`` untimed and ``args.requests`` timed runs of ``run``: p95 against the target."""
    times, cpu, wrong = [], [], 0
    for i in range(args.warmup + args.requests):
        elapsed, cpu_ms, right = run()
        wrong += not right
        if i >= args.warmup:
            times.append(elapsed)
            cpu.append(cpu_ms)
    p50, p95, worst = percentiles(times, 50, 95, 100)
    (cpu50,) = percentiles(cpu, 50)
    note = f"{len(times)} requests, p50 {p50:.0f} ms, max {worst:.0f} ms" + (f", {wrong} WRONG" if wrong else "")
    print(
        f"  {label} {name}: p50 {p50:.1f} ms, p95 {p95:.1f} ms, max {worst:.1f} ms, "
        f"CPU of this process p50 {cpu50:.1f} ms, bad responses {wrong}",
        flush=True,
    )
    return [
        Figure(f"{label} {name} p95", p95, "ms", target, note, correct=not wrong),
        Figure(f"{label} {name}: CPU of this process, median", cpu50, "ms", None, ""),
    ]


def measure(label: str, url: str, args: argparse.Namespace) -> list[Figure]:
    from bench.generate import prepare_database

    expected = stored_members(url)
    if not expected:
        raise SystemExit(f"no members at {url}: run without --reuse-data first.")
    started = time.perf_counter()
    prepare_database(url, fresh=False)
    figures = [Figure(f"{label} schema upgrade to head", (time.perf_counter() - started) * 1000, "ms")]
    forget_kept_figures(url)
    with tempfile.TemporaryDirectory() as instance:
        app, _ = admin_app(url, Path(instance))
        elapsed, _, right = timed_get(logged_in(app), PAGES["overview"], "overview", expected)
        note = "builds the kept figures of every member and folds the ledger, once per database"
        figures.append(Figure(f"{label} first request after the upgrade", elapsed, "ms", None, note, correct=right))
        print(f"  {label} first request after the upgrade: {elapsed:.0f} ms ({note})", flush=True)
        app.extensions["loyalty"].store.dispose()
    for name, path in PAGES.items():
        with tempfile.TemporaryDirectory() as instance:
            app, _ = admin_app(url, Path(instance))
            client = logged_in(app)
            elapsed, _, right = timed_get(client, path, name, expected)
            figures.append(Figure(f"{label} {name}: first request of a worker", elapsed, "ms", None, "", right))
            print(f"  {label} {name}: first request of a worker {elapsed:.0f} ms", flush=True)
            figures += series(label, name, partial(timed_get, client, path, name, expected), args)
            app.extensions["loyalty"].store.dispose()
    with tempfile.TemporaryDirectory() as instance:
        app, loyalty = admin_app(url, Path(instance))
        client = logged_in(app)
        writer = Writer(app, loyalty, url, args.writes)
        name = f"overview, {args.writes} new orders and a refund before each request"

        def after_writes() -> tuple[float, float, bool]:
            writer.write()
            return timed_get(client, PAGES["overview"], "overview", expected)

        figures += series(label, name, after_writes, args)
        other = "/loyalty/admin/tiers?start=2026-01-01&end=2026-06-30"
        another = partial(timed_get, client, other, "tier report", expected)
        figures += series(label, "tier report, another period", another, args, target=None)
        app.extensions["loyalty"].store.dispose()
    return figures


class Writer:
    """New orders of random members and a refund of one of them, through the plugin's API."""

    def __init__(self, app: Flask, loyalty: Loyalty, url: str, per_request: int) -> None:
        from sqlalchemy import select

        from loyalty_plugin.database import make_engine
        from loyalty_plugin.models import Member

        engine = make_engine(url)
        with engine.connect() as conn:
            self.users = list(
                conn.execute(select(Member.user_id).where(Member.erased_at.is_(None)).limit(5000)).scalars()
            )
        engine.dispose()
        self.app, self.loyalty, self.per_request = app, loyalty, per_request
        self.prefix, self.count, self.random = f"bench-admin-{time.time_ns()}", 0, random.Random(7)

    def write(self) -> None:
        with self.app.app_context():
            for _ in range(self.per_request):
                self.count += 1
                total = f"{self.random.randint(1000, 20000) / 100:.2f}"
                self.loyalty.record_order(f"{self.prefix}-{self.count}", self.random.choice(self.users), total)
            self.loyalty.record_refund(f"{self.prefix}-refund-{self.count}", f"{self.prefix}-{self.count}", "1.00")


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
    parser.add_argument("--writes", type=int, default=20, help="orders recorded before each request of the last series")
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
