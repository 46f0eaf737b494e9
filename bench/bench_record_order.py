"""Latency of ``loyalty.record_order(...)``: one paid order, one call, one transaction.

Target (SPEC §7): median <= 3 ms on SQLite (a file database, the plugin's own engine).
PostgreSQL is measured the same way, for information.

Members are enrolled first (not timed), then each call records a new order of 3 lines by an
enrolled member, chosen with Gamma-distributed weights so some members order often. As in a
web request, every call gets a fresh app context (so a fresh session); only the call itself is
timed. The first ``--warmup`` calls are not counted. ``--impl FILE`` times a changed
``record_order`` against the current one, alternating call by call on the same database, so
that load from elsewhere on the machine falls on both alike.

``--at-scale N`` then repeats it (``--scale-orders`` calls) on a shop bulk-loaded with N members
and their order history: the latency a shop of that size sees, not an empty database's.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import (
    Figure,
    add_common_arguments,
    load_variant,
    machine_facts,
    make_app,
    percentiles,
    print_facts,
    print_figures,
    write_json,
)
from bench.generate import generate_shop, load_shop, make_catalog, prepare_database
from loyalty_plugin import orders as orders_module


def make_orders(
    seed: int, count: int, members: int, lines: int, user: str = "m{:05d}", first: int = 0
) -> list[dict[str, Any]]:
    """``count`` orders as a shop would pass them: Decimal money, lines with sku, qty, category.

    The buyer of each is ``user.format(k)`` for a member number ``k`` in ``first .. first + members - 1``.
    """
    catalog = make_catalog(seed)
    rng = np.random.default_rng([seed, 4])
    weight = rng.gamma(0.6, 1.0, members)
    who = rng.choice(members, size=count, p=weight / weight.sum())
    items = rng.choice(len(catalog), size=(count, lines), p=catalog.weight)
    qty = np.minimum(rng.geometric(0.75, (count, lines)), 20)
    orders = []
    for i in range(count):
        order_lines = [
            {
                "sku": catalog.sku[j],
                "qty": int(q),
                "unit_price": Decimal(int(catalog.price[j])).scaleb(-2),
                "category": catalog.category[j],
            }
            for j, q in zip(items[i], qty[i], strict=True)
        ]
        subtotal = sum(line["unit_price"] * line["qty"] for line in order_lines)
        shipping = Decimal("4.95") if subtotal < 50 else Decimal(0)
        orders.append(
            {
                "order_id": f"R{seed}-{i:07d}",
                "user_id": user.format(who[i] + first),
                "total": subtotal + shipping,
                "shipping": shipping,
                "lines": order_lines,
            }
        )
    return orders


def bench(label: str, url: str, args: argparse.Namespace, target: float | None, preload: int = 0) -> list[Figure]:
    """``preload`` > 0: first bulk-load a shop of that many members with their order history,
    and record the new orders for those members: the latency a shop of that size sees."""
    from loyalty_plugin import Loyalty

    print(f"\n== {label} ({url.split('@')[-1]})", flush=True)
    prepare_database(url)
    if preload:
        loaded = load_shop(url, generate_shop(preload, seed=args.seed), progress=False)
        print(f"bulk-loaded {loaded.members:,} members and {loaded.orders:,} past orders")
        count, warmup = args.scale_orders, args.warmup // 4
        orders = make_orders(args.seed, warmup + count, preload, args.lines, user="u{:08d}", first=1)
    else:
        count, warmup = args.orders, args.warmup
        orders = make_orders(args.seed, warmup + count, args.members, args.lines)
    with tempfile.TemporaryDirectory() as instance:
        app = make_app(url, instance)
        loyalty = Loyalty()
        started = time.perf_counter()
        enroll_times = []
        for m in range(0 if preload else args.members):
            with app.app_context():
                t0 = time.perf_counter()
                loyalty.enroll(f"m{m:05d}", email=f"m{m}@example.com")
                enroll_times.append(time.perf_counter() - t0)
        if enroll_times:
            print(
                f"enrolled {args.members:,} members in {time.perf_counter() - started:.1f} s "
                f"(enroll median {np.median(enroll_times) * 1000:.2f} ms)"
            )
        names = [name for name, _ in args.variants]
        samples: dict[str, list[float]] = {name: [] for name in names}
        cpu: dict[str, list[float]] = {name: [] for name in names}
        points = 0
        profiler = cProfile.Profile() if args.profile else None
        for n, order in enumerate(orders):
            name, implementation = args.variants[n % len(args.variants)]
            orders_module.record_order = implementation
            with app.app_context():
                if profiler and n >= warmup:
                    profiler.enable()
                c0, t0 = time.process_time(), time.perf_counter()
                receipt = loyalty.record_order(
                    order["order_id"], order["user_id"], order["total"], order["lines"], shipping=order["shipping"]
                )
                elapsed, used = time.perf_counter() - t0, time.process_time() - c0
                if profiler:
                    profiler.disable()
            if n >= warmup:
                samples[name].append(elapsed)
                cpu[name].append(used)
                points += receipt.points_awarded
        with app.app_context():
            repeat_t0 = time.perf_counter()
            again = loyalty.record_order(
                orders[-1]["order_id"],
                orders[-1]["user_id"],
                orders[-1]["total"],
                orders[-1]["lines"],
                shipping=orders[-1]["shipping"],
            )
            repeat = time.perf_counter() - repeat_t0
            broken = loyalty.verify()
        orders_module.record_order = args.variants[0][1]
        app.extensions["loyalty"].store.dispose()
    if profiler:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)
    sound = not broken and again.repeat and points > 0
    print(
        f"points awarded {points:,}; a repeated delivery: repeat={again.repeat}, {repeat * 1000:.2f} ms; "
        f"verify: {'every balance matches the ledger' if not broken else f'{len(broken)} differences'}"
    )
    figures = []
    for name in names:
        ms = np.asarray(samples[name]) * 1000
        p50, p95, p99 = percentiles(ms, 50, 95, 99)
        cpu_p50 = percentiles(np.asarray(cpu[name]) * 1000, 50)[0]
        tag = "" if name == "current" else f" [{name}]"
        print(
            f"{name}: {len(ms):,} calls after {warmup} warm-up: median {p50:.2f} ms, p95 {p95:.2f} ms, "
            f"p99 {p99:.2f} ms, mean {ms.mean():.2f} ms, max {ms.max():.1f} ms; "
            f"{len(ms) / ms.sum() * 1000:,.0f} calls/s in one thread; median CPU time of this process {cpu_p50:.2f} ms"
        )
        figures += [
            Figure(
                f"record_order {label} median{tag}",
                p50,
                "ms",
                target,
                f"{len(ms):,} calls, {args.lines} lines each" + ("" if sound else "; balances or repeat WRONG"),
                sound,
            ),
            Figure(f"record_order {label} p95{tag}", p95, "ms", None, f"p99 {p99:.2f} ms, max {ms.max():.1f} ms"),
            Figure(f"record_order {label} CPU median{tag}", cpu_p50, "ms", None, "this process only"),
        ]
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_arguments(parser)
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--members", type=int, default=500)
    parser.add_argument("--lines", type=int, default=3)
    parser.add_argument(
        "--at-scale",
        type=int,
        default=100_000,
        help="also measure on a bulk-loaded shop of this many members with their order history (0: skip)",
    )
    parser.add_argument("--scale-orders", type=int, default=500, help="calls timed on the --at-scale shop")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of the timed calls")
    parser.add_argument(
        "--impl",
        metavar="FILE",
        help="also time the record_order in FILE (a changed orders.py), calls alternating with the current one",
    )
    parser.add_argument("--quick", action="store_true", help="300 orders after 50 warm-up, 100 members")
    args = parser.parse_args()
    if args.quick:
        args.orders, args.warmup, args.members = 300, 50, 100
        args.at_scale, args.scale_orders = min(args.at_scale, 10_000), 200
    facts = machine_facts(args.pg_url or None)
    print_facts(facts)
    args.variants = [("current", orders_module.record_order)]
    if args.impl:
        args.variants.append((Path(args.impl).stem, load_variant(args.impl).record_order))
        print(f"calls alternate between the current record_order and the one in {args.impl}")
    figures = bench("SQLite", f"sqlite:///{Path(args.workdir) / 'bench_record_order.sqlite'}", args, 3.0)
    if args.pg_url:
        figures += bench("PostgreSQL", args.pg_url, args, None)
    if args.at_scale:
        scale = f"{args.at_scale // 1000:,}k"
        path = Path(args.workdir) / "bench_record_order_scale.sqlite"
        figures += bench(f"SQLite, {scale}-member shop", f"sqlite:///{path}", args, None, preload=args.at_scale)
        if args.pg_url:
            figures += bench(f"PostgreSQL, {scale}-member shop", args.pg_url, args, None, preload=args.at_scale)
    print_figures("record_order latency, one call = one transaction", figures)
    write_json(args.json, "record_order", figures, facts)


if __name__ == "__main__":
    main()
