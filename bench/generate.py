"""The project's synthetic shop: members, orders and order lines, the same for the same seed.

What makes it look like a shop rather than uniform noise:

* purchase rates differ a lot between customers (Gamma-distributed, so most buy once or twice
  a year and a few buy every other week), and about a third of members lapse at some point;
* items have Zipf-like popularity and category price levels, baskets vary by customer;
* some orders are partly or fully refunded, small orders pay shipping, some orders are guests'.

Two outputs: an order-lines CSV (``order_id,user_id,placed_at,sku,qty,unit_price,category``,
one line per order line, orders in time order) for ``flask loyalty import-orders``, and a bulk
load straight into the plugin's tables (``executemany`` on SQLite, ``COPY`` on PostgreSQL) for
sizes where going through ``record_order`` would take hours. Money is integer minor units
(cents) in the database, as the ``Scaled`` column type stores it.

Run ``python -m bench.generate --help`` from the repository root.
"""

from __future__ import annotations

import argparse
import csv
import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy.engine import make_url

NOW = datetime(2026, 1, 5, 3, 0, 0)
CATEGORIES = (
    "kitchen",
    "home",
    "garden",
    "toys",
    "books",
    "beauty",
    "sports",
    "fashion",
    "electronics",
    "grocery",
    "pets",
    "office",
)
#: The plugin's default tiers: code and qualifying spend in cents, lowest first.
DEFAULT_TIERS: tuple[tuple[str, int], ...] = (("bronze", 0), ("silver", 100_000), ("gold", 500_000))
CSV_COLUMNS = ("order_id", "user_id", "placed_at", "sku", "qty", "unit_price", "category")
MEMBER_COLUMNS = (
    "id",
    "user_id",
    "email",
    "name",
    "birthday",
    "marketing_opt_in",
    "referral_code",
    "referred_by_id",
    "tier_code",
    "tier_reached_at",
    "points_balance",
    "points_pending",
    "enrolled_at",
    "erased_at",
)
ORDER_COLUMNS = (
    "id",
    "order_id",
    "user_id",
    "member_id",
    "placed_at",
    "total",
    "shipping",
    "tax",
    "refunded_total",
    "points_earned",
    "points_clawed_back",
    "fingerprint",
    "source",
    "created_at",
)
LINE_COLUMNS = ("id", "order_pk", "line_no", "sku", "qty", "unit_price", "category")
SECOND = np.timedelta64(1, "s")


# Catalog and baskets ---------------------------------------------------------------------


@dataclass(frozen=True)
class Catalog:
    sku: np.ndarray
    category: np.ndarray
    price: np.ndarray
    weight: np.ndarray

    def __len__(self) -> int:
        return len(self.price)


def make_catalog(seed: int = 7, items: int = 2000) -> Catalog:
    """Items in a dozen categories with their own price levels, prices ending in .99."""
    rng = np.random.default_rng([seed, 1])
    share = rng.dirichlet(np.full(len(CATEGORIES), 2.0))
    category = rng.choice(len(CATEGORIES), size=items, p=share)
    level = rng.uniform(np.log(800), np.log(6000), len(CATEGORIES))
    cents = np.exp(rng.normal(level[category], 0.6))
    price = np.maximum(np.floor(cents / 100) * 100 + 99, 99).astype(np.int64)
    weight = 1.0 / np.arange(1, items + 1) ** 0.9
    weight = rng.permutation(weight / weight.sum())
    return Catalog(
        sku=np.array([f"SKU-{i:05d}" for i in range(items)], dtype=object),
        category=np.array(CATEGORIES, dtype=object)[category],
        price=price,
        weight=weight,
    )


@dataclass(frozen=True)
class Lines:
    """Order lines, grouped by order: ``order`` is each line's order index, ascending."""

    order: np.ndarray
    line_no: np.ndarray
    item: np.ndarray
    qty: np.ndarray
    unit_price: np.ndarray

    def __len__(self) -> int:
        return len(self.order)


def sample_lines(rng: np.random.Generator, catalog: Catalog, per_order: np.ndarray) -> Lines:
    """``per_order[i]`` lines for order ``i``: popular items more often, one in ten discounted."""
    total = int(per_order.sum())
    order = np.repeat(np.arange(len(per_order), dtype=np.int64), per_order)
    starts = np.cumsum(per_order) - per_order
    line_no = np.arange(total, dtype=np.int64) - np.repeat(starts, per_order)
    item = rng.choice(len(catalog), size=total, p=catalog.weight)
    qty = np.minimum(rng.geometric(0.75, total), 20).astype(np.int64)
    price = catalog.price[item]
    discounted = rng.random(total) < 0.1
    unit_price = np.where(discounted, np.round(price * 0.8), price).astype(np.int64)
    return Lines(order, line_no, item, qty, unit_price)


def subtotals(lines: Lines, orders: int) -> np.ndarray:
    return np.bincount(lines.order, weights=lines.qty * lines.unit_price, minlength=orders).astype(np.int64)


def exact_line_counts(rng: np.random.Generator, orders: int, lines: int) -> np.ndarray:
    """Heterogeneous basket sizes (1 + Poisson) nudged so they add up to exactly ``lines``."""
    if lines < orders:
        raise ValueError("Every order needs at least one line.")
    counts = 1 + rng.poisson(lines / orders - 1, orders)
    while (diff := lines - int(counts.sum())) != 0:
        if diff > 0:
            np.add.at(counts, rng.integers(0, orders, diff), 1)
        else:
            big = np.flatnonzero(counts > 1)
            pick = rng.choice(big, size=min(-diff, len(big)), replace=False)
            counts[pick] -= 1
    return counts


def cents_text(cents: np.ndarray) -> pd.Series:
    series = pd.Series(cents, dtype=np.int64)
    return (series // 100).astype(str) + "." + (series % 100).astype(str).str.zfill(2)


def time_text(moments: np.ndarray, sep: str = " ", unit: str = "s") -> np.ndarray:
    """ISO text; ``unit="us"`` gives SQLAlchemy's SQLite storage format (always 6 decimals)."""
    text = np.datetime_as_string(moments.astype(f"datetime64[{unit}]"), unit=unit)
    return np.char.replace(text, "T", sep) if sep != "T" else text


# The order-lines CSV ---------------------------------------------------------------------


@dataclass(frozen=True)
class CsvSummary:
    path: Path
    orders: int
    lines: int
    customers: int
    guests: int
    first: str
    last: str
    seconds: float


def write_order_csv(
    path: str | Path,
    *,
    seed: int = 7,
    orders: int = 200_000,
    lines: int = 1_000_000,
    customers: int = 40_000,
    guest_share: float = 0.0,
    history_days: int = 730,
    now: datetime = NOW,
    catalog: Catalog | None = None,
    chunk: int = 50_000,
) -> CsvSummary:
    """An export of ``orders`` orders with exactly ``lines`` lines, oldest first.

    Each order's lines are consecutive. ``guest_share`` of orders have an empty ``user_id``.
    """
    started = time.perf_counter()
    catalog = catalog or make_catalog(seed)
    rng = np.random.default_rng([seed, 2])
    rate = rng.gamma(0.6, 1.0, customers)
    who = rng.choice(customers, size=orders, p=rate / rate.sum())
    guest = rng.random(orders) < guest_share
    end = np.datetime64(now, "s")
    offsets = np.sort(rng.integers(1, history_days * 86_400, orders))[::-1]
    placed = end - offsets * SECOND
    counts = exact_line_counts(rng, orders, lines)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as out:
        csv.writer(out).writerow(CSV_COLUMNS)
        for lo in range(0, orders, chunk):
            hi = min(lo + chunk, orders)
            part = sample_lines(rng, catalog, counts[lo:hi])
            idx = part.order + lo
            user = np.char.add("c", np.char.zfill(who[idx].astype(str), 6)).astype(object)
            user[guest[idx]] = ""
            frame = pd.DataFrame(
                {
                    "order_id": np.char.add("S", np.char.zfill(idx.astype(str), 7)),
                    "user_id": user,
                    "placed_at": time_text(placed[idx]),
                    "sku": catalog.sku[part.item],
                    "qty": part.qty,
                    "unit_price": cents_text(part.unit_price).to_numpy(),
                    "category": catalog.category[part.item],
                }
            )
            frame.to_csv(out, header=False, index=False, lineterminator="\n")
    return CsvSummary(
        path=path,
        orders=orders,
        lines=lines,
        customers=len(np.unique(who[~guest])),
        guests=int(guest.sum()),
        first=str(placed[0]),
        last=str(placed[-1]),
        seconds=time.perf_counter() - started,
    )


# Members and orders for a bulk load ----------------------------------------------------------


@dataclass
class Outcome:
    """What a correct ``evaluate_tiers`` at ``now`` must do, worked out from the generated rows."""

    evaluated: int = 0
    upgraded: int = 0
    downgraded: int = 0
    kept: int = 0
    kept_protected: int = 0
    before: dict[str, int] = field(default_factory=dict)
    after: dict[str, int] = field(default_factory=dict)
    negative_spend: int = 0

    def add(self, other: Outcome) -> None:
        for name in ("evaluated", "upgraded", "downgraded", "kept", "kept_protected", "negative_spend"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for mine, theirs in ((self.before, other.before), (self.after, other.after)):
            for code, n in theirs.items():
                mine[code] = mine.get(code, 0) + n


@dataclass(frozen=True)
class ShopChunk:
    members: dict[str, Any]
    orders: dict[str, Any]
    lines: dict[str, Any] | None
    outcome: Outcome


@dataclass(frozen=True)
class ShopShape:
    """The knobs of :func:`generate_shop`; the defaults give ~3.4 orders per member in 12 months."""

    orders_per_year: float = 5.0
    rate_shape: float = 0.6
    lapse_share: float = 0.3
    history_days: int = 540
    enrol_days: int = 1460
    mean_lines: float = 3.0
    guest_share: float = 0.05
    partial_refund_share: float = 0.03
    full_refund_share: float = 0.015
    erased_share: float = 0.005
    free_shipping_from: int = 5000
    shipping: int = 495
    window_days: int = 365
    keep_days: int = 365
    tiers: tuple[tuple[str, int], ...] = DEFAULT_TIERS


def shipping_and_refunds(rng: np.random.Generator, subtotal: np.ndarray, shape: Any) -> tuple[np.ndarray, ...]:
    """Per order, in cents: shipping (free from ``shape.free_shipping_from``), the total paid, and
    what was refunded (a share in full, a share in part, the rest nothing)."""
    count = len(subtotal)
    shipping = np.where(subtotal < shape.free_shipping_from, shape.shipping, 0).astype(np.int64)
    total = subtotal + shipping
    draw = rng.random(count)
    refunded = np.where(
        draw < shape.full_refund_share,
        total,
        np.where(
            draw < shape.full_refund_share + shape.partial_refund_share,
            np.round(subtotal * rng.uniform(0.1, 0.9, count)),
            0,
        ),
    ).astype(np.int64)
    return shipping, total, refunded


def generate_shop(
    members: int,
    *,
    seed: int = 7,
    now: datetime = NOW,
    shape: ShopShape | None = None,
    with_lines: bool = False,
    chunk: int = 100_000,
    catalog: Catalog | None = None,
) -> Iterator[ShopChunk]:
    """Members ``1..members`` and their orders, ``chunk`` members at a time, ids ready to load.

    Current tiers are set near, not at, what each member's spend earns (some a step below,
    some one or two above) and ``tier_reached_at`` is anywhere since enrolment, so a tier
    evaluation at ``now`` upgrades, downgrades and keeps members, some of them only because
    their tier is still protected. ``with_lines=False`` skips writing the order lines (the
    totals are still computed from sampled lines); tier evaluation never reads them.
    """
    shape = shape or ShopShape()
    catalog = catalog or make_catalog(seed)
    end = np.datetime64(now, "s")
    thresholds = np.array([cents for _, cents in shape.tiers], dtype=np.int64)
    codes = np.array([code for code, _ in shape.tiers], dtype=object)
    top = len(codes) - 1
    next_order = 1
    next_line = 1
    for number, lo in enumerate(range(0, members, chunk)):
        rng = np.random.default_rng([seed, 3, number])
        n = min(chunk, members - lo)
        ids = np.arange(lo + 1, lo + n + 1, dtype=np.int64)
        enrolled = end - rng.integers(86_400, shape.enrol_days * 86_400, n) * SECOND
        start = np.maximum(enrolled, end - shape.history_days * 86_400 * SECOND)
        lapse_at = enrolled + (rng.random(n) * (end - enrolled).astype(np.int64)).astype(np.int64) * SECOND
        stop = np.where(rng.random(n) < shape.lapse_share, lapse_at, end)
        active_years = np.maximum((stop - start) / SECOND, 0) / (365 * 86_400)
        rate = rng.gamma(shape.rate_shape, shape.orders_per_year / shape.rate_shape, n)
        per_member = rng.poisson(rate * active_years)
        owner = np.repeat(np.arange(n), per_member)
        span = ((stop - start) / SECOND).astype(np.int64)[owner]
        placed = start[owner] + (rng.random(len(owner)) * span).astype(np.int64) * SECOND

        guests = rng.binomial(len(owner), shape.guest_share)
        guest_placed = end - rng.integers(1, shape.history_days * 86_400, guests) * SECOND
        placed = np.concatenate([placed, guest_placed])
        member_of = np.concatenate([ids[owner], np.zeros(guests, dtype=np.int64)])
        count = len(placed)

        basket = rng.lognormal(-0.125, 0.5, n)
        mean_extra = np.concatenate([(shape.mean_lines - 1) * basket[owner], np.full(guests, shape.mean_lines - 1)])
        per_order = 1 + rng.poisson(mean_extra)
        lines = sample_lines(rng, catalog, per_order)
        subtotal = subtotals(lines, count)
        shipping, total, refunded = shipping_and_refunds(rng, subtotal, shape)

        erased = rng.random(n) < shape.erased_share
        since = end - shape.window_days * 86_400 * SECOND
        counted = (placed > since) & (placed <= end) & (member_of > 0)
        spend = np.bincount(
            member_of[counted] - lo - 1, weights=(total - refunded - shipping)[counted], minlength=n
        ).astype(np.int64)
        qualified = np.searchsorted(thresholds, np.maximum(spend, 0), side="right") - 1
        shift = rng.choice([-1, 0, 1, 2], size=n, p=[0.2, 0.55, 0.2, 0.05])
        current = np.clip(qualified + shift, 0, top)
        reached = enrolled + (rng.random(n) * (end - enrolled).astype(np.int64)).astype(np.int64) * SECOND
        protected = reached > end - shape.keep_days * 86_400 * SECOND
        new = np.where(
            qualified > current, qualified, np.where((qualified < current) & ~protected, current - 1, current)
        )
        live = ~erased
        outcome = Outcome(
            evaluated=int(live.sum()),
            upgraded=int((live & (new > current)).sum()),
            downgraded=int((live & (new < current)).sum()),
            kept=int((live & (new == current)).sum()),
            kept_protected=int((live & (new == current) & (qualified < current)).sum()),
            before={str(c): int((live & (current == r)).sum()) for r, c in enumerate(codes)},
            after={str(c): int((live & (new == r)).sum()) for r, c in enumerate(codes)},
            negative_spend=int((live & (spend < 0)).sum()),
        )

        birthday = np.datetime64("1950-01-01") + rng.integers(0, 55 * 365, n).astype("timedelta64[D]")
        has_birthday = rng.random(n) < 0.6
        member_rows = {
            "id": ids,
            "user_id": np.char.add("u", np.char.zfill(ids.astype(str), 8)).astype(object),
            "email": np.char.add(np.char.add("u", ids.astype(str)), "@example.com").astype(object),
            "name": np.full(n, None, dtype=object),
            "birthday": np.where(has_birthday, np.datetime_as_string(birthday).astype(object), None),
            "marketing_opt_in": rng.random(n) < 0.4,
            "referral_code": np.char.add("BENCH", np.char.zfill(ids.astype(str), 9)).astype(object),
            "referred_by_id": np.full(n, None, dtype=object),
            "tier_code": codes[current],
            "tier_reached_at": reached,
            "points_balance": np.zeros(n, dtype=np.int64),
            "points_pending": np.zeros(n, dtype=np.int64),
            "enrolled_at": enrolled,
            "erased_at": np.where(erased, np.datetime64(now, "us"), np.datetime64("NaT", "us")),
        }
        order_ids = np.arange(next_order, next_order + count, dtype=np.int64)
        member_text = np.char.add("u", np.char.zfill(member_of.astype(str), 8)).astype(object)
        member_text[member_of == 0] = None
        order_rows = {
            "id": order_ids,
            "order_id": np.char.add("B", np.char.zfill(order_ids.astype(str), 10)).astype(object),
            "user_id": member_text,
            "member_id": np.where(member_of > 0, member_of, None).astype(object),
            "placed_at": placed,
            "total": total,
            "shipping": shipping,
            "tax": np.zeros(count, dtype=np.int64),
            "refunded_total": refunded,
            "points_earned": np.where(member_of > 0, (total - shipping) // 100, 0),
            "points_clawed_back": np.zeros(count, dtype=np.int64),
            "fingerprint": np.frombuffer(rng.bytes(32 * count).hex().encode(), dtype="S64").astype("U64"),
            "source": np.full(count, "api", dtype=object),
            "created_at": placed,
        }
        line_rows = None
        if with_lines:
            line_rows = {
                "id": np.arange(next_line, next_line + len(lines), dtype=np.int64),
                "order_pk": order_ids[lines.order],
                "line_no": lines.line_no,
                "sku": catalog.sku[lines.item],
                "qty": lines.qty,
                "unit_price": lines.unit_price,
                "category": catalog.category[lines.item],
            }
        next_order += count
        next_line += len(lines)
        yield ShopChunk(member_rows, order_rows, line_rows, outcome)


# Writers -------------------------------------------------------------------------------------


@dataclass
class LoadSummary:
    members: int = 0
    orders: int = 0
    lines: int = 0
    outcome: Outcome = field(default_factory=Outcome)
    generate_seconds: float = 0.0
    write_seconds: float = 0.0
    finish_seconds: float = 0.0


def _python_column(values: np.ndarray, *, sqlite_time: bool) -> list[Any]:
    """A column as Python values a driver can bind: datetimes as text on SQLite, NaT as None."""
    if np.issubdtype(values.dtype, np.datetime64):
        missing = np.isnat(values)
        if sqlite_time:
            out = time_text(values, unit="us").astype(object)
        else:
            out = values.astype("datetime64[us]").astype(object)
        out[missing] = None
        return out.tolist()
    return values.tolist()


def _rows(table: dict[str, Any], columns: Iterable[str], *, sqlite_time: bool) -> list[tuple[Any, ...]]:
    return list(zip(*(_python_column(np.asarray(table[c]), sqlite_time=sqlite_time) for c in columns), strict=True))


def load_shop(url: str, chunks: Iterable[ShopChunk], *, progress: bool = True) -> LoadSummary:
    """Append the generated rows to the plugin's (migrated, empty) tables at ``url``."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _load_sqlite(parsed.database, chunks, progress=progress)
    if parsed.get_backend_name() == "postgresql":
        return _load_postgres(url, chunks, progress=progress)
    raise ValueError(f"No bulk loader for {parsed.get_backend_name()}.")


def _insert_sql(table: str, columns: tuple[str, ...]) -> str:
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"


def _load_sqlite(path: str, chunks: Iterable[ShopChunk], *, progress: bool) -> LoadSummary:
    summary = LoadSummary()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("BEGIN")
    tick = time.perf_counter()
    for part in chunks:
        summary.generate_seconds += time.perf_counter() - tick
        tick = time.perf_counter()
        conn.executemany(
            _insert_sql("loyalty_members", MEMBER_COLUMNS), _rows(part.members, MEMBER_COLUMNS, sqlite_time=True)
        )
        conn.executemany(
            _insert_sql("loyalty_orders", ORDER_COLUMNS), _rows(part.orders, ORDER_COLUMNS, sqlite_time=True)
        )
        if part.lines is not None:
            conn.executemany(
                _insert_sql("loyalty_order_lines", LINE_COLUMNS), _rows(part.lines, LINE_COLUMNS, sqlite_time=True)
            )
            summary.lines += len(part.lines["id"])
        summary.members += len(part.members["id"])
        summary.orders += len(part.orders["id"])
        summary.outcome.add(part.outcome)
        summary.write_seconds += time.perf_counter() - tick
        if progress:
            print(f"  loaded {summary.members:,} members, {summary.orders:,} orders", flush=True)
        tick = time.perf_counter()
    conn.execute("COMMIT")
    tick = time.perf_counter()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    summary.finish_seconds = time.perf_counter() - tick
    return summary


def libpq_url(url: str) -> str:
    """A SQLAlchemy URL (``postgresql+psycopg://…``) as a libpq connection string."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _load_postgres(url: str, chunks: Iterable[ShopChunk], *, progress: bool) -> LoadSummary:
    import psycopg

    summary = LoadSummary()
    with psycopg.connect(libpq_url(url)) as conn:
        # The generator's keys are consistent by construction: skip the per-row foreign-key
        # triggers during the load (needs a superuser; without one the load is only slower).
        try:
            conn.execute("SET session_replication_role = replica")
        except psycopg.errors.InsufficientPrivilege:
            conn.rollback()
        tick = time.perf_counter()
        for part in chunks:
            summary.generate_seconds += time.perf_counter() - tick
            tick = time.perf_counter()
            with conn.cursor() as cur:
                for table, columns, rows in (
                    ("loyalty_members", MEMBER_COLUMNS, part.members),
                    ("loyalty_orders", ORDER_COLUMNS, part.orders),
                    ("loyalty_order_lines", LINE_COLUMNS, part.lines),
                ):
                    if rows is None:
                        continue
                    with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                        for row in _rows(rows, columns, sqlite_time=False):
                            copy.write_row(row)
            conn.commit()
            summary.members += len(part.members["id"])
            summary.orders += len(part.orders["id"])
            summary.lines += 0 if part.lines is None else len(part.lines["id"])
            summary.outcome.add(part.outcome)
            summary.write_seconds += time.perf_counter() - tick
            if progress:
                print(f"  loaded {summary.members:,} members, {summary.orders:,} orders", flush=True)
            tick = time.perf_counter()
        tick = time.perf_counter()
        with conn.cursor() as cur:
            for table in ("loyalty_members", "loyalty_orders", "loyalty_order_lines"):
                cur.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"COALESCE((SELECT max(id) FROM {table}), 0) + 1, false)"
                )
        conn.commit()
        conn.autocommit = True
        for table in ("loyalty_members", "loyalty_orders", "loyalty_order_lines"):
            conn.execute(f"VACUUM ANALYZE {table}")
    summary.finish_seconds = time.perf_counter() - tick
    return summary


def prepare_database(url: str, *, fresh: bool = True) -> None:
    """Empty the bench database (a SQLite file, or a PostgreSQL database named ``*bench*``) and
    create the plugin's tables through its own migrations."""
    from loyalty_plugin import migrate
    from loyalty_plugin.database import make_engine

    parsed = make_url(url)
    if fresh and parsed.get_backend_name() == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            Path(f"{parsed.database}{suffix}").unlink(missing_ok=True)
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    elif fresh:
        if "bench" not in (parsed.database or ""):
            raise SystemExit(f"Refusing to empty {parsed.database!r}: bench databases must have 'bench' in the name.")
        import psycopg
        from psycopg import sql

        server = libpq_url(parsed.set(database="postgres").render_as_string(hide_password=False))
        with psycopg.connect(server, autocommit=True) as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [parsed.database]).fetchone() is None:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(parsed.database)))
        with psycopg.connect(libpq_url(url), autocommit=True) as conn:
            conn.execute("DROP SCHEMA public CASCADE")
            conn.execute("CREATE SCHEMA public")
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    c = sub.add_parser("csv", help="write an order-lines CSV for import-orders")
    c.add_argument("path")
    c.add_argument("--orders", type=int, default=200_000)
    c.add_argument("--lines", type=int, default=1_000_000)
    c.add_argument("--customers", type=int, default=40_000)
    c.add_argument("--guest-share", type=float, default=0.0)
    c.add_argument("--seed", type=int, default=7)
    d = sub.add_parser("db", help="empty a bench database, migrate it and bulk-load members and orders")
    d.add_argument("url", help="sqlite:///path.sqlite or postgresql+psycopg://…/test_bench")
    d.add_argument("--members", type=int, default=100_000)
    d.add_argument("--with-lines", action="store_true", help="also load the order lines")
    d.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if args.what == "csv":
        s = write_order_csv(
            args.path,
            seed=args.seed,
            orders=args.orders,
            lines=args.lines,
            customers=args.customers,
            guest_share=args.guest_share,
        )
        print(
            f"{s.path}: {s.lines:,} lines, {s.orders:,} orders, {s.customers:,} customers, {s.guests:,} guest "
            f"orders, {s.first} .. {s.last}, written in {s.seconds:.1f} s"
        )
        return
    prepare_database(args.url)
    loaded = load_shop(args.url, generate_shop(args.members, seed=args.seed, with_lines=args.with_lines))
    print(
        f"{loaded.members:,} members, {loaded.orders:,} orders, {loaded.lines:,} lines: generated in "
        f"{loaded.generate_seconds:.1f} s, written in {loaded.write_seconds + loaded.finish_seconds:.1f} s"
    )
    print(f"expected tier run at {NOW}: {loaded.outcome}")


if __name__ == "__main__":
    main()
