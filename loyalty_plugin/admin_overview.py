"""The admin overview: members, repeat purchases, order value by tier, points moved per month,
the points liability and a preview of the next tier evaluation.

The member and order figures are the kept group totals of :mod:`.admin_figures` (refreshed
first, so exact as of the request); the points per month the ledger's monthly totals
(:mod:`.admin_ledger_months`). Only the repeat rate of customers who are not members is
summed from the orders here: those are few, and not members whose changes are queued.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from . import admin_figures, admin_ledger_months
from .admin_member_figures import ACTIVE_DAYS, WINDOW_DAYS
from .admin_tiers import Preview, TierRow, kept_tier_rows, preview_from_groups
from .config import Settings
from .models import Member, Order, Reward

__all__ = ["ACTIVE_DAYS", "WINDOW_DAYS", "Overview", "overview", "point_value"]

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

    ``point_value`` is ``LOYALTY_POINT_VALUE`` when the shop set it (``valued_by_setting``),
    else the money one point buys through the most generous active fixed-amount reward (the
    liability at its largest); ``breakage`` is the share of the points that left
    the program in the last twelve months by expiring rather than being redeemed, the usual
    forecast of how much of today's balance will expire unused."""

    available: int
    pending: int
    point_value: Decimal | None
    breakage: float | None
    valued_by_setting: bool = False

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


def overview(session: Session, *, now: datetime, settings: Settings) -> Overview:
    snapshot = admin_figures.current(session, now=now, settings=settings)
    months = _months(snapshot.ledger, now=now)
    issued, redeemed, expired = (sum(getattr(m, f) for m in months) for f in ("issued", "redeemed", "expired"))
    left = redeemed + expired
    available, pending = snapshot.total("available"), snapshot.total("pending")
    by_setting = settings.point_value is not None
    value = settings.point_value if by_setting else point_value(session)
    liability = Liability(available, pending, value, expired / left if left else None, valued_by_setting=by_setting)
    groups = snapshot.by(lambda g: (g.tier_code, g.qualified, g.protected, g.reach), "members")
    this_month = f"{now:%Y-%m}"
    return Overview(
        members=snapshot.total("members"),
        active=snapshot.total("active"),
        new_this_month=snapshot.total("members", lambda g: g.enrolled_month >= this_month),
        repeat_members=Rate(snapshot.total("buyers"), snapshot.total("repeaters")),
        repeat_others=_other_customers(session, now=now, since=now - timedelta(days=WINDOW_DAYS)),
        tiers=kept_tier_rows(snapshot, settings, ("buyers", "orders", "paid", "kept")),  # last 12 months
        months=months,
        issued=issued,
        redeemed=redeemed,
        expired=expired,
        liability=liability,
        preview=preview_from_groups([(*key, n) for key, (n,) in groups.items()], settings),
    )


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


def _months(totals: admin_ledger_months.Totals, *, now: datetime) -> list[PointsMonth]:
    by_month: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for (month, kind), (added, taken) in totals.items():
        if kind in ISSUING:
            by_month[month][0] += added
        elif kind == "redeem":
            by_month[month][1] += taken
        elif kind == "expire":
            by_month[month][2] += taken
    shown = pd.period_range(end=pd.Period(now, freq="M"), periods=MONTHS_SHOWN, freq="M").strftime("%Y-%m")
    return [PointsMonth(m, *by_month[m]) for m in shown]


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
