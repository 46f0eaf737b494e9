"""Tier rules: qualifying spend over a rolling window, upgrades at once, a protected stay,
downgrades one step at a time.

:func:`evaluate_tiers` is set-based: one aggregate query over all members that decides in SQL
and returns only the members who change, then bulk writes for them. The nightly job calls it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import BigInteger, and_, case, delete, func, insert, select, type_coerce, update
from sqlalchemy.orm import Session
from sqlalchemy.sql import Subquery

from . import signals
from .config import Settings
from .models import Member, Order, TierChange
from .models import Tier as TierRow


def sync_tiers(session: Session, settings: Settings) -> None:
    """Make ``loyalty_tiers`` say what ``LOYALTY_TIERS`` says, for reports that join on it."""
    existing = {row.code: row for row in session.scalars(select(TierRow))}
    for tier in settings.tiers:
        row = existing.pop(tier.code, None) or TierRow(code=tier.code)
        row.name, row.rank, row.threshold = tier.name, tier.rank, tier.threshold
        row.multiplier, row.discount_percent = tier.multiplier, tier.discount_percent
        session.add(row)
    if existing:
        session.execute(delete(TierRow).where(TierRow.code.in_(list(existing))))


def spend_expression(settings: Settings):
    """An order's qualifying spend in minor units: what was paid and kept, as points are earned."""
    spend = Order.total - Order.refunded_total
    if not settings.earn_on_shipping:
        spend = spend - Order.shipping
    if not settings.earn_on_tax:
        spend = spend - Order.tax
    return type_coerce(spend, BigInteger)


def spend_by_member(settings: Settings, *, now: datetime) -> Subquery:
    """(member_id, cents): each member's qualifying spend over the rolling window ending ``now``."""
    since = now - timedelta(days=settings.tier_window_days)
    return (
        select(Order.member_id, func.sum(spend_expression(settings)).label("cents"))
        .where(Order.member_id.is_not(None), Order.placed_at > since, Order.placed_at <= now)
        .group_by(Order.member_id)
        .subquery()
    )


def qualifying_spend(session: Session, member: Member, *, now: datetime, settings: Settings) -> Decimal:
    since = now - timedelta(days=settings.tier_window_days)
    cents = session.scalar(
        select(func.coalesce(func.sum(spend_expression(settings)), 0)).where(
            Order.member_id == member.id, Order.placed_at > since, Order.placed_at <= now
        )
    )
    return max(Decimal(int(cents)).scaleb(-2), Decimal(0))


@dataclass(frozen=True)
class TierRun:
    evaluated: int
    upgraded: int
    downgraded: int
    kept: int


def evaluate_tiers(session: Session, *, now: datetime, settings: Settings) -> TierRun:
    """Move every member to the tier the rules give today; record and announce each change.

    The decision is made in the query, which returns only the members who change: on most
    nights a few hundred rows leave the database, not one per member.
    """
    sync_tiers(session, settings)
    protected_after = now - timedelta(days=settings.tier_keep_days)
    spend = spend_by_member(settings, now=now)
    cents = func.coalesce(spend.c.cents, 0)
    current = case({tier.code: tier.rank for tier in settings.tiers}, value=Member.tier_code, else_=0)
    # The highest tier whose threshold the spend reaches. A net spend below zero (an order
    # refunded with its shipping) qualifies for the lowest tier.
    qualified = case(
        *[(cents >= int(tier.threshold * 100), tier.rank) for tier in reversed(settings.tiers[1:])], else_=0
    )
    new = case(
        (qualified > current, qualified),
        (and_(qualified < current, Member.tier_reached_at <= protected_after), current - 1),
        else_=current,
    )
    live = Member.erased_at.is_(None)
    evaluated = session.scalar(select(func.count()).select_from(Member).where(live)) or 0
    changed = session.execute(
        select(Member.id, Member.user_id, current, new, cents)
        .outerjoin(spend, spend.c.member_id == Member.id)
        .where(live, new != current)
    ).all()
    codes = [tier.code for tier in settings.tiers]
    upgraded = sum(1 for row in changed if row[3] > row[2])
    if changed:
        session.execute(
            update(Member),
            [{"id": member_id, "tier_code": codes[to], "tier_reached_at": now} for member_id, _, _, to, _ in changed],
        )
        history = []
        for member_id, user_id, from_, to, member_cents in changed:
            reason = "upgrade" if to > from_ else "downgrade"
            history.append(
                {
                    "member_id": member_id,
                    "from_tier": codes[from_],
                    "to_tier": codes[to],
                    "reason": reason,
                    "qualifying_spend": Decimal(int(member_cents)).scaleb(-2),
                    "changed_at": now,
                }
            )
            signals.defer(
                session, signals.tier_changed, user_id=user_id, from_tier=codes[from_], to_tier=codes[to], reason=reason
            )
        session.execute(insert(TierChange), history)
    downgraded = len(changed) - upgraded
    return TierRun(evaluated, upgraded, downgraded, evaluated - upgraded - downgraded)
