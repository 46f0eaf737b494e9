"""The tier report: members and revenue per tier, movements per month, the next evaluation.

The default period's rows, the members per month of enrolment and the members within reach
of keeping their tier come from the kept figures (:mod:`.admin_figures`). Another period is
summed from its orders: per member first (along the ``member_id`` index), then joined to the
members and grouped by tier, so the join touches one row per buying member, not per order.

The preview of the next evaluation applies the rules of :func:`loyalty_plugin.tiers.evaluate_tiers`
to counts grouped by (tier, tier the spend qualifies for, still protected); a test runs the
real evaluation after the preview and compares.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

import pandas as pd
from sqlalchemy import BigInteger, DateTime, Select, case, func, literal_column, select, type_coerce
from sqlalchemy.orm import Session

from .admin_ledger_months import month_of
from .config import Settings
from .models import AdminMemberFigures, Member, Money, Order, TierChange
from .money import from_cents

if TYPE_CHECKING:
    from .admin_figures import Snapshot

#: Protection ending within this many days, with spend short of the tier: "keep within reach".
KEEP_HORIZON_DAYS = 30
#: ... and at least this share of the tier's threshold already spent.
KEEP_WITHIN = Decimal("0.75")


def order_date(session: Session) -> Any:
    """``Order.placed_at`` for filtering a period's member orders that are then summed per member.

    On SQLite it is written ``+placed_at`` (a no-op that no index matches): with an index on
    ``placed_at`` in reach, SQLite reads the period by date and fetches every order's row at
    random, several times slower at a million orders than walking the ``member_id`` index,
    which also delivers the orders already grouped. PostgreSQL plans this well by itself."""
    if session.get_bind().dialect.name == "sqlite":
        return literal_column(f"+{Order.__tablename__}.placed_at", DateTime())
    return Order.placed_at


@dataclass(frozen=True)
class Preview:
    """What tier evaluation would do now: members moving up, down, and those who keep their
    tier only for now (protection ends within ``KEEP_HORIZON_DAYS``, spend short but within reach)."""

    upgrades: int
    downgrades: int
    kept: int
    within_reach: int
    #: (from tier code, to tier code) -> members
    moves: dict[tuple[str, str], int]


def preview_from_groups(groups: list[tuple[str, int, bool, bool, int]], settings: Settings) -> Preview:
    """Fold (tier code, qualified rank, protected, within reach, members) groups into a preview,
    with evaluate_tiers' rules: up at once, down one step when no longer protected."""
    codes = [t.code for t in settings.tiers]
    up = down = kept = reach = 0
    moves: dict[tuple[str, str], int] = defaultdict(int)
    for code, qualified, protected, within_reach, members in groups:
        current = settings.tier(code).rank
        if qualified > current:
            up += members
            moves[code, codes[qualified]] += members
        elif qualified < current and not protected:
            down += members
            moves[code, codes[current - 1]] += members
        else:
            kept += members
            reach += members if within_reach else 0
    return Preview(up, down, kept, reach, dict(moves))


def _threshold_cents(settings: Settings) -> Any:
    return case({t.code: int(t.threshold * 100) for t in settings.tiers}, value=Member.tier_code, else_=0)


def keep_candidates(settings: Settings) -> Select[Any]:
    """The members counted as "within reach of keeping their tier", the smallest gap first
    (a statement, for the page and the CSV), from the kept figures: refresh them first
    (:func:`loyalty_plugin.admin_figures.current`)."""
    part = AdminMemberFigures
    gap = type_coerce(_threshold_cents(settings) - part.cents, BigInteger)
    return (
        select(
            Member.user_id.label("user_id"),
            Member.tier_code.label("tier"),
            Member.tier_reached_at.label("tier_reached_at"),
            type_coerce(part.cents, Money).label("qualifying_spend"),
            type_coerce(gap, Money).label("to_keep"),
        )
        .join(part, part.member_id == Member.id)
        .where(part.reach.is_(True))
        .order_by(gap, Member.user_id)
    )


@dataclass(frozen=True)
class TierRow:
    code: str
    name: str
    members: int
    buyers: int
    orders: int
    revenue: Decimal
    order_value: Decimal
    #: Average order value; None without orders.
    aov: Decimal | None


def tier_rows(session: Session, *, start: datetime, end: datetime, settings: Settings) -> list[TierRow]:
    """Per tier (the member's tier now): members, members who ordered in [start, end), their
    orders, revenue (paid less refunded) and average order value (paid, as ordered).

    For any period, summed from the orders (a scan of the period's orders); the default
    period's rows are kept up to date instead (:func:`default_tier_rows`)."""
    placed = order_date(session)
    per = (
        select(
            Order.member_id,
            func.count().label("orders"),
            func.sum(type_coerce(Order.total, BigInteger)).label("paid"),
            func.sum(type_coerce(Order.total - Order.refunded_total, BigInteger)).label("kept"),
        )
        .where(Order.member_id.is_not(None), placed >= start, placed < end)
        .group_by(Order.member_id)
        .subquery()
    )
    live = Member.erased_at.is_(None)
    bought = {
        code: (int(buyers), int(orders or 0), int(paid or 0), int(kept or 0))
        for code, buyers, orders, paid, kept in session.execute(
            select(Member.tier_code, func.count(), func.sum(per.c.orders), func.sum(per.c.paid), func.sum(per.c.kept))
            .join(per, per.c.member_id == Member.id)
            .where(live)
            .group_by(Member.tier_code)
        )
    }
    counts = dict(session.execute(select(Member.tier_code, func.count()).where(live).group_by(Member.tier_code)).all())
    return rows_per_tier(settings, counts, bought)


def default_tier_rows(snapshot: Snapshot, settings: Settings) -> list[TierRow]:
    """:func:`tier_rows` for :func:`default_period`, from the kept figures."""
    return kept_tier_rows(snapshot, settings, ("period_buyers", "period_orders", "period_paid", "period_kept"))


def kept_tier_rows(snapshot: Snapshot, settings: Settings, columns: tuple[str, str, str, str]) -> list[TierRow]:
    """Rows per tier from the kept figures; ``columns`` name the buyers, orders, paid and kept
    sums of the window wanted."""
    sums = snapshot.by(lambda g: g.tier_code, "members", *columns)
    counts = {code: values[0] for code, values in sums.items()}
    bought = {code: tuple(values[1:]) for code, values in sums.items()}
    return rows_per_tier(settings, counts, bought)


def rows_per_tier(settings: Settings, members: dict[str, int], bought: dict[str, tuple[int, ...]]) -> list[TierRow]:
    """The report's rows in tier order from members and (buyers, orders, paid, kept) per tier."""
    rows = []
    for tier in settings.tiers:
        buyers, orders, paid, kept = bought.get(tier.code, (0, 0, 0, 0))
        aov = (from_cents(paid) / orders).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP) if orders else None
        rows.append(
            TierRow(
                tier.code,
                tier.name,
                int(members.get(tier.code, 0)),
                buyers,
                orders,
                from_cents(kept),
                from_cents(paid),
                aov,
            )
        )
    return rows


@dataclass(frozen=True)
class MovementMonth:
    month: str
    upgrades: int
    downgrades: int
    #: Members enrolled by the month's end (and not erased) whose tier did not change in it.
    kept: int


def movements(session: Session, *, start: datetime, end: datetime, snapshot: Snapshot) -> list[MovementMonth]:
    """Tier changes per month of [start, end), from the tier history (along its date index);
    members enrolled by each month's end from the kept figures."""
    dialect = session.get_bind().dialect.name
    month = month_of(TierChange.changed_at, dialect)
    in_period = (TierChange.changed_at >= start, TierChange.changed_at < end)
    changes = session.execute(
        select(month, TierChange.reason, func.count()).where(*in_period).group_by(month, TierChange.reason)
    ).all()
    changed = dict(
        session.execute(
            select(month, func.count(TierChange.member_id.distinct())).where(*in_period).group_by(month)
        ).all()
    )
    shown = months_between(start, end)
    joined = snapshot.by(lambda g: g.enrolled_month, "members")
    enrolled = [sum(n for month, (n,) in joined.items() if month <= m) for m in shown]
    by_reason: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for m, reason, count in changes:
        by_reason[m][reason] += int(count)
    return [
        MovementMonth(m, by_reason[m]["upgrade"], by_reason[m]["downgrade"], int(joined) - int(changed.get(m, 0)))
        for m, joined in zip(shown, enrolled, strict=True)
    ]


def next_month(moment: datetime) -> datetime:
    """The first moment of the month after ``moment``'s."""
    return datetime(moment.year + 1, 1, 1) if moment.month == 12 else datetime(moment.year, moment.month + 1, 1)


def months_between(start: datetime, end: datetime) -> list[str]:
    """The months "YYYY-MM" that [start, end) touches, in order."""
    return list(pd.period_range(start, end - timedelta(microseconds=1), freq="M").strftime("%Y-%m"))


def tier_history(member_id: int) -> Select[Any]:
    """One member's tier changes, newest first (a statement, for the page and the CSV)."""
    return (
        select(
            TierChange.changed_at.label("changed_at"),
            TierChange.from_tier.label("from_tier"),
            TierChange.to_tier.label("to_tier"),
            TierChange.reason.label("reason"),
            TierChange.qualifying_spend.label("qualifying_spend"),
        )
        .where(TierChange.member_id == member_id)
        .order_by(TierChange.changed_at.desc(), TierChange.id.desc())
    )


def default_period(now: datetime) -> tuple[date, date]:
    """The last twelve whole months and this one: from the 1st, 11 months back, to today."""
    first = now.date().replace(day=1)
    year, month = (first.year - 1, first.month + 1) if first.month < 12 else (first.year, 1)
    return date(year, month, 1), now.date()
