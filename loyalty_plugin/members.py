"""Joining, activity points, manual adjustments, birthdays and leaving the program."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from . import audit, ledger, signals
from .config import Settings
from .database import lock_member
from .errors import N_, AlreadyEnrolled, BadInput, NotEnrolled
from .models import Coupon, LedgerEntry, Member, Order
from .money import to_points, to_required_text, to_text

REFERRAL_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


@dataclass(frozen=True)
class AwardReceipt:
    points: int
    balance: int
    repeat: bool


def new_referral_code() -> str:
    return "".join(secrets.choice(REFERRAL_ALPHABET) for _ in range(10))


def _email(value: Any) -> str | None:
    email = to_text(value, "email", max_length=320, required=False)
    if email is not None and ("@" not in email or email.startswith("@") or email.endswith("@")):
        raise BadInput(N_("email does not look like an email address."), field="email")
    return email


def _birthday(value: Any, today: date) -> date | None:
    if value in (None, ""):
        return None
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value)
        except ValueError:
            raise BadInput(N_("birthday must be a date like 1990-05-17."), field="birthday") from None
    if isinstance(value, datetime):
        value = value.date()
    if not isinstance(value, date) or not date(1900, 1, 1) <= value <= today:
        raise BadInput(N_("birthday must be a real date in the past."), field="birthday")
    return value


def get_member(session: Session, user_id: str) -> Member | None:
    return session.scalars(
        select(Member).where(Member.user_id == str(user_id), Member.erased_at.is_(None))
    ).one_or_none()


def require_member(session: Session, user_id: str) -> Member:
    member = lock_member(session, str(user_id))
    if member is None or member.erased_at is not None:
        raise NotEnrolled()
    return member


def enroll(
    session: Session,
    user_id: Any,
    *,
    now: datetime,
    settings: Settings,
    email: Any = None,
    name: Any = None,
    birthday: Any = None,
    marketing_opt_in: bool = False,
    referral_code: Any = None,
) -> Member:
    uid = to_required_text(user_id, "user_id")
    if lock_member(session, uid) is not None:
        raise AlreadyEnrolled()
    email_value = _email(email)
    referrer = None
    code = to_text(referral_code, "referral_code", max_length=32, required=False)
    if code is not None:
        referrer = session.scalars(
            select(Member).where(Member.referral_code == code.upper(), Member.erased_at.is_(None))
        ).one_or_none()
        if referrer is None:
            raise BadInput(N_("This referral code is not valid."), field="referral_code")
        if email_value and referrer.email and referrer.email.lower() == email_value.lower():
            raise BadInput(N_("You cannot use your own referral code."), field="referral_code")
    member = Member(
        user_id=uid,
        email=email_value,
        name=to_text(name, "name", max_length=200, required=False),
        birthday=_birthday(birthday, now.date()),
        marketing_opt_in=bool(marketing_opt_in),
        referral_code=new_referral_code(),
        referred_by_id=referrer.id if referrer else None,
        tier_code=settings.tiers[0].code,
        tier_reached_at=now,
        points_balance=0,
        points_pending=0,
        enrolled_at=now,
    )
    session.add(member)
    session.flush()
    if settings.signup_points:
        ledger.earn(
            session,
            member,
            settings.signup_points,
            cause=f"signup:{member.id}",
            now=now,
            settings=settings,
            kind="signup",
            reason="Welcome bonus",
            pending_days=0,
        )
    signals.defer(
        session,
        signals.member_enrolled,
        user_id=uid,
        member_id=member.id,
        points=settings.signup_points,
        referred_by=referrer.user_id if referrer else None,
    )
    return member


def award(
    session: Session,
    user_id: Any,
    points: int | None,
    reason: Any,
    *,
    key: Any,
    now: datetime,
    settings: Settings,
) -> AwardReceipt:
    """Activity points, counted once per member and ``key`` however often the host calls."""
    why = to_text(reason, "reason", max_length=200)
    award_key = to_text(key, "key", max_length=200)
    if points is None:
        configured = {"review": settings.review_points, "birthday": settings.birthday_points}
        if why not in configured:
            raise BadInput("points are required for this reason.", field="points")
        points = configured[why]
    points = to_points(points)
    if points <= 0:
        raise BadInput("Activity points must be more than zero.", field="points")
    member = require_member(session, str(user_id))
    cause = f"award:{member.id}:{award_key}"
    existing = session.scalars(select(LedgerEntry).where(LedgerEntry.cause == cause)).one_or_none()
    if existing is not None:
        return AwardReceipt(points=existing.points, balance=member.points_balance, repeat=True)
    ledger.earn(
        session, member, points, cause=cause, now=now, settings=settings, kind="award", reason=why, pending_days=0
    )
    return AwardReceipt(points=points, balance=member.points_balance, repeat=False)


def adjust(
    session: Session,
    user_id: Any,
    points: Any,
    *,
    reason: Any,
    actor: Any,
    now: datetime,
    settings: Settings,
) -> AwardReceipt:
    """A manual correction by an admin: audited, shown in the member's history with its reason."""
    why = to_text(reason, "reason", max_length=500)
    who = to_text(actor, "actor")
    delta = to_points(points)
    if delta == 0:
        raise BadInput("An adjustment must change the balance.", field="points")
    member = require_member(session, str(user_id))
    cause = f"adjust:{secrets.token_hex(12)}"
    if delta > 0:
        ledger.earn(
            session,
            member,
            delta,
            cause=cause,
            now=now,
            settings=settings,
            kind="adjust",
            reason=why,
            actor=who,
            pending_days=0,
        )
    else:
        ledger.spend(session, member, -delta, kind="adjust", cause=cause, now=now, reason=why, actor=who)
    audit.record(
        session,
        actor=who,
        action="adjust_points",
        target=member.user_id,
        now=now,
        details={"points": delta, "reason": why},
    )
    return AwardReceipt(points=delta, balance=member.points_balance, repeat=False)


def award_birthdays(session: Session, *, today: date, now: datetime, settings: Settings) -> int:
    """Birthday points for everyone whose birthday is today (29 February counts on the 28th)."""
    if not settings.birthday_points:
        return 0
    candidates = session.execute(
        select(Member.user_id, Member.id, Member.birthday).where(
            Member.birthday.is_not(None), Member.erased_at.is_(None)
        )
    ).all()
    leap = today.year % 4 == 0 and (today.year % 100 != 0 or today.year % 400 == 0)
    due = []
    for user_id, member_id, born in candidates:
        month, day = born.month, born.day
        if (month, day) == (2, 29) and not leap:
            day = 28
        if (month, day) == (today.month, today.day):
            due.append((user_id, member_id))
    done = 0
    for user_id, member_id in due:
        cause = f"birthday:{member_id}:{today.year}"
        if session.scalar(select(LedgerEntry.id).where(LedgerEntry.cause == cause)) is not None:
            continue
        member = require_member(session, user_id)
        ledger.earn(
            session,
            member,
            settings.birthday_points,
            cause=cause,
            now=now,
            settings=settings,
            kind="birthday",
            reason="Happy birthday",
            pending_days=0,
        )
        done += 1
    return done


def credit_referral(session: Session, member: Member, *, now: datetime, settings: Settings) -> None:
    """After the referred member's first paid order: points to both, once."""
    if member.referred_by_id is None or not settings.referral_points:
        return
    cause = f"referral:{member.id}"
    if session.scalar(select(LedgerEntry.id).where(LedgerEntry.cause == cause)) is not None:
        return
    ledger.earn(
        session,
        member,
        settings.referral_points,
        cause=cause,
        now=now,
        settings=settings,
        kind="referral",
        reason="Referral bonus",
        pending_days=0,
    )
    referrer = session.get(Member, member.referred_by_id)
    if referrer is not None and referrer.erased_at is None:
        referrer = require_member(session, referrer.user_id)
        ledger.earn(
            session,
            referrer,
            settings.referral_points,
            cause=f"referrer:{member.id}",
            now=now,
            settings=settings,
            kind="referral",
            reason="A friend you referred ordered",
            pending_days=0,
        )


def erase(session: Session, user_id: Any, *, actor: str, now: datetime) -> None:
    """Remove personal data; the ledger stays, keyed by an anonymous member row, so the
    shop's accounts still add up."""
    member = require_member(session, str(user_id))
    original = member.user_id
    member.user_id = f"erased:{member.id}"
    member.email = member.name = member.birthday = None
    member.marketing_opt_in = False
    member.referral_code = f"ERASED{member.id}"
    member.erased_at = now
    session.execute(update(Order).where(Order.user_id == original).values(user_id=None))
    session.execute(
        update(Coupon).where(Coupon.member_id == member.id, Coupon.status == "active").values(status="void")
    )
    audit.record(session, actor=actor, action="erase_member", target=member.user_id, now=now)
