"""One member's part of the admin figures, and until when it holds.

A member's part depends on the clock only through windows ("orders in the last year", "tier
still protected"), so it is constant between two moments this module computes: the next
order to leave or enter a window, the end of the tier's protection, the start of its
last-month "within reach" horizon, the next month of the tier report's default period.
:mod:`.admin_figures` keeps these parts and their group totals, recomputing a member only
when a trigger says their rows changed or ``valid_until`` has passed.

The rules are :func:`loyalty_plugin.tiers.evaluate_tiers`' (the tier the spend qualifies for,
the protection of a tier reached less than ``tier_keep_days`` ago); the figure tests compare
the results with independent SQL and with a real evaluation.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import BigInteger, Connection, and_, func, select, type_coerce

from .admin_tiers import KEEP_HORIZON_DAYS, KEEP_WITHIN, default_period, next_month
from .config import Settings
from .models import Member, Order
from .tiers import spend_expression

#: The overview's sales window and its "active" window, in days.
WINDOW_DAYS = 365
ACTIVE_DAYS = 90
#: Bumped when what a member's part holds changes: stored parts are then rebuilt.
FORMAT = 1


@dataclass(frozen=True)
class Windows:
    """Every window a member's part uses, at one moment."""

    now: datetime
    sales_from: datetime
    tier_from: datetime
    active_from: datetime
    period_from: datetime
    period_until: datetime
    period_first_month_until: datetime

    @classmethod
    def at(cls, now: datetime, settings: Settings) -> Windows:
        first, last = default_period(now)
        start = datetime.combine(first, time())
        return cls(
            now=now,
            sales_from=now - timedelta(days=WINDOW_DAYS),
            tier_from=now - timedelta(days=settings.tier_window_days),
            active_from=now - timedelta(days=ACTIVE_DAYS),
            period_from=start,
            period_until=datetime.combine(last + timedelta(days=1), time()),
            period_first_month_until=next_month(start),
        )


@dataclass(frozen=True)
class Part:
    """One live member's part, as stored in ``loyalty_admin_member_figures``."""

    member_id: int
    enrolled_month: str
    tier_code: str
    qualified: int
    protected: bool
    reach: bool
    available: int
    pending: int
    orders: int
    paid: int
    kept: int
    cents: int
    recent: int
    period_orders: int
    period_paid: int
    period_kept: int
    valid_from: datetime
    valid_until: datetime | None

    @property
    def key(self) -> tuple[str, str, int, bool, bool]:
        return (self.enrolled_month, self.tier_code, self.qualified, self.protected, self.reach)

    def sums(self) -> tuple[int, ...]:
        """What the member adds to their group, in ``SUMS`` order."""
        return (
            1,
            self.available,
            self.pending,
            int(self.orders > 0),
            self.orders,
            self.paid,
            self.kept,
            int(self.orders > 1),
            int(self.recent > 0),
            int(self.period_orders > 0),
            self.period_orders,
            self.period_paid,
            self.period_kept,
        )

    def row(self) -> dict[str, Any]:
        """The stored row (``dataclasses.asdict`` deep-copies every value: seconds at 100k)."""
        return {name: getattr(self, name) for name in PART_COLUMNS}


PART_COLUMNS = tuple(f.name for f in fields(Part))
#: The group totals' columns, in the order of ``Part.sums``.
SUMS = (
    "members",
    "available",
    "pending",
    "buyers",
    "orders",
    "paid",
    "kept",
    "repeaters",
    "active",
    "period_buyers",
    "period_orders",
    "period_paid",
    "period_kept",
)
KEY = ("enrolled_month", "tier_code", "qualified", "protected", "reach")


def fingerprint(settings: Settings) -> str:
    """The settings a part depends on: stored parts made under other settings are rebuilt."""
    tiers = [(t.code, t.rank, str(t.threshold)) for t in settings.tiers]
    facts = (
        FORMAT,
        tiers,
        settings.tier_window_days,
        settings.tier_keep_days,
        settings.earn_on_shipping,
        settings.earn_on_tax,
        WINDOW_DAYS,
        ACTIVE_DAYS,
        KEEP_HORIZON_DAYS,
        str(KEEP_WITHIN),
    )
    return hashlib.sha256(repr(facts).encode()).hexdigest()


def parts(connection: Connection, member_ids: Sequence[int], *, now: datetime, settings: Settings) -> list[Part]:
    """The parts of these members (erased or unknown ones have none): one query over their
    orders along the ``member_id`` index, then the rules in Python."""
    w = Windows.at(now, settings)
    placed = Order.placed_at
    sales = and_(placed > w.sales_from, placed <= now)
    tier = and_(placed > w.tier_from, placed <= now)
    active = and_(placed > w.active_from, placed <= now)
    period = and_(placed >= w.period_from, placed < w.period_until)
    total = type_coerce(Order.total, BigInteger)
    kept = type_coerce(Order.total - Order.refunded_total, BigInteger)
    per = (
        select(
            Order.member_id,
            func.count().filter(sales).label("orders"),
            func.sum(total).filter(sales).label("paid"),
            func.sum(kept).filter(sales).label("kept"),
            func.min(placed).filter(sales).label("sales_first"),
            func.sum(spend_expression(settings)).filter(tier).label("cents"),
            func.min(placed).filter(tier).label("tier_first"),
            func.count().filter(active).label("recent"),
            func.min(placed).filter(active).label("active_first"),
            func.min(placed).filter(placed > now).label("next_placed"),
            func.count().filter(period).label("period_orders"),
            func.sum(total).filter(period).label("period_paid"),
            func.sum(kept).filter(period).label("period_kept"),
            func.count().filter(placed >= w.period_from, placed < w.period_first_month_until).label("first_month"),
            func.min(placed).filter(placed >= w.period_until).label("after_period"),
        )
        .where(Order.member_id.in_(member_ids))
        .group_by(Order.member_id)
        .subquery()
    )
    rows = connection.execute(
        select(
            Member.id,
            Member.tier_code,
            Member.tier_reached_at,
            Member.enrolled_at,
            Member.points_balance,
            Member.points_pending,
            per,
        )
        .outerjoin(per, per.c.member_id == Member.id)
        .where(Member.id.in_(member_ids), Member.erased_at.is_(None))
    )
    return [_part(row, w, settings) for row in rows]


def _qualified(cents: int, settings: Settings) -> int:
    for t in reversed(settings.tiers[1:]):
        if cents >= int(t.threshold * 100):
            return t.rank
    return 0


def _part(row: Any, w: Windows, settings: Settings) -> Part:
    now = w.now
    keep = timedelta(days=settings.tier_keep_days)
    horizon_from = row.tier_reached_at + keep - timedelta(days=KEEP_HORIZON_DAYS)
    cents = int(row.cents or 0)
    qualified = _qualified(cents, settings)
    current = settings.tier(row.tier_code)  # an unknown code reads as the first tier (rank 0, threshold 0)
    threshold = int(current.threshold * 100)
    reach = qualified < current.rank and now >= horizon_from and cents * 100 >= threshold * int(KEEP_WITHIN * 100)
    return Part(
        member_id=row.id,
        enrolled_month=f"{row.enrolled_at:%Y-%m}",
        tier_code=row.tier_code,
        qualified=qualified,
        protected=row.tier_reached_at > now - keep,
        reach=reach,
        available=max(int(row.points_balance), 0),
        pending=int(row.points_pending),
        orders=int(row.orders or 0),
        paid=int(row.paid or 0),
        kept=int(row.kept or 0),
        cents=cents,
        recent=int(row.recent or 0),
        period_orders=int(row.period_orders or 0),
        period_paid=int(row.period_paid or 0),
        period_kept=int(row.period_kept or 0),
        valid_from=now,
        valid_until=_valid_until(row, w, settings, horizon_from),
    )


def _valid_until(row: Any, w: Windows, settings: Settings, horizon_from: datetime) -> datetime | None:
    """The first moment after ``w.now`` at which this part could differ without any write."""
    moments = [
        row.sales_first and row.sales_first + timedelta(days=WINDOW_DAYS),
        row.tier_first and row.tier_first + timedelta(days=settings.tier_window_days),
        row.active_first and row.active_first + timedelta(days=ACTIVE_DAYS),
        row.next_placed,
        next_month(w.now) if row.first_month else None,
        row.after_period and datetime.combine(row.after_period.date(), time()),
        row.tier_reached_at + timedelta(days=settings.tier_keep_days),
        horizon_from,
    ]
    later = [m for m in moments if m is not None and m > w.now]
    return min(later) if later else None
