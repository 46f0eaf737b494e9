"""Tier rules: qualifying spend over a rolling window, upgrades at once, a protected stay,
downgrades one step at a time.

:func:`evaluate_tiers` is set-based: one aggregate query over all members, the decision in
numpy, and bulk writes for the members that change. The nightly job calls it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

import numpy as np
from sqlalchemy import BigInteger, case, delete, func, insert, select, type_coerce, update
from sqlalchemy.orm import Session

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
    """Move every member to the tier the rules give today; record and announce each change."""
    sync_tiers(session, settings)
    since = now - timedelta(days=settings.tier_window_days)
    protected_after = now - timedelta(days=settings.tier_keep_days)
    spend = (
        select(Order.member_id, func.sum(spend_expression(settings)).label("cents"))
        .where(Order.member_id.is_not(None), Order.placed_at > since, Order.placed_at <= now)
        .group_by(Order.member_id)
        .subquery()
    )
    rank_of = {tier.code: tier.rank for tier in settings.tiers}
    rows = session.execute(
        select(
            Member.id,
            Member.user_id,
            case(rank_of, value=Member.tier_code, else_=0),
            case((Member.tier_reached_at > protected_after, 1), else_=0),
            func.coalesce(spend.c.cents, 0),
        )
        .outerjoin(spend, spend.c.member_id == Member.id)
        .where(Member.erased_at.is_(None))
    ).all()
    if not rows:
        return TierRun(0, 0, 0, 0)
    ids, user_ids, current, protected, cents = zip(*rows, strict=True)
    current_rank = np.asarray(current, dtype=np.int64)
    cents_arr = np.asarray(cents, dtype=np.int64)
    thresholds = np.asarray([int(t.threshold * 100) for t in settings.tiers], dtype=np.int64)
    qualified = np.searchsorted(thresholds, cents_arr, side="right") - 1
    below = qualified < current_rank
    new_rank = np.where(
        qualified > current_rank,
        qualified,
        np.where(below & ~np.asarray(protected, dtype=bool), current_rank - 1, current_rank),
    )
    changed = np.flatnonzero(new_rank != current_rank)
    codes = [tier.code for tier in settings.tiers]
    if changed.size:
        session.execute(
            update(Member),
            [{"id": ids[i], "tier_code": codes[new_rank[i]], "tier_reached_at": now} for i in changed],
        )
        history = []
        for i in changed:
            up = new_rank[i] > current_rank[i]
            history.append(
                {
                    "member_id": ids[i],
                    "from_tier": codes[current_rank[i]],
                    "to_tier": codes[new_rank[i]],
                    "reason": "upgrade" if up else "downgrade",
                    "qualifying_spend": Decimal(int(cents_arr[i])).scaleb(-2),
                    "changed_at": now,
                }
            )
            signals.defer(
                session,
                signals.tier_changed,
                user_id=user_ids[i],
                from_tier=codes[current_rank[i]],
                to_tier=codes[new_rank[i]],
                reason="upgrade" if up else "downgrade",
            )
        session.execute(insert(TierChange), history)
    upgraded = int(np.count_nonzero(new_rank > current_rank))
    downgraded = int(np.count_nonzero(new_rank < current_rank))
    return TierRun(len(rows), upgraded, downgraded, len(rows) - upgraded - downgraded)
