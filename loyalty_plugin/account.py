"""What a member sees of their own account: tier progress, history, rewards they can afford,
referrals and the export of everything kept about them.

Read-only: every function here takes the member already found for the logged-in user, so a
page can never be pointed at another member's data by a parameter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Integer, Select, bindparam, func, select
from sqlalchemy.orm import Session

from .config import Settings, Tier
from .database import find
from .models import (
    ChurnAlert,
    Coupon,
    LedgerEntry,
    Member,
    MemberScore,
    MemberSegment,
    Order,
    PointLot,
    Reward,
    TierChange,
)
from .tiers import spend_expression

#: Ledger kinds a member can filter their history by, in the order the page lists them.
LEDGER_KINDS = ("earn", "release", "signup", "birthday", "referral", "award", "redeem", "clawback", "expire", "adjust")


@dataclass(frozen=True)
class TierProgress:
    """Where the member stands in the rolling window of qualifying spend.

    ``deadline`` is the day the oldest order in the window stops counting: spend ``to_go``
    before it and the next tier is reached; after it, more is needed. ``keep_until`` is the
    end of the tier's guaranteed period, and ``keep_to_go`` what must still be spent, counted
    in the window as it will be then, to stay in the tier after it.
    """

    tier: Tier
    spend: Decimal
    next_tier: Tier | None
    to_go: Decimal
    deadline: date | None
    percent: int
    keep_until: date | None
    keep_to_go: Decimal


def _cents(value: Any) -> Decimal:
    return max(Decimal(int(value or 0)).scaleb(-2), Decimal(0))


#: ``_window_spend`` statements by the two rules ``tiers.spend_expression`` reads.
_WINDOW_SPEND: dict[tuple[bool, bool], Select[Any]] = {}


def _window_spend(settings: Settings) -> Select[Any]:
    """One statement for the window's spend, its oldest order and what will still count when
    the guaranteed year ends: the dashboard is read far more often than orders are written.
    Built once per rule set: building it takes five times as long as running it."""
    key = (settings.earn_on_shipping, settings.earn_on_tax)
    if key not in _WINDOW_SPEND:
        spent = spend_expression(settings)
        counting_then = Order.placed_at > bindparam("kept_since")
        _WINDOW_SPEND[key] = select(
            func.sum(spent), func.min(Order.placed_at), func.sum(spent).filter(counting_then)
        ).where(
            Order.member_id == bindparam("member_id"),
            Order.placed_at > bindparam("since"),
            Order.placed_at <= bindparam("now"),
        )
    return _WINDOW_SPEND[key]


def tier_progress(session: Session, member: Member, *, now: datetime, settings: Settings) -> TierProgress:
    window = timedelta(days=settings.tier_window_days)
    tier = settings.tier(member.tier_code)
    above = [t for t in settings.tiers if t.rank > tier.rank]
    next_tier = above[0] if above else None
    keeps = tier.rank > min(t.rank for t in settings.tiers)
    moment = member.tier_reached_at + timedelta(days=settings.tier_keep_days)
    spend_cents, oldest, kept_cents = session.execute(
        _window_spend(settings),
        {"member_id": member.id, "since": now - window, "now": now, "kept_since": max(moment - window, now - window)},
    ).one()
    spend = _cents(spend_cents)
    to_go = max(next_tier.threshold - spend, Decimal(0)) if next_tier else Decimal(0)
    deadline = (oldest + window).date() if oldest is not None and next_tier else None
    percent = 100
    if next_tier:
        floor = tier.threshold if tier.threshold < next_tier.threshold else Decimal(0)
        span = next_tier.threshold - floor
        percent = max(0, min(100, math.floor((spend - floor) / span * 100))) if span > 0 else 100
    keep_until = moment.date() if keeps else None
    keep_to_go = max(tier.threshold - _cents(kept_cents), Decimal(0)) if keeps else Decimal(0)
    return TierProgress(tier, spend, next_tier, to_go, deadline, percent, keep_until, keep_to_go)


@dataclass(frozen=True)
class Page:
    items: list[Any]
    page: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page))

    @property
    def has_next(self) -> bool:
        return self.page < self.pages


def clamped(page: int, total: int, per_page: int) -> int:
    """``page`` (1-based) within the pages ``total`` rows make: a stale link shows the last page."""
    return max(1, min(page, max(1, math.ceil(total / per_page))))


def history(session: Session, member: Member, *, kind: str | None, page: int, per_page: int) -> Page:
    """The member's ledger, newest first; ``kind`` outside ``LEDGER_KINDS`` means every kind."""
    where = [LedgerEntry.member_id == member.id]
    if kind in LEDGER_KINDS:
        where.append(LedgerEntry.kind == kind)
    total = session.scalar(select(func.count()).select_from(LedgerEntry).where(*where)) or 0
    page = clamped(page, total, per_page)
    items = list(
        session.scalars(
            select(LedgerEntry)
            .where(*where)
            .order_by(LedgerEntry.id.desc())
            .offset((page - 1) * per_page)
            .limit(per_page)
        )
    )
    return Page(items, page, per_page, total)


#: The dashboard's statements, built once (see ``_window_spend``).
_RECENT = (
    select(LedgerEntry)
    .where(LedgerEntry.member_id == bindparam("member_id"))
    .order_by(LedgerEntry.id.desc())
    .limit(bindparam("limit", type_=Integer))
)
_ACTIVE_COUPONS = select(func.count()).where(
    Coupon.member_id == bindparam("member_id"),
    Coupon.status == "active",
    Coupon.valid_until > bindparam("now"),
)


def recent_activity(session: Session, member: Member, limit: int = 5) -> list[LedgerEntry]:
    return list(session.scalars(_RECENT, {"member_id": member.id, "limit": limit}))


@dataclass(frozen=True)
class Offer:
    """A reward as this member sees it: ``blocked`` names why it cannot be redeemed now."""

    reward: Reward
    points_short: int
    blocked: str | None
    min_tier: Tier | None


def catalog(session: Session, member: Member, *, settings: Settings) -> list[Offer]:
    rewards = list(session.scalars(select(Reward).where(Reward.active.is_(True)).order_by(Reward.cost_points)))
    taken = dict(
        session.execute(
            select(Coupon.reward_id, func.count()).where(Coupon.member_id == member.id).group_by(Coupon.reward_id)
        ).all()
    )
    rank = settings.tier(member.tier_code).rank
    offers = []
    for reward in rewards:
        min_tier = settings.tier(reward.min_tier) if reward.min_tier else None
        blocked = None
        if min_tier is not None and rank < min_tier.rank:
            blocked = "tier"
        elif reward.stock is not None and reward.stock <= 0:
            blocked = "out_of_stock"
        elif reward.per_member_limit is not None and taken.get(reward.id, 0) >= reward.per_member_limit:
            blocked = "limit"
        short = max(reward.cost_points - max(member.points_balance, 0), 0)
        offers.append(Offer(reward, short, blocked, min_tier))
    return offers


def own_coupon(session: Session, member: Member, coupon_id: int) -> Coupon | None:
    """The member's coupon with this id; someone else's is not found, exactly like a wrong id."""
    found = find(session, Coupon, coupon_id)
    return found if found is not None and found.member_id == member.id else None


def active_coupon_count(session: Session, member: Member, *, now: datetime) -> int:
    return session.scalar(_ACTIVE_COUPONS, {"member_id": member.id, "now": now}) or 0


def coupon_state(coupon: Coupon, now: datetime) -> str:
    """active, used or expired as the member sees it (an unused coupon past its date is expired)."""
    if coupon.status == "active" and coupon.valid_until <= now:
        return "expired"
    return coupon.status


@dataclass(frozen=True)
class Referral:
    joined_on: date
    rewarded: bool


def referrals(session: Session, member: Member) -> list[Referral]:
    """Who joined with the member's code, without anything personal about them."""
    rows = session.execute(
        select(Member.id, Member.enrolled_at)
        .where(Member.referred_by_id == member.id)
        .order_by(Member.enrolled_at.desc())
    ).all()
    paid = set(
        session.scalars(
            select(LedgerEntry.cause).where(LedgerEntry.member_id == member.id, LedgerEntry.kind == "referral")
        )
    )
    return [Referral(enrolled.date(), f"referrer:{mid}" in paid) for mid, enrolled in rows]


def _row(obj: Any, *skip: str) -> dict[str, Any]:
    return {c.key: _plain(getattr(obj, c.key)) for c in obj.__table__.columns if c.key not in skip}


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def export(session: Session, member: Member) -> dict[str, Any]:
    """Everything the program keeps about the member, derived scores included (GDPR art. 15/20)."""

    def rows(model: Any, *skip: str) -> list[dict[str, Any]]:
        column = model.member_id
        return [_row(r, *skip) for r in session.scalars(select(model).where(column == member.id).order_by(model.id))]

    orders = rows(Order, "member_id", "fingerprint")
    return {
        "member": _row(member, "id", "referred_by_id"),
        "ledger": rows(LedgerEntry, "member_id", "actor"),
        "point_lots": rows(PointLot, "member_id"),
        "coupons": rows(Coupon, "member_id"),
        "orders": orders,
        "tier_history": rows(TierChange, "member_id"),
        "scores": rows(MemberScore, "member_id"),
        "segments": rows(MemberSegment, "member_id"),
        "churn_alerts": rows(ChurnAlert, "member_id", "coupon_id"),
        "referrals": [
            {"joined_on": r.joined_on.isoformat(), "rewarded": r.rewarded} for r in referrals(session, member)
        ],
    }
