"""Orders and refunds in: idempotent on the shop's ids, points earned and clawed back."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from . import ledger
from .config import Settings
from .database import lock_member, upsert_insert
from .errors import BadInput, ConflictingDuplicate
from .members import credit_referral
from .models import Member, Order, OrderLine, ProcessedEvent
from .money import floor_points, to_moment, to_money, to_quantity, to_required_text, to_text
from .rewards import restore_coupons

MAX_LINES = 1000


@dataclass(frozen=True)
class OrderReceipt:
    order_id: str
    points_awarded: int
    balance: int | None
    pending: int | None
    repeat: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RefundReceipt:
    refund_id: str
    order_id: str
    points_clawed_back: int
    balance: int | None
    repeat: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Line:
    sku: str
    qty: int
    unit_price: Decimal
    category: str | None


def parse_lines(lines: Iterable[Any] | None) -> list[Line]:
    if lines is None:
        return []
    if isinstance(lines, str | bytes | Mapping) or not isinstance(lines, Iterable):
        raise BadInput("lines must be a list of order lines.", field="lines")
    parsed = []
    for i, raw in enumerate(lines):
        if i >= MAX_LINES:
            raise BadInput(f"An order may have at most {MAX_LINES} lines.", field="lines")
        if not isinstance(raw, Mapping):
            raise BadInput(f"lines[{i}] must be an object with sku, qty and unit_price.", field=f"lines[{i}]")
        parsed.append(
            Line(
                sku=to_required_text(raw.get("sku"), f"lines[{i}].sku", max_length=100),
                qty=to_quantity(raw.get("qty", 1), f"lines[{i}].qty"),
                unit_price=to_money(raw.get("unit_price"), f"lines[{i}].unit_price"),
                category=to_text(raw.get("category"), f"lines[{i}].category", max_length=100, required=False),
            )
        )
    return parsed


def fingerprint(*parts: Any) -> str:
    """A digest of an event's content, to tell a repeat delivery from a conflicting one."""
    return hashlib.sha256(json.dumps(parts, default=str, sort_keys=True).encode()).hexdigest()


_IGNORING_DUPLICATES: dict[tuple[str, type, str], Any] = {}


def insert_ignoring_duplicates(session: Session, model: type, values: Mapping[str, Any], key: str) -> int | None:
    """INSERT … ON CONFLICT DO NOTHING; the new primary key, or None when ``key`` was taken.

    Concurrent deliveries queue on the unique index, so exactly one of them inserts. The
    statement is built once per dialect, table and key, and the values go as parameters: every
    call is then a hit in SQLAlchemy's compiled cache (with the values inlined, building and
    compiling the statement took a third of ``record_order`` on SQLite).
    """
    dialect = session.get_bind().dialect.name
    stmt = _IGNORING_DUPLICATES.get((dialect, model, key))
    if stmt is None:
        base = upsert_insert(session)(model).on_conflict_do_nothing(index_elements=[key])
        stmt = _IGNORING_DUPLICATES[(dialect, model, key)] = base.returning(model.id)
    return session.scalar(stmt, dict(values))


def earn_base(total: Decimal, shipping: Decimal, tax: Decimal, settings: Settings) -> Decimal:
    base = total
    if not settings.earn_on_shipping:
        base -= shipping
    if not settings.earn_on_tax:
        base -= tax
    return max(base, Decimal(0))


def points_for(
    total: Decimal, shipping: Decimal, tax: Decimal, *, tier_code: str, placed_at: datetime, settings: Settings
) -> int:
    """The earning rule: the paid base times points per unit, tier and campaigns, rounded down."""
    factor = settings.points_per_unit * settings.tier(tier_code).multiplier * settings.campaign_multiplier(placed_at)
    return floor_points(earn_base(total, shipping, tax, settings) * factor)


def record_order(
    session: Session,
    order_id: Any,
    user_id: Any,
    total: Any,
    *,
    lines: Iterable[Any] | None,
    placed_at: Any,
    shipping: Any,
    tax: Any,
    source: str,
    now: datetime,
    settings: Settings,
) -> OrderReceipt:
    oid = to_text(order_id, "order_id")
    uid = to_text(user_id, "user_id", required=False)
    paid = to_money(total, "total")
    ship = to_money(shipping, "shipping")
    taxes = to_money(tax, "tax")
    if ship + taxes > paid:
        raise BadInput("shipping and tax cannot exceed the total paid.", field="total")
    parsed = parse_lines(lines)
    when = now if placed_at is None else to_moment(placed_at, "placed_at")
    if when > now + timedelta(days=1):
        raise BadInput("placed_at is in the future.", field="placed_at")
    digest = fingerprint(uid, str(paid), str(ship), str(taxes), [asdict(x) for x in parsed])
    # The member (and referrer) are locked before the order goes in, so the order is inserted
    # complete: no read-back and UPDATE of the row just written.
    member = _lock_member_and_referrer(session, uid) if uid else None
    if member is not None and member.erased_at is not None:
        member = None
    points = 0
    if member is not None:
        points = points_for(paid, ship, taxes, tier_code=member.tier_code, placed_at=when, settings=settings)
    new_id = insert_ignoring_duplicates(
        session,
        Order,
        {
            "order_id": oid,
            "user_id": uid,
            "member_id": None if member is None else member.id,
            "placed_at": when,
            "total": paid,
            "shipping": ship,
            "tax": taxes,
            "refunded_total": Decimal(0),
            "points_earned": points,
            "points_clawed_back": 0,
            "fingerprint": digest,
            "source": source,
            "created_at": now,
        },
        "order_id",
    )
    if new_id is None:
        existing = session.scalars(select(Order).where(Order.order_id == oid)).one()
        if existing.fingerprint != digest:
            raise ConflictingDuplicate(f"Order {oid} was already recorded with different content; it was not changed.")
        return OrderReceipt(oid, existing.points_earned, _balance(member), _pending(member), True)
    if parsed:
        session.execute(
            insert(OrderLine),
            [
                {
                    "order_pk": new_id,
                    "line_no": i,
                    "sku": x.sku,
                    "qty": x.qty,
                    "unit_price": x.unit_price,
                    "category": x.category,
                }
                for i, x in enumerate(parsed)
            ],
        )
    if member is None:
        return OrderReceipt(oid, 0, None, None, False)
    member.version = Member.version + 1  # the spend towards the next tier moved, points or not
    if points > 0:
        ledger.earn(
            session, member, points, cause=f"order:{oid}", now=when, settings=settings, order_id=oid, reason="Order"
        )
    if member.referred_by_id is not None:
        first = session.scalar(select(func.count()).where(Order.member_id == member.id)) == 1
        if first:
            credit_referral(session, member, now=now, settings=settings)
    return OrderReceipt(oid, points, member.points_balance, member.points_pending, False)


def _lock_member_and_referrer(session: Session, user_id: str) -> Member | None:
    """The referrer first, then the member: the jobs lock members in id order and a referrer
    always has the lower id, so a first order's referral credit never waits in a circle
    with a job (PostgreSQL would fail one of them)."""
    referrer_id = session.scalar(select(Member.referred_by_id).where(Member.user_id == user_id))
    if referrer_id is not None:
        session.execute(select(Member.id).where(Member.id == referrer_id).with_for_update())
    return lock_member(session, user_id)


def _balance(member: Any) -> int | None:
    return None if member is None else member.points_balance


def _pending(member: Any) -> int | None:
    return None if member is None else member.points_pending


def record_refund(
    session: Session,
    refund_id: Any,
    order_id: Any,
    amount: Any,
    *,
    now: datetime,
    settings: Settings,
) -> RefundReceipt:
    """Claw back points in proportion to the money refunded, once per ``refund_id``.

    A refund that brings the order to fully refunded gives back any loyalty coupon it used:
    the member paid for that coupon with points, and must not lose them a second time.
    """
    rid = to_text(refund_id, "refund_id")
    oid = to_text(order_id, "order_id")
    money = to_money(amount, "amount")
    digest = fingerprint(oid, str(money))
    order = session.scalars(
        select(Order).where(Order.order_id == oid).with_for_update().execution_options(populate_existing=True)
    ).one_or_none()
    if order is None:
        raise BadInput(f"There is no order {oid} to refund.", field="order_id")
    seen = session.scalars(
        select(ProcessedEvent).where(ProcessedEvent.scope == "refund", ProcessedEvent.key == rid)
    ).one_or_none()
    if seen is not None:
        if seen.fingerprint != digest:
            raise ConflictingDuplicate(f"Refund {rid} was already recorded with different content.")
        stored = json.loads(seen.result)
        return RefundReceipt(rid, oid, stored["points_clawed_back"], stored["balance"], True)
    if money == 0 and order.total > 0:
        raise BadInput("amount must be more than zero.", field="amount")
    refunded = order.refunded_total + money
    if refunded > order.total:
        left = order.total - order.refunded_total
        raise BadInput(f"The refund of {money} is more than the {left} left to refund on order {oid}.", field="amount")
    order.refunded_total = refunded
    clawed = 0
    member = lock_member(session, order.user_id) if order.member_id and order.user_id else None
    if member is not None:
        member.version = Member.version + 1
    if member is not None and order.total > 0:
        target = floor_points(Decimal(order.points_earned) * refunded / order.total)
        clawed = target - order.points_clawed_back
        if clawed > 0:
            ledger.claw_back(session, member, oid, clawed, cause=f"refund:{rid}", now=now)
            order.points_clawed_back = target
    if refunded == order.total:
        restore_coupons(session, oid, now=now, settings=settings)
    balance = _balance(member)
    session.add(
        ProcessedEvent(
            scope="refund",
            key=rid,
            fingerprint=digest,
            created_at=now,
            result=json.dumps({"points_clawed_back": clawed, "balance": balance}),
        )
    )
    return RefundReceipt(rid, oid, clawed, balance, False)
