"""The demo shop's checkout: the plan's events played through the domain functions, with
redemptions and coupon uses decided from each member's real balance."""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_DOWN, Decimal

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import members, orders, rewards
from ..config import Settings
from ..database import lock_member
from ..errors import InvalidCoupon, LoyaltyError
from ..models import Member, Reward
from ..money import CENT
from .catalog import CatalogItem
from .customers import Customer
from .planner import Planned

SHIPPING = Decimal("4.95")
FREE_SHIPPING_FROM = Decimal("50.00")


class Shop:
    """Plays the plan: prices baskets as the demo shop's checkout does, and decides, from the
    member's real balance, when to redeem points and use coupons."""

    def __init__(
        self,
        settings: Settings,
        rng: np.random.Generator,
        catalog: dict[str, CatalogItem],
        people: dict[str, Customer],
    ) -> None:
        self.settings, self.rng = settings, rng
        self.catalog, self.people = catalog, people
        self.session: Session
        self.rewards: list[Reward] = []
        self.cheapest = 0
        self.tier_of: dict[str, str] = {}
        self.points_of: dict[str, int] = {}
        self.coupons: dict[str, list[str]] = {}
        self.paid: dict[str, Decimal] = {}
        self.line_values: dict[str, list[Decimal]] = {}
        self.refunded: dict[str, Decimal] = {}

    def begin_week(self, session: Session) -> None:
        """Tiers only move in the nightly job, so one read a week prices every order; the
        balances read here, kept up from receipts, only say when a redemption is worth trying."""
        self.session = session
        self.rewards = list(session.scalars(select(Reward).where(Reward.active.is_(True)).order_by(Reward.id)))
        self.cheapest = min((r.cost_points for r in self.rewards), default=0)
        rows = session.execute(select(Member.user_id, Member.tier_code, Member.points_balance)).all()
        self.tier_of = {uid: tier for uid, tier, _points in rows}
        self.points_of = {uid: points for uid, _tier, points in rows}

    def play(self, event: Planned) -> None:
        s, settings, at = self.session, self.settings, event.at
        if event.kind == "birthdays":
            members.award_birthdays(s, today=at.date(), now=at, settings=settings)
        elif event.kind == "join":
            self.join(self.people[event.user_id], at)
        elif event.kind == "order":
            self.order(event)
        else:
            self.refund(event)

    def join(self, person: Customer, at: datetime) -> None:
        if not person.member:
            return
        referral = None
        if person.referrer:
            referral = members.get_member(self.session, person.referrer)
        member = members.enroll(
            self.session,
            person.user_id,
            now=at,
            settings=self.settings,
            email=person.email,
            name=person.name,
            birthday=person.birthday,
            marketing_opt_in=person.marketing_opt_in,
            referral_code=referral.referral_code if referral else None,
        )
        self.tier_of[person.user_id] = member.tier_code
        self.points_of[person.user_id] = member.points_balance

    def order(self, event: Planned) -> None:
        s, at, uid = self.session, event.at, event.user_id
        goods = sum((self.catalog[sku].price * qty for sku, qty in event.lines), Decimal(0))
        tier = self.tier_of.get(uid)
        percent = self.settings.tier(tier).discount_percent if tier else Decimal(0)
        after = goods - (goods * percent / 100).quantize(CENT, rounding=ROUND_DOWN)
        lines = [
            {"sku": sku, "qty": qty, "unit_price": self.catalog[sku].price, "category": self.catalog[sku].category}
            for sku, qty in event.lines
        ]
        code, discount = self.coupon(uid, after, at) if tier else (None, None)
        off = Decimal(0)
        if discount is not None:
            off = discount.amount
            if discount.free_item_sku in self.catalog:
                item = self.catalog[discount.free_item_sku]
                lines.append({"sku": item.sku, "qty": 1, "unit_price": Decimal(0), "category": item.category})
        free_shipping = after >= FREE_SHIPPING_FROM or (discount is not None and discount.free_shipping)
        shipping = Decimal(0) if free_shipping else SHIPPING
        paid = after - off + shipping
        receipt = orders.record_order(
            s,
            event.order_id,
            uid,
            paid,
            lines=lines,
            placed_at=at,
            shipping=shipping,
            tax=0,
            source="seed",
            now=at,
            settings=self.settings,
        )
        if receipt.balance is not None:
            self.points_of[uid] = receipt.balance
        if code is not None:
            rewards.use_coupon(s, code, uid, event.order_id, now=at)
        self.paid[event.order_id] = paid
        self.line_values[event.order_id] = [line["unit_price"] * line["qty"] for line in lines]

    def coupon(self, uid: str, total: Decimal, at: datetime) -> tuple[str | None, rewards.Discount | None]:
        """A coupon the member holds and can use on this order, redeeming one first when they
        are inclined to and can afford it; four in five new coupons are used at once."""
        held = self.coupons.setdefault(uid, [])
        person = self.people[uid]
        saved = self.points_of.get(uid, 0) >= max(person.saving_for, self.cheapest)
        if not held and saved and self.rng.random() < person.redeem_chance:
            code = self.redeem(uid, at)
            if code is not None:
                held.append(code)
                if self.rng.random() < 0.2:
                    return None, None
        for code in list(held):
            try:
                discount = rewards.check_coupon(self.session, code, uid, total, now=at)
            except InvalidCoupon as refused:
                if refused.reason != "min_order":
                    held.remove(code)
                continue
            held.remove(code)
            return code, discount
        return None, None

    def redeem(self, uid: str, at: datetime) -> str | None:
        """The most valuable reward the member can afford and may take; ``rewards.redeem``
        still checks every rule under the member's lock."""
        member = lock_member(self.session, uid)
        if member is None:
            return None
        rank = self.settings.tier(member.tier_code).rank
        offers = [
            r
            for r in self.rewards
            if r.cost_points <= member.points_balance
            and (r.stock is None or r.stock > 0)
            and (r.min_tier is None or self.settings.tier(r.min_tier).rank <= rank)
        ]
        if not offers:
            return None
        best = max(offers, key=lambda r: (r.cost_points, -r.id))
        try:
            coupon = rewards.redeem(self.session, uid, best.id, now=at, settings=self.settings)
        except LoyaltyError:
            return None
        self.points_of[uid] = member.points_balance
        return coupon.code

    def refund(self, event: Planned) -> None:
        oid = event.order_id
        left = self.paid[oid] - self.refunded.get(oid, Decimal(0))
        values = self.line_values[oid]
        amount = left if event.full_refund else min(values[self.rng.integers(len(values))], left)
        if amount <= 0:
            return
        receipt = orders.record_refund(self.session, event.refund_id, oid, amount, now=event.at, settings=self.settings)
        if receipt.balance is not None:
            self.points_of[event.user_id] = receipt.balance
        self.refunded[oid] = self.refunded.get(oid, Decimal(0)) + amount
