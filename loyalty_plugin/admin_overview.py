"""The admin overview: members, repeat purchases, order value by tier, points moved per month,
the points liability and a preview of the next tier evaluation.

The order figures come from one pass over the last twelve months' orders (summed per member,
then per tier); the points per month from the ledger's running monthly totals
(:mod:`.admin_ledger_months`). Nothing is loaded row by row into Python.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import BigInteger, func, select, type_coerce
from sqlalchemy.orm import Session

from . import admin_ledger_months
from .admin_tiers import (
    Preview,
    TierRow,
    cents_to_money,
    idle_groups,
    order_date,
    preview_from_groups,
    protected,
    qualified_rank,
    within_reach,
)
from .config import Settings
from .models import Member, Order, Reward
from .tiers import spend_expression

ACTIVE_DAYS = 90
WINDOW_DAYS = 365
MONTHS_SHOWN = 12
#: Ledger kinds that bring new points into the program (an order's points count once, when
#: earned as pending; "release" only makes them spendable).
ISSUING = ("earn", "signup", "birthday", "referral", "award", "adjust")


@dataclass(frozen=True)
class Rate:
    """Customers who ordered in the window, and how many of them ordered twice or more."""

    customers: int
    repeaters: int

    @property
    def rate(self) -> float | None:
        return self.repeaters / self.customers if self.customers else None


@dataclass(frozen=True)
class PointsMonth:
    month: str
    issued: int
    redeemed: int
    expired: int


@dataclass(frozen=True)
class Liability:
    """Points members hold (available and pending) and what they are worth.

    ``point_value`` is the money one point buys through the most generous active fixed-amount
    reward (the liability at its largest); ``breakage`` is the share of the points that left
    the program in the last twelve months by expiring rather than being redeemed, the usual
    forecast of how much of today's balance will expire unused."""

    available: int
    pending: int
    point_value: Decimal | None
    breakage: float | None

    @property
    def points(self) -> int:
        return self.available + self.pending

    @property
    def money(self) -> Decimal | None:
        return None if self.point_value is None else _cents(self.points * self.point_value)

    @property
    def expiring_points(self) -> int | None:
        return None if self.breakage is None else round(self.points * self.breakage)

    @property
    def expiring_money(self) -> Decimal | None:
        points = self.expiring_points
        return None if points is None or self.point_value is None else _cents(points * self.point_value)


def _cents(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Overview:
    members: int
    active: int
    new_this_month: int
    repeat_members: Rate
    repeat_others: Rate
    tiers: list[TierRow]
    months: list[PointsMonth]
    issued: int
    redeemed: int
    expired: int
    liability: Liability
    preview: Preview

    @property
    def redemption_rate(self) -> float | None:
        return self.redeemed / self.issued if self.issued else None


def overview(session: Session, *, now: datetime, settings: Settings, extensions: dict[str, Any]) -> Overview:
    since = now - timedelta(days=WINDOW_DAYS)
    members = _members(session, now=now, settings=settings)
    tiers, repeat, active, preview = _buyers(session, members.groups, now=now, since=since, settings=settings)
    months = _months(session, now=now, extensions=extensions)
    issued, redeemed, expired = (sum(getattr(m, f) for m in months) for f in ("issued", "redeemed", "expired"))
    left = redeemed + expired
    liability = Liability(members.available, members.pending, point_value(session), expired / left if left else None)
    return Overview(
        members=members.total,
        active=active,
        new_this_month=members.new,
        repeat_members=repeat,
        repeat_others=_other_customers(session, now=now, since=since),
        tiers=tiers,
        months=months,
        issued=issued,
        redeemed=redeemed,
        expired=expired,
        liability=liability,
        preview=preview,
    )


@dataclass(frozen=True)
class _MemberCounts:
    total: int
    new: int
    available: int
    pending: int
    #: (tier code, still protected) -> live members
    groups: dict[tuple[str, bool], int]


def _members(session: Session, *, now: datetime, settings: Settings) -> _MemberCounts:
    """One pass over the members: counts, points held, and the groups the preview needs."""
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    is_protected = protected(settings, now=now)
    rows = session.execute(
        select(
            Member.tier_code,
            is_protected,
            func.count(),
            func.count().filter(Member.enrolled_at >= month_start),
            func.sum(Member.points_balance).filter(Member.points_balance > 0),
            func.sum(Member.points_pending),
        )
        .where(Member.erased_at.is_(None))
        .group_by(Member.tier_code, is_protected)
    ).all()
    groups = {(code, bool(p)): int(n) for code, p, n, _, _, _ in rows}
    return _MemberCounts(
        total=sum(groups.values()),
        new=sum(int(new) for _, _, _, new, _, _ in rows),
        available=sum(int(a or 0) for _, _, _, _, a, _ in rows),
        pending=sum(int(p or 0) for _, _, _, _, _, p in rows),
        groups=groups,
    )


def _buyers(
    session: Session, everyone: dict[tuple[str, bool], int], *, now: datetime, since: datetime, settings: Settings
) -> tuple[list[TierRow], Rate, int, Preview]:
    """One pass over the orders of the last twelve months and of the tier window: per tier,
    buyers, orders, revenue and order value; repeat buyers; active members; the preview."""
    tier_since = now - timedelta(days=settings.tier_window_days)
    earliest = min(since, tier_since)

    def within(aggregate: Any, start: datetime) -> Any:
        """Only the orders after ``start``; every order read is, when ``start`` is the earliest
        (so the usual case, both windows a year, filters nothing per row)."""
        return aggregate if start == earliest else aggregate.filter(Order.placed_at > start)

    placed = order_date(session)
    per = (
        select(
            Order.member_id,
            within(func.count(), since).label("orders"),
            within(func.sum(type_coerce(Order.total, BigInteger)), since).label("paid"),
            within(func.sum(type_coerce(Order.total - Order.refunded_total, BigInteger)), since).label("kept"),
            func.max(Order.placed_at).label("last"),
            within(func.sum(spend_expression(settings)), tier_since).label("cents"),
        )
        .where(Order.member_id.is_not(None), placed > earliest, placed <= now)
        .group_by(Order.member_id)
        .subquery()
    )
    cents = func.coalesce(per.c.cents, 0)
    qualified = qualified_rank(cents, settings)
    is_protected = protected(settings, now=now)
    reach = within_reach(cents, settings, now=now)
    rows = session.execute(
        select(
            Member.tier_code,
            qualified,
            is_protected,
            reach,
            func.count(),
            func.count().filter(per.c.orders > 0),
            func.sum(per.c.orders),
            func.sum(per.c.paid),
            func.sum(per.c.kept),
            func.count().filter(per.c.orders > 1),
            func.count().filter(per.c.last > now - timedelta(days=ACTIVE_DAYS)),
        )
        .join(per, per.c.member_id == Member.id)
        .where(Member.erased_at.is_(None))
        .group_by(Member.tier_code, qualified, is_protected, reach)
    ).all()
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    groups, buying = [], defaultdict(int)
    repeaters = buyers_all = active = 0
    for code, rank, protect, within, count, buyers, orders, paid, kept, repeat, recent in rows:
        groups.append((code, int(rank), bool(protect), bool(within), int(count)))
        buying[code, bool(protect)] += int(count)
        for i, value in enumerate((buyers, orders, paid, kept)):
            totals[code][i] += int(value or 0)
        buyers_all += int(buyers)
        repeaters += int(repeat)
        active += int(recent)
    groups += idle_groups(everyone, buying)
    members_per_tier = defaultdict(int)
    for code, _, _, _, count in groups:
        members_per_tier[code] += count
    tiers = []
    for tier in settings.tiers:
        buyers, orders, paid, kept = totals[tier.code]
        aov = _cents(cents_to_money(paid) / orders) if orders else None
        tiers.append(
            TierRow(
                tier.code,
                tier.name,
                members_per_tier[tier.code],
                buyers,
                orders,
                cents_to_money(kept),
                cents_to_money(paid),
                aov,
            )
        )
    return tiers, Rate(buyers_all, repeaters), active, preview_from_groups(groups, settings)


def _other_customers(session: Session, *, now: datetime, since: datetime) -> Rate:
    """Logged-in customers who are not members (guests cannot be told apart, so they are left out)."""
    per = (
        select(Order.user_id, func.count().label("orders"))
        .where(
            Order.member_id.is_(None),
            Order.user_id.is_not(None),
            Order.placed_at > since,
            Order.placed_at <= now,
            Order.user_id.not_in(select(Member.user_id)),
        )
        .group_by(Order.user_id)
        .subquery()
    )
    customers, repeaters = session.execute(select(func.count(), func.count().filter(per.c.orders > 1))).one()
    return Rate(int(customers), int(repeaters))


def _months(session: Session, *, now: datetime, extensions: dict[str, Any]) -> list[PointsMonth]:
    totals = admin_ledger_months.for_app(extensions).read(session, now=now)
    by_month: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for (month, kind), (added, taken) in totals.items():
        if kind in ISSUING:
            by_month[month][0] += added
        elif kind == "redeem":
            by_month[month][1] += taken
        elif kind == "expire":
            by_month[month][2] += taken
    year, month = now.year, now.month
    shown = []
    for _ in range(MONTHS_SHOWN):
        shown.append(f"{year:04d}-{month:02d}")
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return [PointsMonth(m, *by_month[m]) for m in reversed(shown)]


def point_value(session: Session) -> Decimal | None:
    """Money per point of the most generous active fixed-amount reward; None without one."""
    best = None
    for amount, cost in session.execute(
        select(Reward.amount, Reward.cost_points).where(
            Reward.active.is_(True), Reward.kind == "fixed_amount", Reward.amount.is_not(None), Reward.cost_points > 0
        )
    ):
        value = Decimal(amount) / cost
        best = value if best is None or value > best else best
    return best
