"""What an admin looks up about members: a search, and each member's ledger, coupons, scores,
segments and alerts, as statements the pages slice and the CSV exports read whole.

Search matches what an admin is likely to have at hand: the shop's user id or the referral
code exactly, the start of an email address, or part of a name. Erased members are found by
their anonymous id (``erased:<n>``) only: nothing personal is left to match.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, func, or_, select

from .models import ChurnAlert, Coupon, LedgerEntry, Member, MemberScore, MemberSegment

#: Scores and segments shown per member: the last few scans are enough to see a trend.
RECENT_SCANS = 12


def search(query: str) -> Select[Any]:
    columns = (
        Member.id.label("id"),
        Member.user_id.label("user_id"),
        Member.email.label("email"),
        Member.name.label("name"),
        Member.tier_code.label("tier"),
        Member.points_balance.label("points"),
        Member.points_pending.label("pending"),
        Member.enrolled_at.label("enrolled_at"),
        Member.erased_at.label("erased_at"),
    )
    stmt = select(*columns).order_by(Member.id.desc())
    text = query.strip()
    if not text:
        return stmt
    lowered = text.lower()
    return stmt.where(
        or_(
            Member.user_id == text,
            Member.referral_code == text.upper(),
            func.lower(Member.email).startswith(lowered, autoescape=True),
            func.lower(Member.name).contains(lowered, autoescape=True),
        )
    )


def ledger(member_id: int) -> Select[Any]:
    return (
        select(
            LedgerEntry.created_at.label("created_at"),
            LedgerEntry.kind.label("kind"),
            LedgerEntry.points.label("points"),
            LedgerEntry.pending.label("pending"),
            LedgerEntry.balance_after.label("balance_after"),
            LedgerEntry.order_id.label("order_id"),
            LedgerEntry.reason.label("reason"),
            LedgerEntry.actor.label("actor"),
        )
        .where(LedgerEntry.member_id == member_id)
        .order_by(LedgerEntry.id.desc())
    )


def coupons(member_id: int) -> Select[Any]:
    return (
        select(
            Coupon.code.label("code"),
            Coupon.kind.label("kind"),
            Coupon.points_spent.label("points_spent"),
            Coupon.status.label("status"),
            Coupon.issued_at.label("issued_at"),
            Coupon.valid_until.label("valid_until"),
            Coupon.used_at.label("used_at"),
            Coupon.order_id.label("order_id"),
        )
        .where(Coupon.member_id == member_id)
        .order_by(Coupon.id.desc())
    )


def scores(member_id: int) -> Select[Any]:
    return (
        select(
            MemberScore.scored_on.label("scored_on"),
            MemberScore.churn_risk.label("churn_risk"),
            MemberScore.risk_source.label("risk_source"),
            MemberScore.p_alive.label("p_alive"),
            MemberScore.expected_orders.label("expected_orders"),
            MemberScore.clv.label("clv"),
            MemberScore.recency_days.label("recency_days"),
            MemberScore.orders.label("orders"),
            MemberScore.spend.label("spend"),
        )
        .where(MemberScore.member_id == member_id)
        .order_by(MemberScore.scored_on.desc())
        .limit(RECENT_SCANS)
    )


def segments(member_id: int) -> Select[Any]:
    return (
        select(
            MemberSegment.computed_on.label("computed_on"),
            MemberSegment.kind.label("kind"),
            MemberSegment.segment.label("segment"),
            MemberSegment.scores.label("scores"),
        )
        .where(MemberSegment.member_id == member_id)
        .order_by(MemberSegment.computed_on.desc(), MemberSegment.kind)
        .limit(2 * RECENT_SCANS)
    )


def alerts(member_id: int) -> Select[Any]:
    return (
        select(
            ChurnAlert.raised_at.label("raised_at"),
            ChurnAlert.risk.label("risk"),
            ChurnAlert.value.label("value"),
            ChurnAlert.status.label("status"),
            ChurnAlert.outcome.label("outcome"),
            ChurnAlert.closed_at.label("closed_at"),
        )
        .where(ChurnAlert.member_id == member_id)
        .order_by(ChurnAlert.raised_at.desc())
    )
