"""Nightly tier evaluation: ``loyalty_plugin.tiers.evaluate_tiers`` over every member.

Targets (SPEC §7): 100k members <= 5 s on SQLite, 1M members <= 60 s on PostgreSQL.

The data is bulk-loaded by ``generate.py`` (not through ``record_order``): ~3.4 orders per
member in the 12-month window, Gamma-distributed purchase rates, refunds, guest orders, and
current tiers set so that upgrades, downgrades and protected keeps all happen. The figure is
the evaluation itself: ``evaluate_tiers`` plus the commit (tier history, signals) in one unit
of work, as the nightly job runs it. Data generation and loading are timed separately. The
result is checked against what the generator worked out independently; a second run "the next
night" shows the steady state, where few members change.

``--compare FILE`` also times another ``evaluate_tiers`` (a file defining it, written like
``loyalty_plugin/tiers.py``) on the same data, the members' tiers restored in between: a way
to measure a proposed change before it is made.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text

from bench.common import (
    Figure,
    add_common_arguments,
    load_variant,
    machine_facts,
    make_app,
    print_facts,
    print_figures,
    write_json,
)
from bench.generate import NOW, Outcome, generate_shop, load_shop, prepare_database

Evaluate = Callable[..., Any]


def evaluate_once(app: Any, evaluate: Evaluate, now: Any, *, profile: bool = False) -> tuple[Any, float, float, str]:
    """One evaluation in one unit of work: (run, seconds in the function, seconds with commit, profile)."""
    state = app.extensions["loyalty"]
    profiler = cProfile.Profile() if profile else None
    with app.app_context():
        started = time.perf_counter()
        if profiler:
            profiler.enable()
        with state.store.work() as session:
            run = evaluate(session, now=now, settings=state.settings)
            evaluated = time.perf_counter()
        done = time.perf_counter()
        if profiler:
            profiler.disable()
    text_ = ""
    if profiler:
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats("tottime").print_stats(15)
        stats.sort_stats("cumulative").print_stats(30)
        text_ = out.getvalue()
    return run, evaluated - started, done - started, text_


def tier_counts(app: Any) -> dict[str, int]:
    from loyalty_plugin.models import Member, TierChange

    with app.app_context(), app.extensions["loyalty"].store.work(write=False) as session:
        rows = session.execute(
            select(Member.tier_code, func.count()).where(Member.erased_at.is_(None)).group_by(Member.tier_code)
        ).all()
        history = session.scalar(select(func.count()).select_from(TierChange))
    counts = {str(code): int(n) for code, n in rows}
    counts["(history rows)"] = int(history or 0)
    return counts


def snapshot(app: Any, *, restore: bool) -> None:
    """Keep the members' tiers as loaded, or put them back and empty the history."""
    engine = app.extensions["loyalty"].store.engine
    with engine.begin() as conn:
        if not restore:
            conn.execute(text("DROP TABLE IF EXISTS bench_tier_snapshot"))
            conn.execute(
                text("CREATE TABLE bench_tier_snapshot AS SELECT id, tier_code, tier_reached_at FROM loyalty_members")
            )
            return
        conn.execute(
            text(
                "UPDATE loyalty_members SET tier_code = s.tier_code, tier_reached_at = s.tier_reached_at "
                "FROM bench_tier_snapshot AS s WHERE s.id = loyalty_members.id "
                "AND (s.tier_code <> loyalty_members.tier_code OR s.tier_reached_at <> loyalty_members.tier_reached_at)"
            )
        )
        conn.execute(text("DELETE FROM loyalty_tier_history"))
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE loyalty_members"))
            conn.execute(text("VACUUM ANALYZE loyalty_tier_history"))


def measure(
    app: Any, name: str, evaluate: Evaluate, expected: Outcome, args: argparse.Namespace
) -> tuple[float, float, bool, Any]:
    run, in_function, with_commit, profile = evaluate_once(app, evaluate, NOW, profile=args.profile)
    after = tier_counts(app)
    run2, _, again, _ = evaluate_once(app, evaluate, NOW + timedelta(days=1))
    got = (run.evaluated, run.upgraded, run.downgraded, run.kept)
    want = (expected.evaluated, expected.upgraded, expected.downgraded, expected.kept)
    agree = got == want and all(after.get(code, 0) == n for code, n in expected.after.items())
    print(
        f"[{name}] run 1: {run.evaluated:,} evaluated, {run.upgraded:,} upgraded, {run.downgraded:,} downgraded, "
        f"{run.kept:,} kept; evaluate_tiers {in_function:.2f} s, with commit {with_commit:.2f} s"
    )
    print(f"[{name}] tiers after: {after}")
    print(
        f"[{name}] check: "
        + (
            "matches the generator's independent expectation"
            if agree
            else f"DIFFERS from the generator's expectation: (evaluated, up, down, kept) {want}, tiers {expected.after}"
        )
    )
    print(
        f"[{name}] run 2 (next night): {run2.upgraded:,} up, {run2.downgraded:,} down, {run2.kept:,} kept "
        f"in {again:.2f} s",
        flush=True,
    )
    if profile:
        print(profile)
    return with_commit, again, agree, run


def bench(label: str, url: str, members: int, target: float, args: argparse.Namespace) -> list[Figure]:
    from loyalty_plugin import tiers

    print(f"\n== {label}: {members:,} members ({url.split('@')[-1]})", flush=True)
    started = time.perf_counter()
    prepare_database(url)
    loaded = load_shop(url, generate_shop(members, seed=args.seed, with_lines=args.with_lines), progress=False)
    load_seconds = time.perf_counter() - started
    expected = loaded.outcome
    print(
        f"data: {loaded.members:,} members, {loaded.orders:,} orders, {loaded.lines:,} order lines; "
        f"generated {loaded.generate_seconds:.1f} s, written {loaded.write_seconds:.1f} s, "
        f"finished (sequences/VACUUM ANALYZE/checkpoint) {loaded.finish_seconds:.1f} s; total {load_seconds:.1f} s"
    )
    print(
        f"tiers before: {expected.before}; the rules give: {expected.upgraded:,} up, {expected.downgraded:,} down, "
        f"{expected.kept:,} kept ({expected.kept_protected:,} of them only by the 12-month protection)"
    )
    if expected.negative_spend:
        print(
            f"note: {expected.negative_spend:,} members have a negative net spend in the window "
            f"(a fully refunded order whose shipping was refunded too)"
        )
    candidates: list[tuple[str, Evaluate]] = [("current", tiers.evaluate_tiers)]
    if args.compare:
        candidates.append((Path(args.compare).stem, load_variant(args.compare).evaluate_tiers))
    figures = []
    with tempfile.TemporaryDirectory() as instance:
        app = make_app(url, instance)
        if len(candidates) > 1:
            snapshot(app, restore=False)
        for i, (name, evaluate) in enumerate(candidates):
            if i:
                snapshot(app, restore=True)
            seconds, again, agree, run = measure(app, name, evaluate, expected, args)
            tag = "" if name == "current" else f" [{name}]"
            note = f"{run.upgraded:,} up / {run.downgraded:,} down / {run.kept:,} kept"
            figures += [
                Figure(
                    f"tiers {label} {members // 1000:,}k members{tag}",
                    seconds,
                    "s",
                    target,
                    note + ("" if agree else "; not what the rules give, see the check above"),
                    agree,
                ),
                Figure(f"tiers {label} next night{tag}", again, "s", None, "steady state, few changes"),
            ]
        app.extensions["loyalty"].store.dispose()
    figures.append(
        Figure(f"tiers {label} data load (not the target)", load_seconds, "s", None, f"{loaded.orders:,} orders")
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_arguments(parser)
    parser.add_argument("--sqlite-members", type=int, default=100_000, help="0 to skip SQLite")
    parser.add_argument("--pg-members", type=int, default=1_000_000, help="0 to skip PostgreSQL")
    parser.add_argument("--with-lines", action="store_true", help="load order lines too (evaluation never reads them)")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of each first-night evaluation")
    parser.add_argument("--compare", metavar="FILE", help="also time the evaluate_tiers defined in FILE")
    parser.add_argument("--quick", action="store_true", help="10k members on SQLite, 50k on PostgreSQL")
    args = parser.parse_args()
    if args.quick:
        args.sqlite_members, args.pg_members = min(args.sqlite_members, 10_000), min(args.pg_members, 50_000)
    facts = machine_facts(args.pg_url or None)
    print_facts(facts)
    figures: list[Figure] = []
    if args.sqlite_members:
        path = Path(args.workdir) / "bench_tiers.sqlite"
        figures += bench("SQLite", f"sqlite:///{path}", args.sqlite_members, 5.0 * args.sqlite_members / 100_000, args)
    if args.pg_url and args.pg_members:
        figures += bench("PostgreSQL", args.pg_url, args.pg_members, 60.0 * args.pg_members / 1_000_000, args)
    print_figures("tier evaluation (targets scaled linearly when the size is not the SPEC's)", figures)
    write_json(args.json, "tiers", figures, facts)


if __name__ == "__main__":
    main()
