"""Nightly churn scan: ``loyalty_plugin.retention.churn_scan`` over 100k members, as the job runs it.

No SPEC target for the whole scan (the BG/NBD + Gamma-Gamma fit and scoring of 100k members
has one, <= 10 s, measured by ``bench_value_models.py``): this bench says where its time goes.

The shop is simulated from the BG/NBD's own story, so that churn is there to be learnt: each
customer's first purchase falls anywhere in the last two years, then purchases come as a
Poisson process at a Gamma-distributed rate (many rare buyers, a few every week or two) until
the customer leaves, with a Beta-distributed chance after each repeat purchase; order values
are Gamma-Gamma. 100k members (7 % never ordered, 0.5 % erased) plus 15 % as many customers
who buy without enrolling, 5 % guest orders, refunds: ~6.6 orders per member, ~800k orders.
The loyalty tables the scan reads come with them: the tier history of a tier evaluation every
30 days, and the points ledger (sign-up bonus, each order's pending points and their release
14 days later, redemptions), ~1.5M entries. It is simulated and bulk-loaded (``executemany`` on
SQLite, ``COPY`` on PostgreSQL) in a process of its own, timed apart, so that the measuring
process holds nothing of it.

The figure is one run of the job, ``job_runs.run_job(state, "churn", now=...)``, broken down
by phase: the scan's functions are wrapped (in this process only; nothing is edited) and each
phase's time is its own, without the phases it calls, so the phases add up to the wall time;
the process's peak RSS is read and reset at every phase boundary, so each phase has its own.
The counts the job recorded are checked against what the simulation says they must be, and
the churn model's hold-out AUC (from ``loyalty_model_reports``) is shown beside two references:
the BG/NBD with the simulated parameters read off each customer's history (about the best a
model of the purchase history can do) and the simulation's hidden truth (which no model can
know). A second run "the next night" shows the steady state: the open alerts to settle, a new
day of scores, no member alerted twice. ``--winback`` gives each alert a coupon, as a shop
with ``LOYALTY_WINBACK_REWARD`` set would.
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import io
import multiprocessing
import pstats
import re
import sqlite3
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from bench.common import (
    Figure,
    add_common_arguments,
    machine_facts,
    make_app,
    print_facts,
    print_figures,
    write_json,
)
from bench.generate import (
    DEFAULT_TIERS,
    NOW,
    SECOND,
    libpq_url,
    prepare_database,
    shipping_and_refunds,
    time_text,
)

HISTORY_DAYS = 730
DAY_S = 86_400
#: The plugin's defaults the expectations are worked out with.
HORIZON_DAYS = 90
RFM_WINDOW_DAYS = 365
TIER_WINDOW_DAYS = 365
TIER_KEEP_DAYS = 365


# The simulated shop ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shape:
    """The knobs of :func:`simulate_shop`."""

    non_member_share: float = 0.15  # customers who buy without enrolling, per member
    never_ordered_share: float = 0.07  # members who enrolled and never ordered
    rate_shape: float = 0.9  # BG/NBD r: purchase rates while alive ~ Gamma(r, ...)
    orders_per_year: float = 16.0  # their mean
    dropout_a: float = 1.0  # chance of leaving after each repeat purchase ~ Beta(a, b)
    dropout_b: float = 6.0
    spend_p: float = 4.0  # Gamma-Gamma: order value ~ Gamma(p, nu), nu ~ Gamma(q, v)
    spend_q: float = 5.0
    spend_v: float = 60.0
    guest_share: float = 0.05
    partial_refund_share: float = 0.03
    full_refund_share: float = 0.015
    erased_share: float = 0.005
    shipping: int = 495
    free_shipping_from: int = 5000
    signup_points: int = 100
    pending_days: int = 14
    redeem_share: float = 0.12  # of a member's repeat orders, where points are redeemed
    redeem_fraction: float = 0.6  # of the points released since the last redemption
    tier_every_days: int = 30


@dataclass
class Expected:
    """What a correct scan at ``NOW`` must report, worked out from the simulation."""

    customers: int = 0
    kept_orders: int = 0
    scored: int = 0
    rfm: int = 0
    rfm_next_night: int = 0
    n_test: int = 0
    churn_rate_test: float = float("nan")
    oracle_auc: float = float("nan")
    true_bgnbd_auc: float = float("nan")

    def segmented(self, night: int = 1) -> int:
        return (self.rfm if night == 1 else self.rfm_next_night) + self.scored


@dataclass
class Shop:
    tables: list[tuple[str, dict[str, np.ndarray]]]
    expected: Expected
    seconds: float


def simulate_purchases(
    rng: np.random.Generator, start: np.ndarray, rate: np.ndarray, leave: np.ndarray, end: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """BG/NBD in continuous time (days): a first purchase at ``start``, then purchases at
    ``rate`` per day while alive, leaving with probability ``leave`` after each repeat purchase.
    Returns (customer, day) of every purchase before ``end`` and the day each customer left
    (inf: still alive at ``end``)."""
    n = len(start)
    who, when = [np.arange(n)], [start.copy()]
    left = np.full(n, np.inf)
    at = start.copy()
    active = np.arange(n)
    while active.size:
        at[active] += rng.exponential(1.0, active.size) / rate[active]
        bought = active[at[active] < end]
        who.append(bought)
        when.append(at[bought].copy())
        stays = rng.random(bought.size) >= leave[bought]
        left[bought[~stays]] = at[bought[~stays]]
        active = bought[stays]
    return np.concatenate(who), np.concatenate(when), left


def _text_ids(prefix: str, ids: np.ndarray, width: int) -> np.ndarray:
    return np.char.add(prefix, np.char.zfill(ids.astype(str), width)).astype(object)


def simulate_shop(members: int, *, seed: int = 7, now: datetime = NOW, shape: Shape | None = None) -> Shop:
    """Members ``1..members``, their orders, tier history and points ledger, ids ready to load."""
    started = time.perf_counter()
    shape = shape or Shape()
    rng = np.random.default_rng([seed, 11])
    end = np.datetime64(now, "s")
    origin = end - HISTORY_DAYS * DAY_S * SECOND
    outsiders = round(members * shape.non_member_share)

    # Who buys: members who ever ordered, then customers who never enrolled.
    ordered = rng.random(members) >= shape.never_ordered_share
    buyer_member = np.flatnonzero(ordered)  # member index (id - 1) of each buying member
    n = len(buyer_member) + outsiders
    first = rng.uniform(0.0, HISTORY_DAYS, n)
    alpha = shape.rate_shape / (shape.orders_per_year / 365)
    rate = np.maximum(rng.gamma(shape.rate_shape, 1 / alpha, n), 1e-9)
    leave = rng.beta(shape.dropout_a, shape.dropout_b, n)
    who, day, left = simulate_purchases(rng, first, rate, leave, HISTORY_DAYS)
    placed = origin + np.minimum((day * DAY_S).astype(np.int64), HISTORY_DAYS * DAY_S - 1) * SECOND
    nu = rng.gamma(shape.spend_q, 1 / shape.spend_v, n)
    value = rng.gamma(shape.spend_p, 1 / nu[who])

    # Guest orders: no id to follow, values like everyone else's.
    guests = rng.binomial(len(who), shape.guest_share)
    guest_placed = end - rng.integers(1, HISTORY_DAYS * DAY_S, guests) * SECOND
    guest_value = rng.gamma(shape.spend_p, 1 / rng.gamma(shape.spend_q, 1 / shape.spend_v, guests))

    customer = np.concatenate([who, np.full(guests, -1)])  # -1: guest
    placed = np.concatenate([placed, guest_placed])
    subtotal = np.maximum(np.round(np.concatenate([value, guest_value]) * 100), 100).astype(np.int64)
    by_time = np.argsort(placed, kind="stable")  # order ids grow with time, as in a live shop
    customer, placed, subtotal = customer[by_time], placed[by_time], subtotal[by_time]
    count = len(placed)
    member_idx = np.where(customer >= 0, np.append(buyer_member, np.full(outsiders, -1))[customer], -1)
    is_member = member_idx >= 0
    outsider_no = np.where((customer >= 0) & ~is_member, customer - len(buyer_member), -1)
    shipping, total, refunded = shipping_and_refunds(rng, subtotal, shape)

    # Members: enrolled at their first order (three in ten some weeks before), or anywhere.
    enrolled = end - rng.integers(DAY_S, HISTORY_DAYS * DAY_S, members) * SECOND
    first_at = origin + (first[: len(buyer_member)] * DAY_S).astype(np.int64) * SECOND
    early = (rng.random(len(buyer_member)) < 0.3) * rng.integers(0, 60 * DAY_S, len(buyer_member))
    enrolled[buyer_member] = first_at - early * SECOND
    erased = rng.random(members) < shape.erased_share
    ids = np.arange(1, members + 1, dtype=np.int64)

    user_text = _text_ids("u", ids, 8)
    user_text[erased] = np.char.add("erased:", ids[erased].astype(str)).astype(object)
    order_user = np.full(count, None, dtype=object)
    live_member = is_member & ~erased[np.maximum(member_idx, 0)]
    order_user[live_member] = user_text[member_idx[live_member]]
    outsider = outsider_no >= 0
    order_user[outsider] = _text_ids("c", outsider_no[outsider] + 1, 8)
    order_ids = np.arange(1, count + 1, dtype=np.int64)
    points = np.where(is_member, subtotal // 100, 0).astype(np.int64)
    orders = {
        "id": order_ids,
        "order_id": _text_ids("B", order_ids, 10),
        "user_id": order_user,
        "member_id": np.where(is_member, member_idx + 1, None).astype(object),
        "placed_at": placed,
        "total": total,
        "shipping": shipping,
        "tax": np.zeros(count, dtype=np.int64),
        "refunded_total": refunded,
        "points_earned": points,
        "points_clawed_back": np.zeros(count, dtype=np.int64),
        "fingerprint": np.frombuffer(rng.bytes(32 * count).hex().encode(), dtype="S64").astype("U64"),
        "source": np.full(count, "api", dtype=object),
        "created_at": placed,
    }

    tier_code, reached, history = _tiers(shape, members, enrolled, member_idx, placed, total - refunded - shipping, end)
    ledger, balance, pending = _ledger(rng, shape, members, enrolled, member_idx, placed, points, orders, end)
    birthday = np.datetime64("1950-01-01") + rng.integers(0, 55 * 365, members).astype("timedelta64[D]")
    members_table = {
        "id": ids,
        "user_id": user_text,
        "email": np.where(erased, None, np.char.add(np.char.add("u", ids.astype(str)), "@example.com").astype(object)),
        "name": np.full(members, None, dtype=object),
        "birthday": np.where(
            (rng.random(members) < 0.6) & ~erased, np.datetime_as_string(birthday).astype(object), None
        ),
        "marketing_opt_in": (rng.random(members) < 0.4) & ~erased,
        "referral_code": np.where(
            erased, np.char.add("ERASED", ids.astype(str)).astype(object), _text_ids("CHURN", ids, 9)
        ),
        "referred_by_id": np.full(members, None, dtype=object),
        "tier_code": tier_code,
        "tier_reached_at": reached,
        "points_balance": balance,
        "points_pending": pending,
        "enrolled_at": enrolled,
        "erased_at": np.where(erased, end - 3600 * SECOND, np.datetime64("NaT", "s")),
    }
    expected = _expect(
        shape, order_user, customer, placed, total - refunded, left, rate, buyer_member, outsiders, end, origin
    )
    tables = [
        ("loyalty_members", members_table),
        ("loyalty_orders", orders),
        ("loyalty_tier_history", history),
        ("loyalty_ledger_entries", ledger),
    ]
    return Shop(tables, expected, time.perf_counter() - started)


def _tiers(
    shape: Shape,
    members: int,
    enrolled: np.ndarray,
    member_idx: np.ndarray,
    placed: np.ndarray,
    spend: np.ndarray,
    end: np.datetime64,
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """The tier rules of ``evaluate_tiers`` applied every ``tier_every_days`` over the history:
    up as soon as the 12-month spend qualifies, down one step once the tier is a year old."""
    thresholds = np.array([cents for _, cents in DEFAULT_TIERS], dtype=np.int64)
    codes = np.array([code for code, _ in DEFAULT_TIERS], dtype=object)
    current = np.zeros(members, dtype=np.int64)
    reached = enrolled.copy()
    mine = member_idx >= 0
    who, when, spent = member_idx[mine], placed[mine], spend[mine]
    rows: dict[str, list[np.ndarray]] = defaultdict(list)
    moment = end - HISTORY_DAYS * DAY_S * SECOND + 2 * 3600 * SECOND
    while (moment := moment + shape.tier_every_days * DAY_S * SECOND) < end:
        window = (when > moment - TIER_WINDOW_DAYS * DAY_S * SECOND) & (when <= moment)
        cents = np.bincount(who[window], weights=spent[window], minlength=members).astype(np.int64)
        qualified = np.searchsorted(thresholds, np.maximum(cents, 0), side="right") - 1
        protected = reached > moment - TIER_KEEP_DAYS * DAY_S * SECOND
        new = np.where(
            qualified > current, qualified, np.where((qualified < current) & ~protected, current - 1, current)
        )
        changed = np.flatnonzero((enrolled <= moment) & (new != current))
        rows["member_id"].append(changed + 1)
        rows["from_tier"].append(codes[current[changed]])
        rows["to_tier"].append(codes[new[changed]])
        rows["reason"].append(np.where(new[changed] > current[changed], "upgrade", "downgrade").astype(object))
        rows["qualifying_spend"].append(cents[changed])
        rows["changed_at"].append(np.full(len(changed), moment))
        current[changed] = new[changed]
        reached[changed] = moment
    history = {name: np.concatenate(parts) for name, parts in rows.items()}
    history = {"id": np.arange(1, len(history["member_id"]) + 1, dtype=np.int64), **history}
    return codes[current], reached, history


def _ledger(
    rng: np.random.Generator,
    shape: Shape,
    members: int,
    enrolled: np.ndarray,
    member_idx: np.ndarray,
    placed: np.ndarray,
    points: np.ndarray,
    orders: dict[str, np.ndarray],
    end: np.datetime64,
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """The points ledger as the plugin writes it: a sign-up bonus; per order, points pending
    for the return window, then released; redemptions at some repeat orders, of part of the
    points released since the member's last one. Returns the table, balances and pending."""
    earned = np.flatnonzero((member_idx >= 0) & (points > 0))
    released = earned[placed[earned] + shape.pending_days * DAY_S * SECOND <= end]
    mine = np.flatnonzero(member_idx >= 0)  # orders are in time order: a member's first comes first
    repeat = np.delete(mine, np.unique(member_idx[mine], return_index=True)[1])
    redeem = repeat[rng.random(len(repeat)) < shape.redeem_share]
    parts = [
        # kind, member index, moment, points, pending, cause, order id
        ("signup", np.arange(members), enrolled, np.full(members, shape.signup_points), np.zeros(members), None),
        ("earn", member_idx[earned], placed[earned], np.zeros(len(earned)), points[earned], earned),
        (
            "release",
            member_idx[released],
            placed[released] + shape.pending_days * DAY_S * SECOND,
            points[released],
            -points[released],
            released,
        ),
        ("redeem", member_idx[redeem], placed[redeem] + SECOND, np.zeros(len(redeem)), np.zeros(len(redeem)), None),
    ]
    kind = np.concatenate([np.full(len(p[1]), p[0], dtype=object) for p in parts])
    who = np.concatenate([p[1] for p in parts]).astype(np.int64)
    at = np.concatenate([p[2] for p in parts])
    pts = np.concatenate([p[3] for p in parts]).astype(np.int64)
    held = np.concatenate([p[4] for p in parts]).astype(np.int64)
    order_pos = np.concatenate([np.full(len(p[1]), -1) if p[5] is None else p[5] for p in parts])
    step = np.concatenate([np.full(len(p[1]), i) for i, p in enumerate(parts)])
    # Per member in time order: a redemption takes a share of what was released since the last one.
    by_member = np.lexsort((step, at, who))
    who_s, pts_s, is_redeem = who[by_member], pts[by_member], kind[by_member] == "redeem"
    new_member = np.r_[True, who_s[1:] != who_s[:-1]]
    starts = new_member | np.r_[False, is_redeem[:-1]]
    segment = np.cumsum(starts) - 1
    gained = np.bincount(segment, weights=np.maximum(pts_s, 0))
    pts_s[is_redeem] = -np.floor(gained[segment[is_redeem]] * shape.redeem_fraction).astype(np.int64)
    pts[by_member] = pts_s
    balance_s = np.cumsum(pts_s)
    balance_s -= np.repeat(np.r_[0, balance_s[:-1]][new_member], np.diff(np.r_[np.flatnonzero(new_member), len(who_s)]))
    balance_after = np.empty_like(balance_s)
    balance_after[by_member] = balance_s
    keep = ~((kind == "redeem") & (pts == 0))
    balance = np.bincount(who, weights=pts, minlength=members).astype(np.int64)
    pending = np.bincount(who, weights=held, minlength=members).astype(np.int64)
    # Ids in time order, as a live ledger has them.
    by_time = np.lexsort((step, at))
    by_time = by_time[keep[by_time]]
    n = len(by_time)
    entry_ids = np.arange(1, n + 1, dtype=np.int64)
    order_text = np.full(n, None, dtype=object)
    has_order = order_pos[by_time] >= 0
    order_text[has_order] = orders["order_id"][order_pos[by_time][has_order]]
    kinds = kind[by_time]
    cause = np.char.add(np.char.add(kinds.astype(str), ":"), entry_ids.astype(str)).astype(object)
    cause[kinds == "earn"] = np.char.add("order:", order_text[kinds == "earn"].astype(str)).astype(object)
    ledger = {
        "id": entry_ids,
        "member_id": who[by_time] + 1,
        "kind": kinds,
        "points": pts[by_time],
        "pending": held[by_time],
        "balance_after": balance_after[by_time],
        "cause": cause,
        "order_id": order_text,
        "created_at": at[by_time],
    }
    return ledger, balance, pending


def _expect(
    shape: Shape,
    order_user: np.ndarray,
    customer: np.ndarray,
    placed: np.ndarray,
    paid: np.ndarray,
    left: np.ndarray,
    rate: np.ndarray,
    buyer_member: np.ndarray,
    outsiders: int,
    end: np.datetime64,
    origin: np.datetime64,
) -> Expected:
    """The scan's transactions are the kept purchases of known customers: count what it must
    score and segment and the hold-out test set it must report. Two references for its AUC on
    that set: the simulation's truth (gone for good, else the Poisson chance of a silent
    horizon at the customer's own rate), which no model can know, and the BG/NBD with the
    simulated parameters read off each customer's history, about the best a model of the
    purchase history alone can do."""
    import pandas as pd
    from sklearn.metrics import roc_auc_score

    from loyalty_plugin.analytics.bgnbd import BetaGeoModel
    from loyalty_plugin.analytics.churn import p_no_purchase
    from loyalty_plugin.analytics.summary import rfm_summary

    kept = (paid > 0) & (order_user != None)  # noqa: E711 (elementwise)
    who, at = customer[kept], placed[kept]
    n = len(buyer_member) + outsiders
    is_member = np.arange(n) < len(buyer_member)
    live = np.zeros(n, dtype=bool)
    live[np.unique(who)] = True  # erased members' orders lost their user id, so they are not here
    cutoff = end - HORIZON_DAYS * DAY_S * SECOND
    recent = np.zeros(n, dtype=bool)
    recent[np.unique(who[at > end - RFM_WINDOW_DAYS * DAY_S * SECOND])] = True
    next_night = np.zeros(n, dtype=bool)
    next_night[np.unique(who[at > end + (1 - RFM_WINDOW_DAYS) * DAY_S * SECOND])] = True
    before = np.zeros(n, dtype=bool)
    before[np.unique(who[at <= cutoff])] = True
    came_back = np.zeros(n, dtype=bool)
    came_back[np.unique(who[at > cutoff])] = True
    label = (~came_back[before]).astype(int)
    # The truth at the test cutoff: gone for good, or alive and silent for the horizon by chance.
    cutoff_day = (cutoff - origin) / SECOND / DAY_S
    gone = left[before] <= cutoff_day
    truth = np.where(gone, 1.0, np.exp(-rate[before] * HORIZON_DAYS))
    seen = at <= cutoff
    history = pd.DataFrame({"customer": who[seen], "at": at[seen], "amount": paid[kept][seen] / 100})
    summary = rfm_summary(history, until=pd.Timestamp(cutoff)).reindex(np.flatnonzero(before).astype(str))
    model = BetaGeoModel()
    model.params_ = {
        "r": shape.rate_shape,
        "alpha": shape.rate_shape / (shape.orders_per_year / 365),
        "a": shape.dropout_a,
        "b": shape.dropout_b,
    }
    true_bgnbd = p_no_purchase(model, HORIZON_DAYS, summary)
    return Expected(
        customers=int(live.sum()),
        kept_orders=int(kept.sum()),
        scored=int((live & is_member).sum()),
        rfm=int((recent & is_member).sum()),
        rfm_next_night=int((next_night & is_member).sum()),
        n_test=int(before.sum()),
        churn_rate_test=float(label.mean()),
        oracle_auc=float(roc_auc_score(label, truth)),
        true_bgnbd_auc=float(roc_auc_score(label, np.asarray(true_bgnbd))),
    )


# Bulk loading --------------------------------------------------------------------------------------

CHUNK = 200_000


def _python_column(values: np.ndarray, *, sqlite: bool) -> list[Any]:
    """Values a driver binds: datetimes as SQLAlchemy's SQLite text or as datetime, NaT as None."""
    if np.issubdtype(values.dtype, np.datetime64):
        missing = np.isnat(values)
        out = time_text(values, unit="us").astype(object) if sqlite else values.astype("datetime64[us]").astype(object)
        out[missing] = None
        return out.tolist()
    return values.tolist()


def _chunks(table: dict[str, np.ndarray], *, sqlite: bool) -> Iterator[list[tuple[Any, ...]]]:
    size = len(next(iter(table.values())))
    for lo in range(0, size, CHUNK):
        columns = [_python_column(np.asarray(v[lo : lo + CHUNK]), sqlite=sqlite) for v in table.values()]
        yield list(zip(*columns, strict=True))


@dataclass
class Loaded:
    rows: dict[str, int] = field(default_factory=dict)
    write_seconds: float = 0.0
    finish_seconds: float = 0.0


def load_tables(url: str, tables: list[tuple[str, dict[str, np.ndarray]]]) -> Loaded:
    """Append the rows to the migrated, empty tables at ``url``, parents first."""
    loaded = Loaded()
    started = time.perf_counter()
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        conn = sqlite3.connect(parsed.database, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("BEGIN")
        for name, table in tables:
            sql = f"INSERT INTO {name} ({', '.join(table)}) VALUES ({', '.join('?' * len(table))})"
            for rows in _chunks(table, sqlite=True):
                conn.executemany(sql, rows)
                loaded.rows[name] = loaded.rows.get(name, 0) + len(rows)
        conn.execute("COMMIT")
        loaded.write_seconds = time.perf_counter() - started
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()
    else:
        import psycopg

        with psycopg.connect(libpq_url(url)) as conn:
            try:  # the keys are consistent by construction: skip the per-row foreign-key triggers
                conn.execute("SET session_replication_role = replica")
            except psycopg.errors.InsufficientPrivilege:
                conn.rollback()
            with conn.cursor() as cur:
                for name, table in tables:
                    with cur.copy(f"COPY {name} ({', '.join(table)}) FROM STDIN") as copy:
                        for rows in _chunks(table, sqlite=False):
                            for row in rows:
                                copy.write_row(row)
                            loaded.rows[name] = loaded.rows.get(name, 0) + len(rows)
            conn.commit()
            loaded.write_seconds = time.perf_counter() - started
            with conn.cursor() as cur:
                for name, _ in tables:
                    cur.execute(
                        f"SELECT setval(seq, COALESCE((SELECT max(id) FROM {name}), 0) + 1, false) "
                        f"FROM pg_get_serial_sequence('{name}', 'id') AS seq WHERE seq IS NOT NULL"
                    )
            conn.commit()
            conn.autocommit = True
            for name, _ in tables:
                conn.execute(f"VACUUM ANALYZE {name}")
    loaded.finish_seconds = time.perf_counter() - started - loaded.write_seconds
    return loaded


# Phases --------------------------------------------------------------------------------------------

#: The group each phase is reported under, in the order the scan runs them.
GROUPS = (
    "settle alerts",
    "load transactions",
    "member attributes",
    "model fit + scoring",
    "segments (RFM + K-means)",
    "write scores/segments/reports",
    "alerts (candidates + raise)",
    "other",
)


OUTSIDE = ("other", "run_job: claim, lock, record the run")


class Phases:
    """Time spent in wrapped functions, each call's own time only (nested wrapped calls are
    their own phases), so that the phases of a run add up to its wall time. With ``memory``,
    also the peak RSS in each phase's own stretches: the high-water mark is read and reset at
    every phase boundary (Linux's ``/proc/self/clear_refs``)."""

    def __init__(self, *, memory: bool = False) -> None:
        self.seconds: dict[tuple[str, str], float] = defaultdict(float)
        self.calls: Counter[tuple[str, str]] = Counter()
        self.peak: dict[tuple[str, str], int] = defaultdict(int)
        self.memory = memory
        self._stack: list[tuple[tuple[str, str], list[float]]] = []

    def _boundary(self, key: tuple[str, str]) -> None:
        """The peak since the last boundary belongs to ``key``, the phase that was running."""
        if self.memory:
            self.peak[key] = max(self.peak[key], _status("VmHWM"))
            reset_peak_rss()

    def wrap(self, group: str, label: str | Callable[..., str], fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            key = (group, label(*args, **kwargs) if callable(label) else label)
            self._boundary(self._stack[-1][0] if self._stack else OUTSIDE)
            inner = [0.0]
            self._stack.append((key, inner))
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - started
                self._stack.pop()
                self._boundary(key)
                self.seconds[key] += elapsed - inner[0]
                self.calls[key] += 1
                if self._stack:
                    self._stack[-1][1][0] += elapsed

        return timed

    def add(self, key: tuple[str, str], seconds: float) -> None:
        self.seconds[key] += seconds
        self.calls[key] += 1

    def by_group(self) -> dict[str, float]:
        totals = dict.fromkeys(GROUPS, 0.0)
        for (group, _), seconds in self.seconds.items():
            totals[group] += seconds
        return totals

    def peak_rss(self) -> int:
        return max(self.peak.values(), default=0)

    def print(self, wall: float, tag: str) -> None:
        print(f"{tag} where the time goes (each phase's own time; they add up to the wall time):")
        memory = " peak RSS" if self.memory else ""
        print(f"  {'phase':<52} {'seconds':>8}  {'share':>6}  {'calls':>5} {memory}")
        for group, total in self.by_group().items():
            peak = max((p for k, p in self.peak.items() if k[0] == group), default=0)
            mib = f"  {peak / 1024:6,.0f} MiB" if self.memory else ""
            print(f"  {group:<52} {total:8.2f}  {100 * total / wall:5.1f}%  {'':>5}{mib}")
            parts = sorted(((k, s) for k, s in self.seconds.items() if k[0] == group), key=lambda p: -p[1])
            for key, seconds in parts:
                mib = f"  {self.peak[key] / 1024:6,.0f} MiB" if self.memory else ""
                print(f"    {key[1]:<50} {seconds:8.2f}  {100 * seconds / wall:5.1f}%  {self.calls[key]:>5}{mib}")
        print(f"  {'total (wall)':<52} {wall:8.2f}", flush=True)


def _table_label(prefix: str) -> Callable[..., str]:
    names = {
        "loyalty_member_scores": "write member scores",
        "loyalty_member_segments": "write member segments",
        "loyalty_model_reports": "write model reports",
    }

    def label(store: Any, table: Any, *args: Any, **kwargs: Any) -> str:
        return names.get(table.name, f"{prefix} {table.name}")

    return label


@contextmanager
def instrumented(phases: Phases) -> Iterator[list[str]]:
    """Wrap the scan's steps for the duration; yields the names that could not be wrapped (a
    changed module), which then count in the phase that calls them."""
    from loyalty_plugin import retention
    from loyalty_plugin.analytics import bgnbd, churn, gamma_gamma, segments

    model = "model fit + scoring"
    seg = "segments (RFM + K-means)"
    write = "write scores/segments/reports"
    alerts = "alerts (candidates + raise)"
    original_attributes = getattr(retention, "member_attributes", None)

    def attributes(store: Any, settings: Any) -> Any:
        at = original_attributes(store, settings)  # type: ignore[misc]
        return phases.wrap("member attributes", "tier history + ledger as of a cutoff", at)

    targets: list[tuple[Any, str, str, str | Callable[..., str]]] = [
        (retention, "churn_scan", "other", "churn_scan's own code (members query, score rows)"),
        (retention, "settle_alerts", "settle alerts", "settle_alerts"),
        (retention, "load_transactions", "load transactions", "load_transactions (every order)"),
        (retention, "score_members", model, "score_members' own code"),
        (churn, "history_at", model, "features: RFM, trends (history_at's own code)"),
        (churn, "_gap_features", model, "features: purchase gaps"),
        (churn, "rfm_summary", model, "rfm_summary (BG/NBD input)"),
        (churn, "churn_labels", model, "churn labels"),
        (churn, "_report", model, "hold-out report (AUC, baselines, calibration)"),
        (churn, "_value", model, "Gamma-Gamma + CLV (_value's own code)"),
        (getattr(churn, "ChurnModel", None), "fit", model, "classifier fit"),
        (getattr(churn, "ChurnModel", None), "predict_proba", model, "classifier scoring"),
        (bgnbd.BetaGeoModel, "fit", model, "BG/NBD fit"),
        (bgnbd.BetaGeoModel, "probability_alive", model, "BG/NBD scoring"),
        (bgnbd.BetaGeoModel, "expected_purchases", model, "BG/NBD scoring"),
        (gamma_gamma.GammaGammaModel, "fit", model, "Gamma-Gamma fit"),
        (retention, "_segment", seg, "_segment's own code (rows)"),
        (retention, "rfm_scores", seg, "RFM scores"),
        (retention, "name_segments", seg, "RFM segment names"),
        (getattr(segments, "ValueSegments", None), "fit", seg, "ValueSegments.fit's own code"),
        (getattr(segments, "KMeans", None), "fit", seg, "K-means fits (k = 2..8, n_init = 4)"),
        (segments, "silhouette_score", seg, "silhouette of each k (10k sample)"),
        (getattr(segments, "ValueSegments", None), "predict", seg, "K-means value segments: predict"),
        (retention, "_insert_missing", write, _table_label("write")),
        (retention, "_report", write, "write model reports"),
        (retention, "_alert_candidates", alerts, "_alert_candidates"),
        (retention, "raise_alerts", alerts, "raise_alerts (insert, coupon, signal)"),
    ]
    saved: list[tuple[Any, str, Any]] = []
    missing: list[str] = []
    for owner, name, group, label in targets:
        fn = owner.__dict__.get(name) if isinstance(owner, type) else getattr(owner, name, None)
        if owner is None or fn is None:
            missing.append(f"{getattr(owner, '__name__', owner)}.{name}")
            continue
        saved.append((owner, name, fn))
        setattr(owner, name, phases.wrap(group, label, fn))
    if original_attributes is not None:
        saved.append((retention, "member_attributes", original_attributes))
        retention.member_attributes = attributes
    try:
        yield missing
    finally:
        for owner, name, fn in reversed(saved):
            setattr(owner, name, fn)


# Peak memory -----------------------------------------------------------------------------------


def _status(key: str) -> int:
    """A ``/proc/self/status`` figure in KiB (0 where there is none)."""
    try:
        found = re.search(rf"^{key}:\s+(\d+)", Path("/proc/self/status").read_text(), re.M)
    except OSError:
        return 0
    return int(found.group(1)) if found else 0


def reset_peak_rss() -> bool:
    """Reset the high-water mark of the resident set (Linux >= 4.0); False where it cannot be."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


# The measurement -------------------------------------------------------------------------------


@dataclass
class Night:
    counts: dict[str, int]
    status: str
    wall: float
    phases: Phases
    rss_before: int
    rss_peak: int
    peak_is_scan: bool
    profile: str = ""


def run_night(app: Any, now: datetime, *, profile: bool) -> Night:
    """One run of the churn job through ``run_job``, as the scheduler runs it, instrumented."""
    import gc

    from loyalty_plugin.job_runs import run_job

    state = app.extensions["loyalty"]
    gc.collect()
    rss_before = _status("VmRSS")
    peak_is_scan = reset_peak_rss()
    phases = Phases(memory=peak_is_scan)
    profiler = cProfile.Profile() if profile else None
    with instrumented(phases) as missing, app.app_context():
        if missing:
            print(f"note: not wrapped (changed modules?): {', '.join(missing)}")
        started = time.perf_counter()
        if profiler:
            profiler.enable()
        run = run_job(state, "churn", now=now)
        if profiler:
            profiler.disable()
        wall = time.perf_counter() - started
    phases.add(OUTSIDE, wall - sum(phases.seconds.values()))
    phases._boundary(OUTSIDE)
    text = ""
    if profiler:
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats("tottime").print_stats(25)
        stats.sort_stats("cumulative").print_stats(45)
        text = out.getvalue()
    if run is None:
        raise SystemExit("run_job did not run the churn job: another run owns the trigger.")
    peak = phases.peak_rss() if peak_is_scan else _status("VmHWM")
    return Night(dict(run.counts or {}), run.status, wall, phases, rss_before, peak, peak_is_scan, text)


@dataclass
class Stored:
    churn: dict[str, Any]
    value: dict[str, Any]
    scores: int
    segments: dict[str, int]
    open_alerts: int
    coupons: int


def stored(app: Any, day: Any) -> Stored:
    from loyalty_plugin.models import ChurnAlert, Coupon, MemberScore, MemberSegment, ModelReport

    with app.app_context(), app.extensions["loyalty"].store.work(write=False) as session:
        reports = dict(
            session.execute(select(ModelReport.model, ModelReport.details).where(ModelReport.fitted_on == day)).all()
        )
        scores = session.scalar(select(func.count()).select_from(MemberScore).where(MemberScore.scored_on == day))
        segments = dict(
            session.execute(
                select(MemberSegment.kind, func.count())
                .where(MemberSegment.computed_on == day)
                .group_by(MemberSegment.kind)
            ).all()
        )
        open_alerts = session.scalar(select(func.count()).select_from(ChurnAlert).where(ChurnAlert.status == "open"))
        coupons = session.scalar(select(func.count()).select_from(Coupon)) or 0
    return Stored(
        reports.get("churn") or {},
        reports.get("value_segments") or {},
        scores or 0,
        segments,
        open_alerts or 0,
        coupons,
    )


def _number(value: Any) -> float:
    return float("nan") if value is None else float(value)


def prepare_shop(url: str, members: int, seed: int, winback: bool) -> dict[str, Any]:
    """Simulate the shop and load it into an emptied database; run in a process of its own, so
    that the scan's process holds no trace of the simulation (memory, heap) when it is measured."""
    shop = simulate_shop(members, seed=seed)
    started = time.perf_counter()
    prepare_database(url)
    migrated = time.perf_counter() - started
    tables = shop.tables
    if winback:
        tables = [tables[0], ("loyalty_rewards", _winback_reward()), *tables[1:]]
    loaded = load_tables(url, tables)
    return {
        "expected": asdict(shop.expected),
        "rows": loaded.rows,
        "simulate": shop.seconds,
        "migrate": migrated,
        "write": loaded.write_seconds,
        "finish": loaded.finish_seconds,
        "load": time.perf_counter() - started,
    }


def bench(label: str, url: str, members: int, args: argparse.Namespace) -> list[Figure]:
    print(f"\n== {label}: {members:,} members ({url.split('@')[-1]})", flush=True)
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        shop = pool.submit(prepare_shop, url, members, args.seed, args.winback).result()
    expected = Expected(**shop["expected"])
    load_seconds = shop["load"]
    rows = ", ".join(f"{n:,} {name.removeprefix('loyalty_')}" for name, n in shop["rows"].items())
    print(
        f"data: {rows}; simulated in {shop['simulate']:.1f} s (in another process), then migrated "
        f"{shop['migrate']:.1f} s, written {shop['write']:.1f} s, finished (sequences/VACUUM ANALYZE/checkpoint) "
        f"{shop['finish']:.1f} s: loaded in {load_seconds:.1f} s"
    )
    print(
        f"the scan must see: {expected.customers:,} customers with {expected.kept_orders:,} kept purchases; score "
        f"{expected.scored:,} members, segment {expected.rfm:,} by RFM (an order in 365 days) + {expected.scored:,} "
        f"by value; hold-out test set {expected.n_test:,} customers, churn rate {expected.churn_rate_test:.3f}, "
        f"AUC references: the BG/NBD with the simulated parameters {expected.true_bgnbd_auc:.3f}, the "
        f"simulation's hidden truth {expected.oracle_auc:.3f}",
        flush=True,
    )
    config = {"LOYALTY_WINBACK_REWARD": 1} if args.winback else {}
    figures = []
    n = f"{members // 1000:,}k"
    with tempfile.TemporaryDirectory() as instance:
        app = make_app(url, instance, **config)
        nights = []
        for night, now in enumerate((NOW, NOW + timedelta(days=1))):
            tag = f"[{label} night {night + 1}]"
            result = run_night(app, now, profile=args.profile and night == 0)
            facts = stored(app, now.date())
            nights.append((result, facts))
            peak = "peak RSS of the scan" if result.peak_is_scan else "peak RSS of the process"
            print(
                f"\n{tag} run_job('churn') {result.status} in {result.wall:.2f} s: {result.counts}; "
                f"RSS {result.rss_before / 1024:,.0f} MiB before, {peak} {result.rss_peak / 1024:,.0f} MiB"
            )
            report = facts.churn
            print(
                f"{tag} stored: {facts.scores:,} scores, segments {facts.segments}, {facts.open_alerts:,} open alerts, "
                f"{facts.coupons:,} coupons; churn model ({report.get('estimator')}, risk from "
                f"{report.get('risk_source')}): hold-out AUC {_number(report.get('auc')):.3f}, Brier "
                f"{_number(report.get('brier')):.4f}, {report.get('n_train')} train / {report.get('n_test')} test, "
                f"churn rate {_number(report.get('churn_rate_test')):.3f}; baselines "
                + ", ".join(f"{k} {_number(v):.3f}" for k, v in (report.get("baselines") or {}).items())
                + f"; value segments k = {facts.value.get('k')}"
            )
            if report.get("notes"):
                print(f"{tag} model notes: {report['notes']}")
            result.phases.print(result.wall, tag)
            if result.profile:
                print(f"{tag} cProfile (timings inflated by the profiler):\n{result.profile}")
        app.extensions["loyalty"].store.dispose()

    (first, facts), (second, facts2) = nights
    counts = first.counts
    agree = (
        first.status == "succeeded"
        and counts.get("scored") == expected.scored
        and counts.get("segmented") == expected.segmented()
        and facts.scores == expected.scored
        and facts.open_alerts == counts.get("alerts")
        and facts.churn.get("n_test") == expected.n_test
    )
    settled = sum(v for k, v in second.counts.items() if k.startswith("alerts_"))
    again = (
        second.status == "succeeded"
        and second.counts.get("scored") == expected.scored
        and second.counts.get("segmented") == expected.segmented(2)
        and facts2.open_alerts == facts.open_alerts + second.counts.get("alerts", 0) - settled
    )
    print(
        f"[{label}] check, night 1: "
        + (
            "counts, stored rows and the test set match the simulation"
            if agree
            else f"DIFFERS from the simulation: expected {expected.scored:,} scored, {expected.segmented():,} "
            f"segmented, a test set of {expected.n_test:,}; got {counts}, {facts.scores:,} scores stored, a test "
            f"set of {facts.churn.get('n_test')}, {facts.open_alerts:,} open alerts"
        )
        + "; night 2: "
        + (
            "as expected"
            if again
            else f"DIFFERS: expected {expected.scored:,} scored, {expected.segmented(2):,} segmented, "
            f"{facts.open_alerts:,} + new - settled open alerts; got {second.counts}, {facts2.open_alerts:,} open"
        )
    )
    auc = _number(facts.churn.get("auc"))
    groups = first.phases.by_group()
    note = f"{counts.get('scored', 0):,} scored, {counts.get('segmented', 0):,} segments, "
    note += f"{counts.get('alerts', 0):,} alerts"
    figures.append(Figure(f"churn scan {label} {n} members", first.wall, "s", None, note, agree))
    figures += [
        Figure(f"  {group}", seconds, "s", None, f"{100 * seconds / first.wall:.0f} % of the scan")
        for group, seconds in groups.items()
    ]
    figures += [
        Figure(
            f"churn scan {label} next night",
            second.wall,
            "s",
            None,
            f"{second.counts.get('alerts', 0):,} new alerts, {second.counts.get('alerts_lapsed', 0):,} lapsed",
            again,
        ),
        Figure(
            f"churn hold-out AUC {label}",
            auc,
            "",
            None,
            f"true BG/NBD {expected.true_bgnbd_auc:.3f}, hidden truth {expected.oracle_auc:.3f}, recency "
            f"{_number((facts.churn.get('baselines') or {}).get('recency')):.3f}",
            bool(np.isfinite(auc)) and facts.churn.get("risk_source") == "classifier",
        ),
        Figure(
            f"churn scan {label} peak RSS",
            first.rss_peak / 1024,
            "MiB",
            None,
            f"{first.rss_before / 1024:,.0f} MiB before the scan"
            + ("" if first.peak_is_scan else "; process peak, could not reset"),
        ),
        Figure(f"churn scan {label} data load (not measured)", load_seconds, "s", None, rows),
    ]
    return figures


def _winback_reward() -> dict[str, np.ndarray]:
    """One reward to give as the win-back coupon (``--winback``)."""
    return {
        "id": np.array([1]),
        "name": np.array(["Win-back: 10 % off"], dtype=object),
        "kind": np.array(["percent"], dtype=object),
        "cost_points": np.array([0]),
        "percent": np.array([1000]),
        "max_discount": np.array([2000]),
        "active": np.array([True]),
        "created_at": np.array([np.datetime64(NOW - timedelta(days=HISTORY_DAYS), "s")]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_arguments(parser)
    parser.add_argument("--sqlite-members", type=int, default=100_000, help="0 to skip SQLite")
    parser.add_argument("--pg-members", type=int, default=100_000, help="0 to skip PostgreSQL")
    parser.add_argument("--quick", action="store_true", help="10k members on each database")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of each first night's scan")
    parser.add_argument("--winback", action="store_true", help="give a win-back coupon with each alert")
    args = parser.parse_args()
    if args.quick:
        args.sqlite_members, args.pg_members = min(args.sqlite_members, 10_000), min(args.pg_members, 10_000)
    facts = machine_facts(args.pg_url or None)
    print_facts(facts)
    figures: list[Figure] = []
    if args.sqlite_members:
        path = Path(args.workdir) / "bench_churn_scan.sqlite"
        figures += bench("SQLite", f"sqlite:///{path}", args.sqlite_members, args)
    if args.pg_url and args.pg_members:
        figures += bench("PostgreSQL", args.pg_url, args.pg_members, args)
    print_figures("churn scan (no SPEC target for the whole scan; its phases add up to its time)", figures)
    write_json(args.json, "churn_scan", figures, facts)


if __name__ == "__main__":
    main()
