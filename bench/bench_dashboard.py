"""Member dashboard under load: ``GET <prefix>/`` (``loyalty.dashboard``) against a bare Flask app.

Target (SPEC): at 100k members and ~2M ledger entries, the dashboard's throughput is at least
40 % of a bare Flask "hello" app served the same way in the same run, with p99 < 50 ms.

The shop: ``generate.py``'s members, orders and order lines (``generate_shop``), plus what the
plugin itself would have written for them, simulated member by member in time order with the
default rules: the sign-up bonus, birthday points, each order's points pending for 14 days and
then released, refunds clawing back pending points, redemptions into coupons (some used on the
order they were redeemed for, some kept, used later or left to lapse, some given back by a full
refund) taking the oldest lots first, lots expiring 365 days after release (the nightly job's
``expire`` entries) and the expiry warnings; erased members as ``erase`` leaves them. Ledger
entries, point lots and coupons get ids in time order, as a live shop has them; the catalog goes
to ``loyalty_items``. 100k members give ~2M ledger entries, ~1M orders and ~3M order lines.
The data ends an hour before the wall clock (the served app runs on the real clock), is
bulk-loaded (``executemany`` on SQLite, ``COPY`` on PostgreSQL), timed apart, and checked with
the plugin's own ``ledger.verify`` (every balance rebuilt from the ledger and the lots).

Two apps, served the same way, one at a time, each in its own processes: gunicorn with the same
worker count and class (``--workers``, ``--worker-class``), bound to 127.0.0.1. (a) a small host
shop: Flask-Login whose user loader accepts any id, ``Loyalty(app)`` on the bench database
(``LOYALTY_DATABASE_URI``) and a bench-only login route guarded by a random token; (b) a bare
Flask app whose ``/`` returns "hello". The load generator is ``wrk`` (Debian package ``wrk``)
in a process of its own, closed loop, the same connections, threads and duration for both, and
the same Lua script: it rotates through the session cookies of ``--members-logged-in`` random
live members (logged in through the host's login route beforehand, so Flask-Login's session
protection sees the same address and User-Agent), and counts every response that is not a 200
or lacks the page's marker (``data-testid="points-available"`` for the dashboard, ``hello``
for the bare app). Without wrk a small asyncio client in a separate process takes its place
(it takes a core of its own: its figures are lower and say so). The bare app is measured
before and after the dashboard, and the ratio uses their mean, so that drift on a shared
machine falls on both. The dashboard is measured without the page cache (a member's first
visit), with it warmed up, and on PostgreSQL warm once more with ``LOYALTY_PAGE_CACHE_NOTIFY``.

A closed loop's latency is the queue it builds (Little's law: mean latency = connections /
throughput), so the p99 is quoted at ``--connections`` (default twice the workers: every worker
busy, one request waiting behind each).

The CPU time the servers spent per request (user + system of the gunicorn master and workers,
and on PostgreSQL of the backends serving the bench database, read from ``/proc``) is shown
beside: other load on a shared machine slows the wall clock, not that, so the ratio of CPU per
request says what the throughput ratio would be with the CPU to themselves.

Correctness: before and after the load, a sample of the logged-in members' pages is fetched
and the available points shown must be the member's balance as simulated. Afterwards the
request is taken apart in this process (Flask's test client on the same database): its SQL
statements, how often and how long each runs, and the time outside them; ``--profile`` adds a
cProfile of those requests. ``--reuse-data`` measures the databases as the last run left them
(the pages must then show the stored balances). The plugin's commit and a digest of its code
are in the facts, taken at the start and the end: the run warns when the code changed under it.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import calendar
import cProfile
import hmac
import http.client
import io
import json
import multiprocessing
import os
import pstats
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from array import array
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from heapq import heappop, heappush
from pathlib import Path
from typing import Any

import numpy as np
from flask import Flask, abort, request
from sqlalchemy.engine import make_url

from bench.common import (
    BENCH_DIR,
    BenchUser,
    Figure,
    add_common_arguments,
    machine_facts,
    percentiles,
    print_facts,
    print_figures,
    write_json,
)
from bench.generate import ShopChunk, ShopShape, generate_shop, load_shop, make_catalog, prepare_database

#: SPEC targets: dashboard throughput >= 40 % of hello's (as hello / dashboard <= 2.5), p99 < 50 ms.
RATIO_TARGET = 0.40
P99_TARGET_MS = 50.0
USER_AGENT = "loyalty-bench/1.0"
MARKER = 'data-testid="points-available"'
HELLO = "hello"
ENV_URL = "LOYALTY_BENCH_DASHBOARD_URL"
ENV_SECRET = "LOYALTY_BENCH_DASHBOARD_SECRET"
ENV_TOKEN = "LOYALTY_BENCH_DASHBOARD_TOKEN"
ENV_CACHE = "LOYALTY_BENCH_PAGE_CACHE_SIZE"
ENV_NOTIFY = "LOYALTY_BENCH_PAGE_CACHE_NOTIFY"
ENV_INSTANCE = "LOYALTY_BENCH_DASHBOARD_INSTANCE"
#: ~7.8 orders a year per active member: ~20 ledger entries per member with the rules below.
SHOP_SHAPE = ShopShape(orders_per_year=7.8)


# The apps under load ------------------------------------------------------------------------


def hello_app() -> Flask:
    """The bare Flask app: ``gunicorn 'bench.bench_dashboard:hello_app()'``."""
    app = Flask("hello_bench")

    @app.get("/")
    def hello() -> str:
        return HELLO

    return app


def dashboard_app() -> Flask:
    """The host shop: ``gunicorn 'bench.bench_dashboard:dashboard_app()'``, configured from the
    environment (database URL, secret key, login token, instance folder)."""
    from flask_login import LoginManager, login_user

    from loyalty_plugin import Loyalty

    app = Flask("loyalty_dashboard_bench", instance_path=os.environ.get(ENV_INSTANCE) or tempfile.gettempdir())
    app.config.update(
        SECRET_KEY=os.environ[ENV_SECRET],
        LOYALTY_DATABASE_URI=os.environ[ENV_URL],
        LOYALTY_PAGE_CACHE_SIZE=int(os.environ.get(ENV_CACHE, "5000")),
        LOYALTY_PAGE_CACHE_NOTIFY=os.environ.get(ENV_NOTIFY) == "1",
    )
    login_manager = LoginManager(app)
    login_manager.login_view = "bench_login_page"
    login_manager.user_loader(BenchUser)
    token = os.environ[ENV_TOKEN]

    @app.get("/_bench/login/<user_id>")
    def bench_login(user_id: str) -> Any:
        if not hmac.compare_digest(request.args.get("token", ""), token):
            abort(403)
        login_user(BenchUser(user_id))
        return "", 204

    @app.get("/login")
    def bench_login_page() -> Any:
        return "log in first", 401

    Loyalty(app)
    return app


def dashboard_path(app: Flask) -> str:
    with app.test_request_context():
        from flask import url_for

        return url_for("loyalty.dashboard")


# The points the plugin would have written ---------------------------------------------------

DAY = 86_400
EXPIRE_JOB = 2 * 3600 + 30 * 60  # the expire job's default time of day, 02:30 UTC
BIRTHDAY_JOB = 8 * 3600  # the birthdays job's, 08:00 UTC
PENDING = 14 * DAY  # LOYALTY_PENDING_DAYS
EXPIRES = 365 * DAY  # LOYALTY_POINTS_EXPIRE_DAYS
WARNING = 30 * DAY  # LOYALTY_EXPIRY_WARNING_DAYS
COUPON_VALID = 90 * DAY  # LOYALTY_COUPON_VALID_DAYS
SIGNUP_POINTS = 100
BIRTHDAY_POINTS = 200
#: The reward catalog: id, name, kind, cost in points, amount (cents), percent (hundredths),
#: max_discount (cents), min_order_total (cents).
REWARDS = (
    (1, "5.00 off", "fixed_amount", 500, 500, None, None, None),
    (2, "Free shipping", "free_shipping", 300, None, None, None, None),
    (3, "15.00 off orders over 50.00", "fixed_amount", 1200, 1500, None, None, 5000),
    (4, "10 % off (up to 50.00)", "percent", 1500, None, 1000, 5000, None),
)
KINDS = ("signup", "birthday", "earn", "release", "clawback", "redeem", "expire")
SIGNUP, BIRTHDAY, EARN, RELEASE, CLAWBACK, REDEEM, EXPIRE = range(len(KINDS))
LOT_STATUS = ("pending", "available", "spent", "expired", "cancelled")
L_PENDING, L_AVAILABLE, L_SPENT, L_EXPIRED, L_CANCELLED = range(len(LOT_STATUS))
COUPON_STATUS = ("active", "used", "void")
C_ACTIVE, C_USED, C_VOID = range(len(COUPON_STATUS))


@dataclass(frozen=True)
class PointsShape:
    """How members use their points."""

    redeem_at_checkout: float = 0.12  # at an order: redeem a coupon first and use it on that order
    redeem_to_keep: float = 0.15  # when points are released: redeem a coupon to keep for later
    use_kept_coupon: float = 0.6  # at an order: use a kept coupon that is still valid
    refund_within_days: float = 13.0  # refunds come within the return window


def _ceil_to(moment: int, every: int, offset: int = 0) -> int:
    """The first run of a job that runs every ``every`` seconds at ``offset``, at or after ``moment``."""
    return -((offset - moment) // every) * every + offset


def _last_run(moment: int, every: int = DAY, offset: int = EXPIRE_JOB) -> int:
    return ((moment - offset) // every) * every + offset


@dataclass
class Shop:
    """Everything to load, and what the pages must show."""

    chunks: list[ShopChunk]
    tables: list[tuple[str, dict[str, np.ndarray]]]
    items: list[dict[str, Any]]
    available: dict[str, int]  # user id -> available points, live members only
    now: datetime
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def _epoch(values: np.ndarray) -> np.ndarray:
    return values.astype("datetime64[s]").astype(np.int64)


def _moments(seconds: np.ndarray) -> np.ndarray:
    """Epoch seconds (``-1``: none) as datetime64, NaT where none."""
    out = seconds.astype("datetime64[s]")
    out[seconds < 0] = np.datetime64("NaT")
    return out


def _birthday_moments(text: str | None, enrolled: int, now: int) -> list[tuple[int, int]]:
    """(moment, year) of each birthday award between enrolment and now (29 February on the 28th)."""
    if not text:
        return []
    _, month, day = (int(x) for x in text.split("-"))
    out = []
    for year in range(time.gmtime(enrolled).tm_year, time.gmtime(now).tm_year + 1):
        d = 28 if (month, day) == (2, 29) and not calendar.isleap(year) else day
        moment = calendar.timegm((year, month, d, 0, 0, 0)) + BIRTHDAY_JOB
        if enrolled < moment <= now:
            out.append((moment, year))
    return out


class _Columns:
    """Append-only int64 (or int8) columns, turned into numpy arrays at the end."""

    def __init__(self, *names: str, small: tuple[str, ...] = ()) -> None:
        self.cols = {name: array("b" if name in small else "q") for name in names}

    def add(self, *values: int) -> int:
        for col, value in zip(self.cols.values(), values, strict=True):
            col.append(value)
        return len(next(iter(self.cols.values()))) - 1

    def numpy(self) -> dict[str, np.ndarray]:
        return {
            name: np.frombuffer(col, dtype=np.int8 if col.typecode == "b" else np.int64).copy()
            if len(col)
            else np.zeros(0, dtype=np.int64)
            for name, col in self.cols.items()
        }


class PointsBook:
    """The plugin's rules replayed for one member at a time, events in time order."""

    def __init__(self, shape: PointsShape, orders: dict[str, np.ndarray], rng: np.random.Generator) -> None:
        n = len(orders["id"])
        self.shape = shape
        self.placed = _epoch(orders["placed_at"]).tolist()
        self.points = orders["points_earned"].astype(np.int64).tolist()
        self.total = orders["total"].astype(np.int64).tolist()
        self.refunded = orders["refunded_total"].astype(np.int64).tolist()
        self.u_checkout = rng.random(n).tolist()
        self.u_keep = rng.random(n).tolist()
        self.u_use = rng.random(n).tolist()
        self.u_reward = rng.random(n).tolist()
        self.refund_delay = (3600 + rng.random(n) * (shape.refund_within_days * DAY - 3600)).astype(np.int64).tolist()
        self.clawed_back = np.zeros(n, dtype=np.int64)
        self.costs = [(r[0], r[3]) for r in REWARDS]
        self.cheapest = min(c for _, c in self.costs)
        self.entries = _Columns(
            "member", "kind", "points", "pending", "balance", "order", "coupon", "lot", "time", small=("kind",)
        )
        self.lots = _Columns(
            "member", "order", "points", "remaining", "status", "available", "expires", "created", small=("status",)
        )
        self.coupons = _Columns(
            "member", "reward", "points", "status", "issued", "valid", "used", "order", small=("status",)
        )

    # One member --------------------------------------------------------------------------

    def replay(
        self, member_id: int, enrolled: int, birthday: str | None, orders: list[int], now: int
    ) -> tuple[int, int]:
        """Every event of one member up to ``now``; returns (balance, pending)."""
        self.mid, self.balance, self.pending, self.last = member_id, 0, 0, 0
        self.heap: list[tuple[int, int]] = []  # (expires_at, lot) of available lots with points left
        self.lot_of: dict[int, int] = {}
        self.coupon_of: dict[int, int] = {}
        self.kept: list[int] = []  # coupons redeemed to keep, still active
        events: list[tuple[int, int, int, int]] = [(enrolled, 0, SIGNUP, 0)]
        events += [(t, 1, BIRTHDAY, year) for t, year in _birthday_moments(birthday, enrolled, now)]
        for j in orders:
            t = self.placed[j]
            events.append((t, 3, EARN, j))
            if self.points[j] > 0 and (released := _ceil_to(t + PENDING, 3600)) <= now:
                events.append((released, 2, RELEASE, j))
            if self.refunded[j] > 0:
                events.append((max(t, min(t + self.refund_delay[j], now - 60)), 4, CLAWBACK, j))
        events.sort()
        for t, _, kind, j in events:
            self.expire_until(t)
            if kind in (SIGNUP, BIRTHDAY):
                self.bonus(kind, t)
            elif kind == EARN:
                self.order(j, t)
            elif kind == RELEASE:
                self.release(j, t)
            else:
                self.refund(j, t)
        self.expire_until(now)
        return self.balance, self.pending

    def entry(self, kind: int, t: int, pts: int = 0, held: int = 0, order: int = -1, coupon: int = -1, lot: int = -1):
        self.last = max(self.last, t)
        self.balance += pts
        self.pending += held
        self.entries.add(self.mid, kind, pts, held, self.balance, order, coupon, lot, self.last)

    def new_lot(self, t: int, pts: int, order: int, status: int, available_at: int) -> int:
        return self.lots.add(self.mid, order, pts, pts, status, available_at, available_at + EXPIRES, t)

    def bonus(self, kind: int, t: int) -> None:
        """Sign-up or birthday points: available at once (the year of a birthday is the entry's)."""
        pts = SIGNUP_POINTS if kind == SIGNUP else BIRTHDAY_POINTS
        lot = self.new_lot(t, pts, -1, L_AVAILABLE, t)
        self.entry(kind, t, pts, lot=lot)
        heappush(self.heap, (t + EXPIRES, lot))

    def expire_until(self, t: int) -> None:
        """What the nightly expire job has done by ``t``: due lots expire, oldest first."""
        due = _last_run(t)
        remaining, status = self.lots.cols["remaining"], self.lots.cols["status"]
        while self.heap and self.heap[0][0] <= due:
            expires_at, lot = heappop(self.heap)
            left = remaining[lot]
            remaining[lot] = 0
            status[lot] = L_EXPIRED
            self.entry(EXPIRE, max(_ceil_to(expires_at, DAY, EXPIRE_JOB), self.last), -left, lot=lot)

    def redeem(self, t: int, u: float) -> int:
        """A coupon for an affordable reward, paid with the oldest lots first."""
        affordable = [(rid, cost) for rid, cost in self.costs if cost <= self.balance]
        rid, cost = affordable[min(int(u * len(affordable)), len(affordable) - 1)]
        remaining, status = self.lots.cols["remaining"], self.lots.cols["status"]
        need = cost
        while need:
            lot = self.heap[0][1]
            take = min(remaining[lot], need)
            remaining[lot] -= take
            need -= take
            if remaining[lot] == 0:
                status[lot] = L_SPENT
                heappop(self.heap)
        issued = max(t, self.last)
        coupon = self.coupons.add(self.mid, rid, cost, C_ACTIVE, issued, issued + COUPON_VALID, -1, -1)
        self.entry(REDEEM, t, -cost, coupon=coupon)
        return coupon

    def use(self, coupon: int, t: int, order: int) -> None:
        cols = self.coupons.cols
        cols["status"][coupon], cols["used"][coupon], cols["order"][coupon] = C_USED, t, order
        self.coupon_of[order] = coupon

    def order(self, j: int, t: int) -> None:
        """An order: a kept coupon used, or one redeemed for it; its points pending."""
        valid = [c for c in self.kept if self.coupons.cols["valid"][c] > t]
        if valid and self.u_use[j] < self.shape.use_kept_coupon:
            self.kept.remove(valid[0])
            self.use(valid[0], t, j)
        elif self.u_checkout[j] < self.shape.redeem_at_checkout and self.balance >= self.cheapest:
            self.use(self.redeem(t - 60, self.u_reward[j]), t, j)
        if self.points[j] > 0:
            lot = self.new_lot(t, self.points[j], j, L_PENDING, t + PENDING)
            self.lot_of[j] = lot
            self.entry(EARN, t, 0, self.points[j], order=j, lot=lot)

    def release(self, j: int, t: int) -> None:
        """The return window is over (the hourly job); sometimes the member redeems right away."""
        lot = self.lot_of[j]
        remaining, status = self.lots.cols["remaining"], self.lots.cols["status"]
        if status[lot] != L_PENDING or remaining[lot] == 0:
            return
        left = remaining[lot]
        status[lot] = L_AVAILABLE
        self.entry(RELEASE, t, left, -left, order=j, lot=lot)
        heappush(self.heap, (self.lots.cols["expires"][lot], lot))
        if self.u_keep[j] < self.shape.redeem_to_keep and self.balance >= self.cheapest:
            self.kept.append(self.redeem(t, self.u_reward[j]))

    def refund(self, j: int, t: int) -> None:
        """Claw back the refunded share of the pending points; a full refund gives the coupon back."""
        lot = self.lot_of.get(j)
        remaining, status = self.lots.cols["remaining"], self.lots.cols["status"]
        target = self.points[j] * self.refunded[j] // self.total[j] if self.total[j] else 0
        if lot is not None and target > 0 and status[lot] == L_PENDING:
            take = min(remaining[lot], target)
            remaining[lot] -= take
            if remaining[lot] == 0:
                status[lot] = L_CANCELLED
            self.entry(CLAWBACK, t, 0, -take, order=j)
            self.clawed_back[j] = take
        if self.refunded[j] == self.total[j] and j in self.coupon_of:
            coupon = self.coupon_of.pop(j)
            cols = self.coupons.cols
            cols["status"][coupon], cols["used"][coupon], cols["order"][coupon] = C_ACTIVE, -1, -1
            cols["valid"][coupon] = max(cols["valid"][coupon], t + COUPON_VALID)
            self.kept.append(coupon)


def simulate_points(
    members: dict[str, np.ndarray], orders: dict[str, np.ndarray], *, now: datetime, seed: int, shape: PointsShape
) -> dict[str, Any]:
    """The ledger, lots and coupons the plugin would have written for these members and orders.

    One pass per member over their events in time order (FIFO lots need it). Entries, lots and
    coupons are numbered afterwards in time order across members. Returns numpy columns and the
    members' balances; the orders' ``points_clawed_back`` is filled in place.
    """
    book = PointsBook(shape, orders, np.random.default_rng([seed, 21]))
    now_s = int(np.datetime64(now, "s").astype(np.int64))
    member_ids = members["id"].astype(np.int64)
    enrolled = _epoch(members["enrolled_at"]).tolist()
    birthdays = members["birthday"].tolist()
    owner = np.array([0 if m is None else int(m) for m in orders["member_id"]], dtype=np.int64)
    mine = np.flatnonzero(owner > 0)
    mine = mine[np.lexsort((_epoch(orders["placed_at"])[mine], owner[mine]))]
    lo = np.searchsorted(owner[mine], member_ids, side="left")
    hi = np.searchsorted(owner[mine], member_ids, side="right")
    balances = np.zeros(len(member_ids), dtype=np.int64)
    pendings = np.zeros(len(member_ids), dtype=np.int64)
    for m, mid in enumerate(member_ids.tolist()):
        balances[m], pendings[m] = book.replay(mid, enrolled[m], birthdays[m], mine[lo[m] : hi[m]].tolist(), now_s)
    orders["points_clawed_back"] = book.clawed_back
    return {
        "entries": book.entries.numpy(),
        "lots": book.lots.numpy(),
        "coupons": book.coupons.numpy(),
        "balance": balances,
        "pending": pendings,
        "now": now_s,
    }


def _ranks(moments: np.ndarray) -> np.ndarray:
    """1-based ids in time order (ties in the order written)."""
    order = np.lexsort((np.arange(len(moments)), moments))
    ids = np.empty(len(moments), dtype=np.int64)
    ids[order] = np.arange(1, len(moments) + 1)
    return ids


def _by_id(table: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    order = np.argsort(table["id"], kind="stable")
    return {name: np.asarray(values)[order] for name, values in table.items()}


def points_tables(
    sim: dict[str, Any], orders: dict[str, np.ndarray], members: dict[str, np.ndarray], seed: int
) -> list[tuple[str, dict[str, np.ndarray]]]:
    """The simulation as the plugin's rows: rewards, coupons, lots and ledger entries."""
    e, lots, coupons = sim["entries"], sim["lots"], sim["coupons"]
    now_s = sim["now"]
    order_text = np.asarray(orders["order_id"], dtype=object)
    erased = ~np.isnat(members["erased_at"].astype("datetime64[s]"))
    erased_ids = set(members["id"][erased].tolist())

    lot_id = _ranks(lots["created"])
    coupon_id = _ranks(coupons["issued"])
    entry_id = _ranks(e["time"])

    # Coupons: erased members' active coupons are void, as ``erase`` leaves them.
    status = coupons["status"].copy()
    gone = np.isin(coupons["member"], list(erased_ids)) & (status == C_ACTIVE)
    status[gone] = C_VOID
    rng = np.random.default_rng([seed, 22])
    raw = rng.bytes(16 * len(coupon_id))
    codes = np.array(
        [base64.b32encode(raw[i : i + 16]).decode().rstrip("=") for i in range(0, len(raw), 16)], dtype=object
    )
    reward = {r[0]: r for r in REWARDS}
    rid = coupons["reward"]

    def reward_column(k: int) -> np.ndarray:
        return np.array([reward[int(x)][k] for x in rid], dtype=object)

    coupon_order = np.full(len(coupon_id), None, dtype=object)
    used = coupons["order"] >= 0
    coupon_order[used] = order_text[coupons["order"][used]]
    coupon_table = {
        "id": coupon_id,
        "code": codes,
        "member_id": coupons["member"],
        "reward_id": rid,
        "kind": reward_column(2),
        "amount": reward_column(4),
        "percent": reward_column(5),
        "max_discount": reward_column(6),
        "sku": np.full(len(coupon_id), None, dtype=object),
        "min_order_total": reward_column(7),
        "points_spent": coupons["points"],
        "status": np.array(COUPON_STATUS, dtype=object)[status],
        "issued_at": _moments(coupons["issued"]),
        "valid_until": _moments(coupons["valid"]),
        "used_at": _moments(coupons["used"]),
        "order_id": coupon_order,
    }

    # Lots, with the expiry warning the nightly job gave each one that reached its window.
    last_run = _last_run(now_s)
    warn_at = np.array([_ceil_to(int(x) - WARNING, DAY, EXPIRE_JOB) for x in lots["expires"]], dtype=np.int64)
    warned = ((lots["status"] == L_AVAILABLE) | (lots["status"] == L_EXPIRED)) & (warn_at <= last_run)
    lot_order = np.full(len(lot_id), None, dtype=object)
    has = lots["order"] >= 0
    lot_order[has] = order_text[lots["order"][has]]
    lot_table = {
        "id": lot_id,
        "member_id": lots["member"],
        "order_id": lot_order,
        "points": lots["points"],
        "remaining": lots["remaining"],
        "status": np.array(LOT_STATUS, dtype=object)[lots["status"]],
        "available_at": _moments(lots["available"]),
        "expires_at": _moments(lots["expires"]),
        "created_at": _moments(lots["created"]),
        "warned_at": _moments(np.where(warned, warn_at, -1)),
    }

    # Ledger entries, with the causes the plugin gives them (unique, as its index demands).
    kinds = e["kind"]
    ids_lot = np.where(e["lot"] >= 0, lot_id[np.maximum(e["lot"], 0)], -1)
    ids_coupon = np.where(e["coupon"] >= 0, coupon_id[np.maximum(e["coupon"], 0)], -1)
    entry_order = np.full(len(entry_id), None, dtype=object)
    has = e["order"] >= 0
    entry_order[has] = order_text[e["order"][has]]
    order_pk = np.asarray(orders["id"])
    years = e["time"].astype("datetime64[s]").astype("datetime64[Y]").astype(np.int64) + 1970
    cause = np.empty(len(entry_id), dtype=object)
    reason = np.full(len(entry_id), None, dtype=object)
    names = {r[0]: r[1] for r in REWARDS}
    coupon_reward = dict(zip(coupon_id.tolist(), rid.tolist(), strict=True))
    for i, (kind, member, lot, coupon, order) in enumerate(
        zip(
            kinds.tolist(),
            e["member"].tolist(),
            ids_lot.tolist(),
            ids_coupon.tolist(),
            e["order"].tolist(),
            strict=True,
        )
    ):
        if kind == SIGNUP:
            cause[i], reason[i] = f"signup:{member}", "Welcome bonus"
        elif kind == BIRTHDAY:
            cause[i], reason[i] = f"birthday:{member}:{years[i]}", "Happy birthday"
        elif kind == EARN:
            cause[i], reason[i] = f"order:{order_text[order]}", "Order"
        elif kind in (RELEASE, EXPIRE):
            cause[i] = f"{KINDS[kind]}:{lot}"
        elif kind == CLAWBACK:
            cause[i] = f"refund:R{order_pk[order]}"
        else:
            cause[i], reason[i] = f"redeem:{coupon}", names[coupon_reward[coupon]]
    ledger_table = {
        "id": entry_id,
        "member_id": e["member"],
        "kind": np.array(KINDS, dtype=object)[kinds],
        "points": e["points"],
        "pending": e["pending"],
        "balance_after": e["balance"],
        "cause": cause,
        "order_id": entry_order,
        "coupon_id": np.where(ids_coupon >= 0, ids_coupon, None).astype(object),
        "lot_id": np.where(ids_lot >= 0, ids_lot, None).astype(object),
        "reason": reason,
        "created_at": _moments(e["time"]),
    }
    created = np.full(len(REWARDS), np.datetime64(now_s - 4 * 365 * DAY, "s"))
    rewards = {
        "id": np.array([r[0] for r in REWARDS]),
        "name": np.array([r[1] for r in REWARDS], dtype=object),
        "kind": np.array([r[2] for r in REWARDS], dtype=object),
        "cost_points": np.array([r[3] for r in REWARDS]),
        "amount": np.array([r[4] for r in REWARDS], dtype=object),
        "percent": np.array([r[5] for r in REWARDS], dtype=object),
        "max_discount": np.array([r[6] for r in REWARDS], dtype=object),
        "min_order_total": np.array([r[7] for r in REWARDS], dtype=object),
        "active": np.ones(len(REWARDS), dtype=bool),
        "created_at": created,
    }
    return [
        ("loyalty_rewards", rewards),
        ("loyalty_coupons", _by_id(coupon_table)),
        ("loyalty_point_lots", _by_id(lot_table)),
        ("loyalty_ledger_entries", _by_id(ledger_table)),
    ]


def catalog_items(seed: int, now: datetime) -> list[dict[str, Any]]:
    """``loyalty_items``: the generator's catalog (the same skus as the order lines)."""
    catalog = make_catalog(seed)
    in_stock = np.random.default_rng([seed, 23]).random(len(catalog)) < 0.93
    return [
        {
            "sku": str(sku),
            "name": f"{str(category).title()} item {i}",
            "category": str(category),
            "price": Decimal(int(price)).scaleb(-2),
            "url": f"/shop/items/{sku}",
            "image_url": None,
            "in_stock": bool(stock),
            "consumable": category in ("grocery", "beauty", "pets", "office"),
            "updated_at": now - timedelta(days=1),
        }
        for i, (sku, category, price, stock) in enumerate(
            zip(catalog.sku, catalog.category, catalog.price, in_stock, strict=True)
        )
    ]


def simulate_shop(members: int, *, seed: int, now: datetime, shape: PointsShape | None = None) -> Shop:
    """Members, orders and lines from ``generate_shop``, the plugin's points rows for them."""
    started = time.perf_counter()
    chunks = list(generate_shop(members, seed=seed, now=now, shape=SHOP_SHAPE, with_lines=True))
    joined_members = {k: np.concatenate([c.members[k] for c in chunks]) for k in chunks[0].members}
    joined_orders = {k: np.concatenate([c.orders[k] for c in chunks]) for k in chunks[0].orders}
    sim = simulate_points(joined_members, joined_orders, now=now, seed=seed, shape=shape or PointsShape())
    tables = points_tables(sim, joined_orders, joined_members, seed)
    # Back into the chunks: balances, claw-backs, and erased members as ``erase`` leaves them.
    erased = ~np.isnat(joined_members["erased_at"].astype("datetime64[s]"))
    m_lo = o_lo = 0
    for chunk in chunks:
        m_hi, o_hi = m_lo + len(chunk.members["id"]), o_lo + len(chunk.orders["id"])
        ms, os_ = chunk.members, chunk.orders
        ms["points_balance"] = sim["balance"][m_lo:m_hi]
        ms["points_pending"] = sim["pending"][m_lo:m_hi]
        gone = erased[m_lo:m_hi]
        gone_users = set(np.asarray(ms["user_id"])[gone].tolist())
        ids = np.asarray(ms["id"])
        ms["user_id"] = np.where(gone, np.char.add("erased:", ids.astype(str)).astype(object), ms["user_id"])
        ms["referral_code"] = np.where(gone, np.char.add("ERASED", ids.astype(str)).astype(object), ms["referral_code"])
        for name in ("email", "birthday", "name"):
            ms[name] = np.where(gone, None, ms[name])
        ms["marketing_opt_in"] = np.where(gone, False, ms["marketing_opt_in"])
        os_["points_clawed_back"] = joined_orders["points_clawed_back"][o_lo:o_hi]
        os_["user_id"] = np.array([None if u in gone_users else u for u in os_["user_id"]], dtype=object)
        m_lo, o_lo = m_hi, o_hi
    live = ~erased
    available = dict(
        zip(
            np.asarray(joined_members["user_id"])[live].tolist(),
            np.maximum(sim["balance"][live], 0).tolist(),
            strict=True,
        )
    )
    rows = {
        "loyalty_members": len(joined_members["id"]),
        "loyalty_orders": len(joined_orders["id"]),
        "loyalty_order_lines": sum(len(c.lines["id"]) for c in chunks if c.lines is not None),
        **{name: len(table["id"]) for name, table in tables},
    }
    return Shop(chunks, tables, catalog_items(seed, now), available, now, rows, time.perf_counter() - started)


@dataclass
class Loaded:
    seconds: float
    verify_seconds: float
    discrepancies: int


def load(url: str, shop: Shop) -> Loaded:
    """Empty the database, migrate it, bulk-load the shop; then ``ledger.verify`` it (timed apart)."""
    from sqlalchemy import insert
    from sqlalchemy.orm import Session

    from bench.bench_churn_scan import load_tables
    from loyalty_plugin import ledger
    from loyalty_plugin.database import make_engine
    from loyalty_plugin.models import Item

    started = time.perf_counter()
    prepare_database(url)
    load_shop(url, shop.chunks, progress=False)
    load_tables(url, shop.tables)
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(insert(Item), shop.items)
    seconds = time.perf_counter() - started
    tick = time.perf_counter()
    with Session(engine) as session:
        found = ledger.verify(session)
    engine.dispose()
    for d in found[:5]:
        print(f"  verify: {d}")
    return Loaded(seconds, time.perf_counter() - tick, len(found))


# Serving ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class ServerConfig:
    workers: int
    worker_class: str
    threads: int

    def describe(self) -> str:
        threads = f" x {self.threads} threads" if self.worker_class == "gthread" else ""
        return f"gunicorn {self.workers} {self.worker_class} workers{threads}"


def _cpu_ticks(proc: Path) -> tuple[int, int]:
    """(parent pid, user + system clock ticks) of a process, from ``/proc/<pid>/stat``."""
    fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[1]), int(fields[11]) + int(fields[12])


@dataclass(frozen=True)
class Server:
    port: int
    pid: int
    database: str | None = None  # a PostgreSQL database whose backends' CPU time counts too

    def cpu_seconds(self) -> tuple[float, float]:
        """User + system CPU time so far of (the gunicorn master and its workers, the PostgreSQL
        backends serving ``database``), from Linux's ``/proc``."""
        app = db = 0
        title = f" {self.database} ".encode() if self.database else None
        for proc in Path("/proc").glob("[0-9]*"):
            try:
                parent, ticks = _cpu_ticks(proc)
                if int(proc.name) == self.pid or parent == self.pid:
                    app += ticks
                elif title and (cmd := (proc / "cmdline").read_bytes()).startswith(b"postgres: ") and title in cmd:
                    db += ticks
            except (OSError, IndexError, ValueError):
                continue
        tick = os.sysconf("SC_CLK_TCK")
        return app / tick, db / tick


@contextmanager
def serve(
    spec: str, config: ServerConfig, env: dict[str, str], log: Path, database: str | None = None
) -> Iterator[Server]:
    """``gunicorn spec`` on a free loopback port until the block ends; its output goes to ``log``."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(config.workers),
        "--worker-class",
        config.worker_class,
        "--log-level",
        "warning",
        "--error-logfile",
        str(log),
        spec,
    ]
    if config.worker_class == "gthread":
        command[-1:-1] = ["--threads", str(config.threads)]
    if Path("/dev/shm").is_dir():
        command[-1:-1] = ["--worker-tmp-dir", "/dev/shm"]
    sink = log.open("a")
    proc = subprocess.Popen(
        command,
        cwd=BENCH_DIR.parent,
        env={**os.environ, **env},
        stdout=sink,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"gunicorn exited ({proc.returncode}) serving {spec}; see {log}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit(f"gunicorn did not listen within 60 s for {spec}; see {log}") from None
                time.sleep(0.1)
        yield Server(port, proc.pid, database)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        sink.close()


def http_get(port: int, path: str, cookie: str | None = None) -> tuple[int, dict[str, str], str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        headers = {"User-Agent": USER_AGENT}
        if cookie:
            headers["Cookie"] = cookie
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        body = response.read().decode("utf-8", "replace")
        cookies = [v for k, v in response.getheaders() if k.lower() == "set-cookie"]
        return response.status, {"set-cookie": "\n".join(cookies)}, body
    finally:
        conn.close()


def log_in(port: int, users: list[str], token: str) -> list[str]:
    """One session cookie per user, from the host's login route (as a browser would get it)."""

    def one(user: str) -> str:
        status, headers, _ = http_get(port, f"/_bench/login/{user}?token={token}")
        found = re.search(r"(?:^|\n)(session=[^;]+)", headers["set-cookie"])
        if status != 204 or not found:
            raise SystemExit(f"logging {user} in failed: HTTP {status}")
        return found.group(1)

    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(one, users))


def shown_points(page: str) -> int | None:
    """The number in the element marked ``data-testid="points-available"`` (digits only, so any
    grouping or locale formats the same)."""
    at = page.find(MARKER)
    if at < 0:
        return None
    start = page.find(">", at) + 1
    end = page.find("</", start)
    digits = re.sub(r"\D", "", re.sub(r"<[^>]*>", "", page[start:end]))
    return int(digits) if digits else None


def check_pages(
    port: int, path: str, users: list[str], cookies: list[str], available: dict[str, int], parallel: int
) -> list[str]:
    """Fetch each user's dashboard; the problems found (empty: every page showed its member's points)."""

    def one(pair: tuple[str, str]) -> str | None:
        user, cookie = pair
        status, _, body = http_get(port, path, cookie)
        shown = shown_points(body) if status == 200 else None
        if status != 200 or shown != available[user]:
            return f"{user}: HTTP {status}, points shown {shown}, expected {available[user]}"
        return None

    with ThreadPoolExecutor(parallel) as pool:
        return [p for p in pool.map(one, zip(users, cookies, strict=True)) if p]


# Load ---------------------------------------------------------------------------------------

WRK_SCRIPT = r"""
-- Rotate session cookies; count responses that are not 200 or lack the marker.
local cookies = {}
local at = 0
non200 = 0
unrendered = 0
first_bad = ""
local threads = {}
local marker = ""
local path = "/"

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  path, marker = args[1], args[2]
  if args[3] and args[3] ~= "" then
    for line in io.lines(args[3]) do cookies[#cookies + 1] = line end
  end
  if #cookies == 0 then cookies[1] = "none=1" end
  at = math.random(#cookies)
end

function request()
  at = at % #cookies + 1
  return wrk.format("GET", path, {["Cookie"] = cookies[at], ["User-Agent"] = "%UA%"})
end

function response(status, headers, body)
  if status ~= 200 then
    non200 = non200 + 1
    if first_bad == "" then first_bad = "HTTP " .. status end
  elseif not string.find(body, marker, 1, true) then
    unrendered = unrendered + 1
  end
end

function done(summary, latency, requests)
  local bad, blank, first = 0, 0, ""
  for _, t in ipairs(threads) do
    bad = bad + t:get("non200")
    blank = blank + t:get("unrendered")
    if first == "" then first = t:get("first_bad") end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"requests": %d, "duration_us": %d, "connect": %d, "read": %d, "write": %d, "timeout": %d, ' ..
    '"non200": %d, "unrendered": %d, "first_bad": "%s", "p50": %d, "p95": %d, "p99": %d, "max": %d, "mean": %.1f}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.timeout, bad, blank, first,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max, latency.mean))
end
"""


@dataclass
class LoadResult:
    tool: str
    requests: int
    seconds: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    non200: int
    unrendered: int
    socket_errors: int
    first_bad: str = ""
    server_cpu_ms: float = float("nan")  # per request: the app server's user + system CPU time
    db_cpu_ms: float = 0.0  # per request: the PostgreSQL backends' (SQLite's is in the server's)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def bad(self) -> int:
        return self.non200 + self.unrendered + self.socket_errors

    def line(self) -> str:
        return (
            f"{self.rps:8.1f} req/s ({self.requests:,} in {self.seconds:.1f} s), latency p50 {self.p50_ms:.1f} / "
            f"p95 {self.p95_ms:.1f} / p99 {self.p99_ms:.1f} / max {self.max_ms:.1f} ms; not 200: {self.non200}, "
            f"without the marker: {self.unrendered}, socket errors: {self.socket_errors}"
            + (f" (first: {self.first_bad})" if self.first_bad else "")
            + f"; CPU per request: app {self.server_cpu_ms:.2f} ms"
            + (f" + PostgreSQL {self.db_cpu_ms:.2f} ms" if self.db_cpu_ms else "")
        )


def run_wrk(
    port: int, path: str, marker: str, cookies: Path | None, seconds: float, connections: int, threads: int
) -> LoadResult:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT.replace("%UA%", USER_AGENT))
    try:
        command = [
            "wrk",
            f"--threads={threads}",
            f"--connections={connections}",
            f"--duration={max(1, round(seconds))}s",
            "--timeout=10s",
            f"--script={script.name}",
            f"http://127.0.0.1:{port}{path}",
            "--",
            path,
            marker,
            str(cookies or ""),
        ]
        out = subprocess.run(command, capture_output=True, text=True, check=False, timeout=seconds + 120)
    finally:
        os.unlink(script.name)
    found = re.search(r"^BENCHJSON (.*)$", out.stdout, re.M)
    if out.returncode or not found:
        raise SystemExit(f"wrk failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    r = json.loads(found.group(1))
    return LoadResult(
        tool="wrk",
        requests=r["requests"],
        seconds=r["duration_us"] / 1e6,
        p50_ms=r["p50"] / 1000,
        p95_ms=r["p95"] / 1000,
        p99_ms=r["p99"] / 1000,
        max_ms=r["max"] / 1000,
        non200=r["non200"],
        unrendered=r["unrendered"],
        socket_errors=r["connect"] + r["read"] + r["write"] + r["timeout"],
        first_bad=r["first_bad"],
    )


async def _python_load(
    port: int, path: str, marker: str, cookies: list[str], seconds: float, connections: int
) -> dict[str, Any]:
    """wrk's stand-in: ``connections`` closed loops, one request per connection (Connection: close)."""
    latencies: list[float] = []
    counts = {"non200": 0, "unrendered": 0, "errors": 0}
    first_bad: list[str] = []
    needle = marker.encode()
    stop = time.perf_counter() + seconds

    async def loop(k: int) -> None:
        i = k
        while time.perf_counter() < stop:
            i += 1
            cookie = cookies[i % len(cookies)] if cookies else "none=1"
            started = time.perf_counter()
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(
                    f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: {USER_AGENT}\r\n"
                    f"Cookie: {cookie}\r\nConnection: close\r\n\r\n".encode()
                )
                data = await reader.read(-1)
                writer.close()
            except OSError:
                counts["errors"] += 1
                continue
            latencies.append(time.perf_counter() - started)
            status = data[9:12]
            if status != b"200":
                counts["non200"] += 1
                if not first_bad:
                    first_bad.append(f"HTTP {status.decode(errors='replace')}")
            elif needle not in data:
                counts["unrendered"] += 1

    started = time.perf_counter()
    await asyncio.gather(*(loop(k) for k in range(connections)))
    return {"latencies": latencies, "seconds": time.perf_counter() - started, **counts, "first_bad": "".join(first_bad)}


def python_load(
    port: int, path: str, marker: str, cookies: list[str], seconds: float, connections: int
) -> dict[str, Any]:
    return asyncio.run(_python_load(port, path, marker, cookies, seconds, connections))


def run_load(
    server: Server, path: str, marker: str, cookies: list[str], seconds: float, args: argparse.Namespace
) -> LoadResult:
    """The closed-loop load, from a process of its own (wrk, or the asyncio stand-in), with the
    server's CPU time per request."""
    app, db = server.cpu_seconds()
    result = _load(server.port, path, marker, cookies, seconds, args)
    if result.requests:
        app_after, db_after = server.cpu_seconds()
        result.server_cpu_ms = (app_after - app) * 1000 / result.requests
        result.db_cpu_ms = (db_after - db) * 1000 / result.requests
    return result


def _load(
    port: int, path: str, marker: str, cookies: list[str], seconds: float, args: argparse.Namespace
) -> LoadResult:
    if shutil.which("wrk"):
        with tempfile.NamedTemporaryFile("w", suffix=".cookies", delete=False) as f:
            f.write("\n".join(cookies))
        try:
            return run_wrk(
                port, path, marker, Path(f.name) if cookies else None, seconds, args.connections, args.threads
            )
        finally:
            os.unlink(f.name)
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        r = pool.submit(python_load, port, path, marker, cookies, seconds, args.connections).result()
    ms = np.asarray(r["latencies"]) * 1000 if r["latencies"] else np.zeros(1)
    p50, p95, p99 = percentiles(ms, 50, 95, 99)
    return LoadResult(
        "python asyncio (no wrk)",
        len(r["latencies"]),
        r["seconds"],
        p50,
        p95,
        p99,
        float(ms.max()),
        r["non200"],
        r["unrendered"],
        r["errors"],
        r["first_bad"],
    )


# One request, taken apart ---------------------------------------------------------------------


@dataclass
class Breakdown:
    requests: int
    ms_per_request: float
    sql_ms_per_request: float
    statements_per_request: float
    statements: list[tuple[str, float, float]]  # (statement, calls per request, ms per request)
    profile: str
    problems: list[str]


def breakdown(
    env: dict[str, str], users: list[str], available: dict[str, int], *, seconds: float, profile: bool
) -> Breakdown:
    """The dashboard request in this process (test client, same database): where its time goes."""
    from sqlalchemy import event

    with environment(env):
        app = dashboard_app()
    path = dashboard_path(app)
    engine = app.extensions["loyalty"].store.engine
    timing: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    active = [False]

    def before(conn: Any, cursor: Any, statement: str, *a: Any) -> None:
        conn.info.setdefault("bench_started", []).append(time.perf_counter())

    def after(conn: Any, cursor: Any, statement: str, *a: Any) -> None:
        started = conn.info["bench_started"].pop()
        if active[0]:
            slot = timing[" ".join(statement.split())]
            slot[0] += 1
            slot[1] += time.perf_counter() - started

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    app.config["PROPAGATE_EXCEPTIONS"] = True  # an error raises here, once, instead of logging 500 pages
    clients = []
    for user in users:
        client = app.test_client()
        client.get(f"/_bench/login/{user}?token={env[ENV_TOKEN]}")
        clients.append((user, client))

    def get(user: str, client: Any, *, check: bool) -> str | None:
        try:
            r = client.get(path)
        except Exception as exc:  # the page is broken: say how, once
            return f"{user}: {type(exc).__name__}: {exc}"
        if r.status_code != 200:
            return f"{user}: HTTP {r.status_code}"
        if check and shown_points(r.get_data(as_text=True)) != available[user]:
            return f"{user}: the page does not show the member's {available[user]} points"
        return None

    # Warm (templates compiled, statements cached) and check; a broken page is not timed.
    problems = [p for p in (get(user, client, check=True) for user, client in clients[:3]) if p]
    profiler = cProfile.Profile() if profile and not problems else None
    active[0] = True
    started = time.perf_counter()
    n = 0
    if profiler:
        profiler.enable()
    for user, client in [] if problems else clients:  # at most ``seconds`` of them, at least 3
        if problem := get(user, client, check=False):
            problems.append(problem)
            break
        n += 1
        if n >= 3 and time.perf_counter() - started > seconds:
            break
    if profiler:
        profiler.disable()
    wall = time.perf_counter() - started
    active[0] = False
    app.extensions["loyalty"].store.dispose()
    if problems or not n:
        return Breakdown(0, float("nan"), float("nan"), float("nan"), [], "", problems or ["no request"])
    statements = sorted(((s, c / n, t * 1000 / n) for s, (c, t) in timing.items()), key=lambda x: -x[2])
    text = ""
    if profiler:
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats("cumulative").print_stats(40)
        stats.sort_stats("tottime").print_stats(20)
        text = out.getvalue()
    return Breakdown(
        n,
        wall * 1000 / n,
        sum(t for _, _, t in statements),
        sum(c for _, c, _ in statements),
        statements,
        text,
        problems,
    )


# The measurement ----------------------------------------------------------------------------


def bench(label: str, url: str, shop: Shop, args: argparse.Namespace) -> list[Figure]:
    members = shop.rows["loyalty_members"]
    print(f"\n== {label}: {members:,} members ({url.split('@')[-1]})", flush=True)
    if shop.chunks:
        loaded = load(url, shop)
        print(
            f"data: loaded in {loaded.seconds:.1f} s; ledger.verify: "
            + ("every balance agrees with the ledger and the lots" if not loaded.discrepancies else "")
            + (f"{loaded.discrepancies:,} DISCREPANCIES" if loaded.discrepancies else "")
            + f" ({loaded.verify_seconds:.1f} s)",
            flush=True,
        )
    else:
        loaded = Loaded(0.0, 0.0, 0)
        print(f"data: as the last run left it (--reuse-data): {shop_rows(shop)}", flush=True)
    database = make_url(url).database if make_url(url).get_backend_name() == "postgresql" else None
    config = ServerConfig(args.workers, args.worker_class, args.threads_per_worker)
    logs = Path(args.workdir)
    logs.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([args.seed, 24])
    users = sorted(shop.available)
    chosen = [users[i] for i in rng.choice(len(users), size=min(args.members_logged_in, len(users)), replace=False)]
    sample = chosen[: min(args.check_sample, len(chosen))]
    env = {
        ENV_URL: url,
        ENV_SECRET: secrets.token_hex(32),
        ENV_TOKEN: secrets.token_hex(16),
        ENV_INSTANCE: tempfile.mkdtemp(prefix="loyalty-bench-"),
    }
    print(
        f"serving: {config.describe()} on 127.0.0.1, one app at a time; load: "
        + (f"wrk, {args.threads} thread(s)" if shutil.which("wrk") else "python asyncio client (wrk not found)")
        + f", {args.connections} connections, {args.warmup:g} s warm-up + {args.duration:g} s each",
        flush=True,
    )

    def hello_round(tag: str) -> LoadResult:
        with serve("bench.bench_dashboard:hello_app()", config, {}, logs / "bench_dashboard.hello.log") as server:
            status, _, body = http_get(server.port, "/")
            if status != 200 or body != HELLO:
                raise SystemExit(f"the hello app answered HTTP {status}: {body[:200]!r}")
            run_load(server, "/", HELLO, cookies, args.warmup, args)
            result = run_load(server, "/", HELLO, cookies, args.duration, args)
        print(f"[{label}] hello ({tag}):  {result.line()}", flush=True)
        return result

    path = _served_path(env)
    app_log = logs / "bench_dashboard.app.log"
    with serve("bench.bench_dashboard:dashboard_app()", config, env, app_log) as server:
        started = time.perf_counter()
        cookies = log_in(server.port, chosen, env[ENV_TOKEN])
        print(f"[{label}] logged in {len(cookies):,} random live members in {time.perf_counter() - started:.1f} s")
    hello_before = hello_round("before")
    # With no page cache (every request renders the page: a member's first visit) and with the
    # per-member page cache warmed up by a long unmeasured load (members coming back); on
    # PostgreSQL once more with LOYALTY_PAGE_CACHE_NOTIFY (no read of the page's key).
    problems: list[str] = []
    runs: dict[str, LoadResult] = {}
    cache_size = str(max(5000, 2 * len(chosen)))
    modes = [("no page cache", "0", args.warmup, "0"), ("warm page cache", cache_size, args.cache_warmup, "0")]
    if database:
        modes.append(("warm page cache, notified", cache_size, args.cache_warmup, "1"))
    for mode, size, warmup, notify in modes:
        with serve(
            "bench.bench_dashboard:dashboard_app()",
            config,
            {**env, ENV_CACHE: size, ENV_NOTIFY: notify},
            app_log,
            database,
        ) as server:
            check = (server.port, path, sample, cookies[: len(sample)], shop.available, args.workers)
            problems += check_pages(*check)
            run_load(server, path, MARKER, cookies, warmup, args)
            runs[mode] = run_load(server, path, MARKER, cookies, args.duration, args)
            problems += check_pages(*check)
        print(f"[{label}] dashboard, {mode} ({warmup:g} s warm-up): {runs[mode].line()}", flush=True)
        if runs[mode].bad:
            print(f"[{label}] the served app's log: {app_log}")
    hello_after = hello_round("after")
    checked = (
        f"{len(sample)} members' pages before and after the load showed their available points"
        if not problems
        else f"{len(problems)} WRONG pages, e.g. {problems[0]}"
    )
    print(f"[{label}] check: {checked}")

    hello_rps = (hello_before.rps + hello_after.rps) / 2
    hello_cpu = (hello_before.server_cpu_ms + hello_after.server_cpu_ms) / 2
    for mode, dash in runs.items():
        dash_cpu = dash.server_cpu_ms + dash.db_cpu_ms
        print(
            f"[{label}] dashboard, {mode}: {dash.rps:.1f} req/s = {100 * dash.rps / hello_rps:.1f} % of hello's "
            f"{hello_rps:.1f} (target >= {100 * RATIO_TARGET:.0f} %); p99 {dash.p99_ms:.1f} ms (target < "
            f"{P99_TARGET_MS:g} ms); CPU per request {dash_cpu:.2f} ms against hello's {hello_cpu:.3f} ms: "
            f"{100 * hello_cpu / dash_cpu:.1f} %, the ratio with the CPU to themselves",
            flush=True,
        )

    parts = breakdown(
        {**env, ENV_CACHE: "0"},
        chosen[: args.breakdown_requests],
        shop.available,
        seconds=args.breakdown_seconds,
        profile=args.profile,
    )
    if parts.problems:
        print(f"\n[{label}] one request in-process: BROKEN, not timed: {parts.problems[0]}")
    else:
        print(
            f"\n[{label}] one request in-process (test client, {parts.requests} members, no server): "
            f"{parts.ms_per_request:.2f} ms, of which SQL {parts.sql_ms_per_request:.2f} ms in "
            f"{parts.statements_per_request:.1f} statements; by statement (ms and calls per request):"
        )
    for statement, calls, ms in parts.statements:
        print(f"  {ms:8.3f} ms  {calls:4.1f}x  {statement[:150]}")
    if parts.profile:
        print(f"[{label}] cProfile of those requests (timings inflated by the profiler):\n{parts.profile}")
    shutil.rmtree(env[ENV_INSTANCE], ignore_errors=True)

    ok = not problems and not parts.problems and loaded.discrepancies == 0
    n = f"{members // 1000:,}k"
    note_server = f"{config.describe()}, {args.connections} conn., {runs['warm page cache'].tool}"
    top = parts.statements[0] if parts.statements else ("", 0.0, 0.0)
    figures = [
        Figure(
            f"dashboard {label} {n}: hello req/s",
            hello_rps,
            "/s",
            None,
            f"{hello_before.rps:.0f} before, {hello_after.rps:.0f} after; {note_server}",
        )
    ]
    for mode, dash in runs.items():
        what = f"dashboard {label} {n}, {mode}"
        dash_cpu = dash.server_cpu_ms + dash.db_cpu_ms
        figures += [
            Figure(
                f"{what}: req/s",
                dash.rps,
                "/s",
                None,
                f"{100 * dash.rps / hello_rps:.1f} % of hello (target >= {100 * RATIO_TARGET:.0f} %)",
                ok,
            ),
            Figure(
                f"{what}: hello / dashboard",
                hello_rps / dash.rps if dash.rps else float("inf"),
                "x",
                1 / RATIO_TARGET,
                f"<= {1 / RATIO_TARGET:g} x is dashboard >= {100 * RATIO_TARGET:.0f} % of hello",
                ok,
            ),
            Figure(f"{what}: p50", dash.p50_ms, "ms", None, f"closed loop, {args.connections} connections"),
            Figure(f"{what}: p95", dash.p95_ms, "ms", None, ""),
            Figure(f"{what}: p99", dash.p99_ms, "ms", P99_TARGET_MS, f"max {dash.max_ms:.0f} ms", ok),
            Figure(
                f"{what}: bad responses",
                dash.bad,
                "",
                0,
                f"not 200 {dash.non200}, no marker {dash.unrendered}, socket {dash.socket_errors}; {checked}",
                not problems,
            ),
            Figure(
                f"{what}: CPU/request",
                dash_cpu,
                "ms",
                None,
                (f"app {dash.server_cpu_ms:.2f} + PostgreSQL {dash.db_cpu_ms:.2f} ms; " if database else "")
                + f"hello {hello_cpu:.3f} ms: {100 * hello_cpu / dash_cpu:.1f} % by CPU (other load not counted)",
            ),
        ]
    return [
        *figures,
        Figure(
            f"dashboard {label} {n}: in-process request, no page cache",
            parts.ms_per_request,
            "ms",
            None,
            f"SQL {parts.sql_ms_per_request:.2f} ms in {parts.statements_per_request:.0f} statements, the top one "
            f"{top[2]:.2f} ms: {top[0][:60]}"
            if not parts.problems
            else f"broken: {parts.problems[0][:100]}",
            not parts.problems,
        ),
        Figure(
            f"dashboard {label} data load (not measured)",
            loaded.seconds,
            "s",
            None,
            f"{shop.rows['loyalty_ledger_entries']:,} ledger entries; verify "
            + ("clean" if not loaded.discrepancies else f"{loaded.discrepancies:,} discrepancies"),
            loaded.discrepancies == 0,
        ),
    ]


@contextmanager
def environment(env: dict[str, str]) -> Iterator[None]:
    """``env`` in ``os.environ`` for the block (the app factory reads its settings there)."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _served_path(env: dict[str, str]) -> str:
    """``url_for('loyalty.dashboard')`` of the served app's configuration."""
    with environment(env):
        app = dashboard_app()
        try:
            return dashboard_path(app)
        finally:
            app.extensions["loyalty"].store.dispose()


def shop_rows(shop: Shop) -> str:
    return ", ".join(f"{v:,} {k.removeprefix('loyalty_')}" for k, v in shop.rows.items())


def shop_in_database(url: str) -> Shop:
    """``--reuse-data``: the shop a previous run loaded; the pages must show the stored balances
    (which that run's ``ledger.verify`` found equal to the ledger)."""
    from sqlalchemy import func, select

    from loyalty_plugin.database import make_engine
    from loyalty_plugin.models import Base, Member

    engine = make_engine(url)
    tables = ("loyalty_members", "loyalty_orders", "loyalty_order_lines", "loyalty_coupons")
    tables += ("loyalty_point_lots", "loyalty_ledger_entries")
    with engine.connect() as conn:
        rows = {t: int(conn.scalar(select(func.count()).select_from(Base.metadata.tables[t])) or 0) for t in tables}
        stored = conn.execute(select(Member.user_id, Member.points_balance).where(Member.erased_at.is_(None))).all()
    engine.dispose()
    if not rows["loyalty_members"]:
        raise SystemExit(f"--reuse-data: no members at {url}; run without it first.")
    available = {str(user): max(int(points), 0) for user, points in stored}
    return Shop([], [], [], available, data_now(), rows)


def code_version() -> str:
    """The commit, and a digest of the plugin's code and templates as they are on disk (they may
    be edited while the bench runs: compare the digest at the start and at the end)."""
    import hashlib

    root = BENCH_DIR.parent
    digest = hashlib.sha1(usedforsecurity=False)
    for path in sorted([*(root / "loyalty_plugin").rglob("*.py"), *(root / "templates").rglob("*.html")]):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, check=False
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "loyalty_plugin", "templates"],
            cwd=root,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    except OSError:
        head, dirty = "?", ""
    return f"{head or '?'}{' + uncommitted changes' if dirty else ''}, code digest {digest.hexdigest()[:10]}"


def data_now() -> datetime:
    """The shop's data ends an hour before the wall clock (the served app runs on the real clock)."""
    return datetime.now(UTC).replace(tzinfo=None, minute=0, second=0, microsecond=0) - timedelta(hours=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_arguments(parser)
    parser.add_argument("--sqlite-members", type=int, default=100_000, help="0 to skip SQLite")
    parser.add_argument("--pg-members", type=int, default=100_000, help="0 to skip PostgreSQL")
    parser.add_argument("--quick", action="store_true", help="10k members (~200k ledger entries), 5 s runs")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="gunicorn workers, both apps")
    parser.add_argument("--worker-class", default="sync", help="gunicorn worker class, both apps (sync, gthread)")
    parser.add_argument("--threads-per-worker", type=int, default=4, help="with --worker-class gthread")
    parser.add_argument("--connections", type=int, help="concurrent connections (default: 2 x workers)")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of measured load per app")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of unmeasured load first")
    parser.add_argument(
        "--cache-warmup",
        type=float,
        default=40.0,
        help="seconds of unmeasured load that fill the page cache before the warm measurement",
    )
    parser.add_argument("--members-logged-in", type=int, default=3000, help="members whose cookies rotate")
    parser.add_argument("--check-sample", type=int, default=50, help="pages checked before and after the load")
    parser.add_argument("--breakdown-requests", type=int, default=300, help="requests taken apart in-process")
    parser.add_argument("--breakdown-seconds", type=float, default=20.0, help="at most this long (at least 3)")
    parser.add_argument("--profile", action="store_true", help="cProfile the in-process requests")
    parser.add_argument(
        "--reuse-data", action="store_true", help="measure the databases as the last run left them (no load)"
    )
    args = parser.parse_args()
    if args.quick:
        args.sqlite_members, args.pg_members = min(args.sqlite_members, 10_000), min(args.pg_members, 10_000)
        args.duration, args.warmup = min(args.duration, 5.0), min(args.warmup, 2.0)
        args.cache_warmup = min(args.cache_warmup, 10.0)
        args.members_logged_in = min(args.members_logged_in, 500)
        args.check_sample = min(args.check_sample, 30)
        args.breakdown_requests = min(args.breakdown_requests, 100)
        args.breakdown_seconds = min(args.breakdown_seconds, 10.0)
    args.connections = args.connections or 2 * args.workers
    args.threads = max(1, min(args.threads, args.connections))
    try:
        import gunicorn  # noqa: F401
    except ImportError:
        raise SystemExit("gunicorn is missing: pip install -e '.[bench]'") from None
    if not shutil.which("wrk"):
        print("note: wrk not found (apt-get install wrk): a Python client stands in and takes a core of its own")
    if args.pg_url and args.pg_members and "bench" not in (make_url(args.pg_url).database or ""):
        raise SystemExit(f"Refusing {args.pg_url}: bench databases must have 'bench' in the name.")
    facts = machine_facts(args.pg_url or None)
    facts["wrk"] = "yes" if shutil.which("wrk") else "no (python client)"
    facts["plugin"] = code_version()
    print_facts(facts)
    now = data_now()
    figures: list[Figure] = []
    sizes = {n for n in (args.sqlite_members, args.pg_members if args.pg_url else 0) if n}
    shops: dict[int, Shop] = {}
    for n in sorted(sizes) if not args.reuse_data else []:
        shop = simulate_shop(n, seed=args.seed, now=now)
        shops[n] = shop
        print(
            f"\nshop of {n:,} members, data up to {now:%Y-%m-%d %H:%M}: {shop_rows(shop)}; "
            f"simulated in {shop.seconds:.1f} s"
        )
        figures.append(
            Figure(f"dashboard data {n // 1000:,}k simulated (not measured)", shop.seconds, "s", None, shop_rows(shop))
        )
    targets = []
    if args.sqlite_members:
        path = Path(args.workdir) / "bench_dashboard.sqlite"
        targets.append(("SQLite", f"sqlite:///{path}", args.sqlite_members))
    if args.pg_url and args.pg_members:
        targets.append(("PostgreSQL", args.pg_url, args.pg_members))
    for label, url, n in targets:
        figures += bench(label, url, shop_in_database(url) if args.reuse_data else shops[n], args)
    print_figures(
        f"member dashboard under load (targets: dashboard >= {100 * RATIO_TARGET:.0f} % of hello's req/s, "
        f"p99 < {P99_TARGET_MS:g} ms)",
        figures,
    )
    after = code_version()
    if after != facts["plugin"]:
        print(
            f"\nWARNING: the plugin's code changed during the run: {facts['plugin']} at the start, {after} at the end"
        )
        facts["plugin"] += f"; CHANGED during the run, at the end: {after}"
    write_json(args.json, "dashboard", figures, facts, data_now=now.isoformat())


if __name__ == "__main__":
    main()
