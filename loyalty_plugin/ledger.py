"""The points ledger and its lots: the only writer of balances, entries and lots.

Every function expects the member row locked by :func:`~loyalty_plugin.database.lock_member`
in the current transaction. Invariants kept here, and checked by :func:`verify`:

* ``member.points_balance == sum(entry.points)`` and ``member.points_pending == sum(entry.pending)``;
* the available lots' ``remaining`` add up to the balance when it is positive and to zero when
  the member owes points; the pending lots' add up to the pending balance;
* spending and claw-back take the oldest lots first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from . import signals
from .config import Settings
from .errors import InsufficientPoints
from .models import LedgerEntry, Member, PointLot


@dataclass(frozen=True)
class Balance:
    """What a member can see of their points right now."""

    available: int
    pending: int
    owed: int
    expiring_soon: int
    next_expiry: datetime | None


def post(
    session: Session,
    member: Member,
    *,
    kind: str,
    cause: str,
    now: datetime,
    points: int = 0,
    pending: int = 0,
    **details: object,
) -> LedgerEntry:
    """Append one entry and move the cached balances with it."""
    member.points_balance += points
    member.points_pending += pending
    member.version = Member.version + 1
    entry = LedgerEntry(
        member_id=member.id,
        kind=kind,
        cause=cause,
        points=points,
        pending=pending,
        balance_after=member.points_balance,
        created_at=now,
        **details,
    )
    session.add(entry)
    signals.defer(
        session,
        signals.points_changed,
        user_id=member.user_id,
        delta=points,
        pending_delta=pending,
        balance=member.points_balance,
        kind=kind,
        cause=cause,
    )
    return entry


def _repay_debt(member: Member, lot: PointLot, arrived: int) -> None:
    """Points arriving while the member owes some pay the debt before they can be spent."""
    owed_before = -(member.points_balance - arrived)
    if owed_before > 0:
        lot.remaining = max(0, arrived - owed_before)
    if lot.remaining == 0:
        lot.status = "spent"


def earn(
    session: Session,
    member: Member,
    points: int,
    *,
    cause: str,
    now: datetime,
    settings: Settings,
    order_id: str | None = None,
    kind: str = "earn",
    reason: str | None = None,
    actor: str | None = None,
    pending_days: int | None = None,
) -> PointLot:
    """Add a lot of points, pending for the return window when ``pending_days`` > 0."""
    days = settings.pending_days if pending_days is None else pending_days
    available_at = now + timedelta(days=days)
    lot = PointLot(
        member_id=member.id,
        order_id=order_id,
        points=points,
        remaining=points,
        status="pending" if days > 0 else "available",
        available_at=available_at,
        expires_at=available_at + timedelta(days=settings.expire_days),
        created_at=now,
    )
    session.add(lot)
    session.flush()
    held = days > 0
    post(
        session,
        member,
        kind=kind,
        cause=cause,
        now=now,
        points=0 if held else points,
        pending=points if held else 0,
        order_id=order_id,
        lot_id=lot.id,
        reason=reason,
        actor=actor,
    )
    if not held:
        _repay_debt(member, lot, points)
    return lot


def release(session: Session, member: Member, lot: PointLot, *, now: datetime) -> None:
    """The return window is over: pending points become available."""
    points = lot.remaining
    lot.status = "available"
    post(
        session,
        member,
        kind="release",
        cause=f"release:{lot.id}",
        now=now,
        points=points,
        pending=-points,
        order_id=lot.order_id,
        lot_id=lot.id,
    )
    _repay_debt(member, lot, points)


def expire(session: Session, member: Member, lot: PointLot, *, now: datetime) -> None:
    points = lot.remaining
    lot.remaining = 0
    lot.status = "expired"
    post(session, member, kind="expire", cause=f"expire:{lot.id}", now=now, points=-points, lot_id=lot.id)


def _available_lots(session: Session, member: Member) -> list[PointLot]:
    stmt = (
        select(PointLot)
        .where(PointLot.member_id == member.id, PointLot.status == "available", PointLot.remaining > 0)
        .order_by(PointLot.expires_at, PointLot.id)
        .execution_options(populate_existing=True)
    )
    return list(session.scalars(stmt))


def _consume(lots: list[PointLot], points: int) -> int:
    """Take up to ``points`` from ``lots`` oldest first; returns what could not be taken."""
    for lot in lots:
        if points == 0:
            break
        take = min(lot.remaining, points)
        lot.remaining -= take
        points -= take
        if lot.remaining == 0:
            lot.status = "spent"
    return points


def spend(
    session: Session,
    member: Member,
    points: int,
    *,
    kind: str,
    cause: str,
    now: datetime,
    **details: object,
) -> LedgerEntry:
    """Take points from the available balance; refused if it is not enough."""
    if member.points_balance < points:
        raise InsufficientPoints(points, member.points_balance)
    _consume(_available_lots(session, member), points)
    return post(session, member, kind=kind, cause=cause, now=now, points=-points, **details)


def claw_back(
    session: Session, member: Member, order_id: str, points: int, *, cause: str, now: datetime
) -> LedgerEntry:
    """Take back points earned on a refunded order: its own lot first, then the oldest lots.

    What cannot be covered leaves the balance below zero: the member owes it, and points
    earned later repay it first.
    """
    order_lots = list(
        session.scalars(
            select(PointLot)
            .where(
                PointLot.member_id == member.id,
                PointLot.order_id == order_id,
                PointLot.status.in_(("pending", "available")),
            )
            .order_by(PointLot.id)
            .execution_options(populate_existing=True)
        )
    )
    from_pending = 0
    left = points
    for lot in order_lots:
        if lot.status != "pending" or left == 0:
            continue
        take = min(lot.remaining, left)
        lot.remaining -= take
        left -= take
        from_pending += take
        if lot.remaining == 0:
            lot.status = "cancelled"
    from_available = left
    if from_available:
        own = [lot for lot in order_lots if lot.status == "available" and lot.remaining > 0]
        others = [lot for lot in _available_lots(session, member) if lot not in own]
        _consume(own + others, from_available)
    return post(
        session,
        member,
        kind="clawback",
        cause=cause,
        now=now,
        points=-from_available,
        pending=-from_pending,
        order_id=order_id,
    )


def balance_of(session: Session, member: Member, *, now: datetime, settings: Settings) -> Balance:
    horizon = now + timedelta(days=settings.expiry_warning_days)
    expiring, first = session.execute(
        select(
            func.sum(PointLot.remaining).filter(PointLot.expires_at <= horizon), func.min(PointLot.expires_at)
        ).where(PointLot.member_id == member.id, PointLot.status == "available", PointLot.remaining > 0)
    ).one()
    return Balance(
        available=max(member.points_balance, 0),
        pending=member.points_pending,
        owed=max(-member.points_balance, 0),
        expiring_soon=int(expiring or 0),
        next_expiry=first,
    )


@dataclass(frozen=True)
class Discrepancy:
    user_id: str
    what: str
    recorded: int
    rebuilt: int


def verify(session: Session) -> list[Discrepancy]:
    """Rebuild every balance from the ledger and the lots; report what disagrees."""
    sums = (
        select(
            LedgerEntry.member_id,
            func.sum(LedgerEntry.points).label("points"),
            func.sum(LedgerEntry.pending).label("pending"),
        )
        .group_by(LedgerEntry.member_id)
        .subquery()
    )
    lots = (
        select(
            PointLot.member_id,
            func.sum(PointLot.remaining).filter(PointLot.status == "available").label("available"),
            func.sum(PointLot.remaining).filter(PointLot.status == "pending").label("pending"),
        )
        .group_by(PointLot.member_id)
        .subquery()
    )
    rows = session.execute(
        select(
            Member.user_id,
            Member.points_balance,
            Member.points_pending,
            func.coalesce(sums.c.points, 0),
            func.coalesce(sums.c.pending, 0),
            func.coalesce(lots.c.available, 0),
            func.coalesce(lots.c.pending, 0),
        )
        .outerjoin(sums, sums.c.member_id == Member.id)
        .outerjoin(lots, lots.c.member_id == Member.id)
    )
    found: list[Discrepancy] = []
    for user_id, balance, pending, ledger_points, ledger_pending, lot_avail, lot_pending in rows:
        checks = (
            ("balance", balance, ledger_points),
            ("pending", pending, ledger_pending),
            ("available lots", max(int(ledger_points), 0), lot_avail),
            ("pending lots", int(ledger_pending), lot_pending),
        )
        for what, recorded, rebuilt in checks:
            if int(recorded) != int(rebuilt):
                found.append(Discrepancy(user_id, what, int(recorded), int(rebuilt)))
    return found
