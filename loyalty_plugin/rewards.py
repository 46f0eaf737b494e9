"""The reward catalog, redemption into coupons and the coupon calls a checkout makes."""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from . import audit, ledger, signals
from .config import Settings
from .database import find, lock_member
from .errors import N_, BadInput, InsufficientPoints, InvalidCoupon, NotEnrolled, RewardUnavailable
from .models import Coupon, Member, Reward
from .money import CENT, to_money, to_points, to_text

KINDS = ("fixed_amount", "percent", "free_shipping", "free_item")
EDITABLE = (
    "name",
    "kind",
    "cost_points",
    "amount",
    "percent",
    "max_discount",
    "sku",
    "min_order_total",
    "min_tier",
    "stock",
    "per_member_limit",
)


def new_coupon_code() -> str:
    """128 bits from ``secrets`` (OWASP ASVS 11.5.1), base32 without padding: 26 characters."""
    return base64.b32encode(secrets.token_bytes(16)).decode().rstrip("=")


def normalise_code(code: Any) -> str:
    if not isinstance(code, str):
        return ""
    return "".join(ch for ch in code.upper() if ch.isalnum())[:40]


def display_code(code: str) -> str:
    """Grouped in fours so a person can read it out."""
    return "-".join(code[i : i + 4] for i in range(0, len(code), 4))


@dataclass(frozen=True)
class Discount:
    """What a coupon takes off an order of a given total."""

    code: str
    kind: str
    amount: Decimal
    free_shipping: bool
    free_item_sku: str | None


def _optional_int(value: Any, field: str, minimum: int) -> int | None:
    if value is None or value == "":
        return None
    number = to_points(int(value) if isinstance(value, str) and value.isdigit() else value, field)
    if number < minimum:
        raise BadInput(f"{field} must be at least {minimum}.", field=field)
    return number


def reward_values(data: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Check a reward definition; the same rules for create and edit."""
    kind = data.get("kind")
    if kind not in KINDS:
        raise BadInput(f"kind must be one of {', '.join(KINDS)}.", field="kind")
    values: dict[str, Any] = {
        "name": to_text(data.get("name"), "name", max_length=200),
        "kind": kind,
        "cost_points": _optional_int(data.get("cost_points"), "cost_points", 1),
        "amount": None,
        "percent": None,
        "max_discount": None,
        "sku": None,
        "min_order_total": None,
        "min_tier": None,
        "stock": _optional_int(data.get("stock"), "stock", 0),
        "per_member_limit": _optional_int(data.get("per_member_limit"), "per_member_limit", 1),
    }
    if values["cost_points"] is None:
        raise BadInput("cost_points is required.", field="cost_points")
    if kind == "fixed_amount":
        values["amount"] = to_money(data.get("amount"), "amount", allow_zero=False)
    if kind == "percent":
        try:
            percent = Decimal(str(data.get("percent")))
        except ArithmeticError:
            raise BadInput("percent must be a number.", field="percent") from None
        if not percent.is_finite() or not 0 < percent <= 100 or percent != percent.quantize(CENT):
            raise BadInput("percent must be more than 0 and at most 100.", field="percent")
        values["percent"] = percent
        if data.get("max_discount") not in (None, ""):
            values["max_discount"] = to_money(data["max_discount"], "max_discount", allow_zero=False)
    if kind == "free_item":
        values["sku"] = to_text(data.get("sku"), "sku", max_length=100)
    if data.get("min_order_total") not in (None, ""):
        values["min_order_total"] = to_money(data["min_order_total"], "min_order_total")
    if data.get("min_tier") not in (None, ""):
        if data["min_tier"] not in {t.code for t in settings.tiers}:
            raise BadInput(f"min_tier {data['min_tier']!r} is not a configured tier.", field="min_tier")
        values["min_tier"] = data["min_tier"]
    return values


def create_reward(session: Session, data: dict[str, Any], *, actor: str, now: datetime, settings: Settings) -> Reward:
    reward = Reward(**reward_values(data, settings), active=True, created_at=now)
    session.add(reward)
    session.flush()
    audit.record(session, actor=actor, action="create_reward", target=f"reward:{reward.id}", now=now, details=data)
    return reward


def update_reward(
    session: Session, reward_id: int, data: dict[str, Any], *, actor: str, now: datetime, settings: Settings
) -> Reward:
    reward = session.get(Reward, reward_id, with_for_update=True)
    if reward is None:
        raise BadInput("There is no such reward.", field="reward_id")
    current = {column: getattr(reward, column) for column in EDITABLE}
    for key, value in reward_values({**current, **data}, settings).items():
        setattr(reward, key, value)
    audit.record(session, actor=actor, action="update_reward", target=f"reward:{reward.id}", now=now, details=data)
    return reward


def retire_reward(session: Session, reward_id: int, *, actor: str, now: datetime) -> Reward:
    reward = session.get(Reward, reward_id, with_for_update=True)
    if reward is None:
        raise BadInput("There is no such reward.", field="reward_id")
    reward.active = False
    reward.retired_at = now
    audit.record(session, actor=actor, action="retire_reward", target=f"reward:{reward.id}", now=now)
    return reward


def redeem(session: Session, user_id: Any, reward_id: Any, *, now: datetime, settings: Settings) -> Coupon:
    """Spend points on a reward: one coupon, or a refusal that changed nothing.

    The member row is locked first and every rule checked under that lock, so fifty
    concurrent requests against a balance for one produce one coupon.
    """
    member = lock_member(session, str(user_id))
    if member is None or member.erased_at is not None:
        raise NotEnrolled()
    try:
        rid = int(reward_id)
    except (TypeError, ValueError):
        raise BadInput("reward_id must be a reward's number.", field="reward_id") from None
    reward = find(session, Reward, rid, with_for_update=True, populate_existing=True)
    if reward is None:
        raise RewardUnavailable(N_("There is no such reward."), reason="reward_not_found")
    if not reward.active:
        raise RewardUnavailable(N_("This reward is no longer available."), reason="reward_retired")
    if reward.min_tier is not None:
        needed = settings.tier(reward.min_tier)
        if settings.tier(member.tier_code).rank < needed.rank:
            raise RewardUnavailable(
                N_("This reward is for %(tier)s members and above."),
                reason="reward_tier_restricted",
                params={"tier": needed.name},
            )
    if reward.stock is not None and reward.stock <= 0:
        raise RewardUnavailable(N_("This reward is out of stock."), reason="reward_out_of_stock")
    if reward.per_member_limit is not None:
        taken = session.scalar(select(func.count()).where(Coupon.member_id == member.id, Coupon.reward_id == reward.id))
        if taken >= reward.per_member_limit:
            raise RewardUnavailable(
                N_("You have already redeemed this reward the most times allowed (%(limit)s)."),
                reason="reward_limit_reached",
                params={"limit": reward.per_member_limit},
            )
    if member.points_balance < reward.cost_points:
        raise InsufficientPoints(reward.cost_points, member.points_balance)
    coupon = _issue(session, member, reward, points=reward.cost_points, now=now, settings=settings)
    ledger.spend(
        session,
        member,
        reward.cost_points,
        kind="redeem",
        cause=f"redeem:{coupon.id}",
        now=now,
        coupon_id=coupon.id,
        reason=reward.name,
    )
    if reward.stock is not None:
        reward.stock -= 1
    signals.defer(
        session,
        signals.coupon_issued,
        user_id=member.user_id,
        coupon_code=coupon.code,
        reward_id=reward.id,
        points_spent=reward.cost_points,
        valid_until=coupon.valid_until,
    )
    return coupon


def _issue(
    session: Session, member: Member, reward: Reward, *, points: int, now: datetime, settings: Settings
) -> Coupon:
    """A coupon with the reward's terms copied, so a later edit of the reward changes no coupon."""
    coupon = Coupon(
        code=new_coupon_code(),
        member_id=member.id,
        reward_id=reward.id,
        kind=reward.kind,
        amount=reward.amount,
        percent=reward.percent,
        max_discount=reward.max_discount,
        sku=reward.sku,
        min_order_total=reward.min_order_total,
        points_spent=points,
        status="active",
        issued_at=now,
        valid_until=now + timedelta(days=settings.coupon_valid_days),
    )
    member.version = Member.version + 1
    session.add(coupon)
    session.flush()
    return coupon


def gift(session: Session, member: Member, reward_id: int, *, now: datetime, settings: Settings) -> Coupon | None:
    """The reward as a free coupon (a win-back offer): no points move, so no ledger entry.
    None when the reward is gone or retired: the offer is a bonus, never a reason to fail."""
    reward = session.get(Reward, reward_id)
    if reward is None or not reward.active:
        return None
    return _issue(session, member, reward, points=0, now=now, settings=settings)


def _owned_coupon(session: Session, code: Any, user_id: Any) -> tuple[Coupon, Member]:
    """The coupon if it belongs to this member; someone else's looks exactly like a wrong code."""
    wanted = normalise_code(code)
    member = session.scalars(
        select(Member).where(Member.user_id == str(user_id), Member.erased_at.is_(None))
    ).one_or_none()
    coupon = session.scalars(select(Coupon).where(Coupon.code == wanted)).one_or_none() if wanted else None
    if member is None or coupon is None or coupon.member_id != member.id:
        raise InvalidCoupon("not_found")
    return coupon, member


def _refuse_unusable(coupon: Coupon, now: datetime) -> None:
    if coupon.status == "used":
        raise InvalidCoupon("used")
    if coupon.status == "void":
        raise InvalidCoupon("void")
    if coupon.valid_until <= now:
        raise InvalidCoupon("expired")


def discount_for(coupon: Coupon, order_total: Decimal) -> Discount:
    amount = Decimal(0)
    if coupon.kind == "fixed_amount" and coupon.amount is not None:
        amount = min(coupon.amount, order_total)
    elif coupon.kind == "percent" and coupon.percent is not None:
        amount = (order_total * coupon.percent / 100).quantize(CENT, rounding=ROUND_DOWN)
        if coupon.max_discount is not None:
            amount = min(amount, coupon.max_discount)
    return Discount(
        code=coupon.code,
        kind=coupon.kind,
        amount=amount,
        free_shipping=coupon.kind == "free_shipping",
        free_item_sku=coupon.sku if coupon.kind == "free_item" else None,
    )


def check_coupon(session: Session, code: Any, user_id: Any, order_total: Any, *, now: datetime) -> Discount:
    """What the coupon would take off; changes nothing."""
    total = to_money(order_total, "order_total")
    coupon, _member = _owned_coupon(session, code, user_id)
    _refuse_unusable(coupon, now)
    if coupon.min_order_total is not None and total < coupon.min_order_total:
        raise InvalidCoupon(
            "min_order",
            N_("This coupon needs an order of at least %(amount)s."),
            params={"amount": coupon.min_order_total},
        )
    return discount_for(coupon, total)


def use_coupon(session: Session, code: Any, user_id: Any, order_id: Any, *, now: datetime) -> Coupon:
    """Mark the coupon used by ``order_id``: one conditional UPDATE, so only one order wins.

    Calling again for the same order is a repeat delivery and succeeds.
    """
    oid = to_text(order_id, "order_id")
    coupon, member = _owned_coupon(session, code, user_id)
    won = session.execute(
        update(Coupon)
        .where(Coupon.id == coupon.id, Coupon.status == "active", Coupon.valid_until > now)
        .values(status="used", used_at=now, order_id=oid)
        .execution_options(synchronize_session=False)
    ).rowcount
    session.refresh(coupon)
    if won == 1:
        session.execute(update(Member).where(Member.id == member.id).values(version=Member.version + 1))
        signals.defer(session, signals.coupon_used, user_id=member.user_id, coupon_code=coupon.code, order_id=oid)
        return coupon
    if coupon.status == "used" and coupon.order_id == oid:
        return coupon
    _refuse_unusable(coupon, now)
    raise InvalidCoupon("used")


def restore_coupons(session: Session, order_id: str, *, now: datetime, settings: Settings) -> int:
    """Give back the coupons a fully refunded order used, valid for at least a fresh period."""
    coupons = list(session.scalars(select(Coupon).where(Coupon.order_id == order_id, Coupon.status == "used")))
    fresh = now + timedelta(days=settings.coupon_valid_days)
    for coupon in coupons:
        coupon.status = "active"
        coupon.used_at = None
        coupon.order_id = None
        coupon.valid_until = max(coupon.valid_until, fresh)
    if coupons:
        owners = {coupon.member_id for coupon in coupons}
        session.execute(update(Member).where(Member.id.in_(owners)).values(version=Member.version + 1))
    return len(coupons)


def member_coupons(session: Session, member: Member) -> list[Coupon]:
    return list(session.scalars(select(Coupon).where(Coupon.member_id == member.id).order_by(Coupon.id.desc())))
