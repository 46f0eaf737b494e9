"""Random sequences of everything that moves points, checked against a model after every step.

A hypothesis ``RuleBasedStateMachine`` enrolls members, records orders (and delivers them
again), refunds them in parts and in full (and delivers refunds again), redeems rewards of
several costs, pays orders with coupons and refunds those orders, awards activity points with
repeated keys, adjusts by hand both ways, and moves the clock so the release and expiry jobs
run. Beside the plugin runs a small model of the rules of SPEC §4: every lot with its
remaining points, every balance, every coupon, every order's refunds.

After every step: ``verify() == []``; the balances, lots, coupons and orders equal the model's;
every ledger ``cause`` is unique; each entry's ``balance_after`` is the running sum of the
member's ``points``; a balance goes below zero only through a claw-back; and each spend took
the oldest lots first.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from itertools import count
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import func, select, text

from loyalty_plugin import (
    AlreadyEnrolled,
    BadInput,
    ConflictingDuplicate,
    InsufficientPoints,
    InvalidCoupon,
    Loyalty,
    NotEnrolled,
    RewardUnavailable,
)
from loyalty_plugin.jobs import expire_points, release_pending
from loyalty_plugin.models import Base, Coupon, LedgerEntry, Member, Order, PointLot

from .conftest import START, Clock, make_app

PENDING_DAYS = 14
EXPIRE_DAYS = 365
COUPON_DAYS = 90
WARNING_DAYS = 30
SIGNUP = 100
USERS = ("u0", "u1", "u2", "guest")
#: Mostly the members enrolled at the start, so sequences pile up on a few balances.
user_ids = st.sampled_from(("u0", "u0", "u1", "u1", "u2", "guest"))
AWARD_KEYS = tuple(f"k{i}" for i in range(5))
REWARDS = (
    {"name": "Free shipping", "kind": "free_shipping", "cost_points": 30},
    {"name": "5 off", "kind": "fixed_amount", "cost_points": 100, "amount": "5.00"},
    {"name": "10 % off", "kind": "percent", "cost_points": 250, "percent": "10", "max_discount": "20.00"},
    {"name": "20 off", "kind": "fixed_amount", "cost_points": 500, "amount": "20.00"},
    {"name": "Mug", "kind": "free_item", "cost_points": 40, "sku": "MUG-1", "stock": 3, "per_member_limit": 1},
)
CENT = Decimal("0.01")


# The model ----------------------------------------------------------------------------------


@dataclass
class MLot:
    user_id: str
    points: int
    remaining: int
    status: str
    available_at: datetime
    expires_at: datetime
    order_id: str | None
    seq: int

    def row(self) -> tuple[Any, ...]:
        return (
            self.user_id,
            self.points,
            self.remaining,
            self.status,
            self.available_at,
            self.expires_at,
            self.order_id,
        )


@dataclass
class MMember:
    user_id: str
    balance: int = 0
    pending: int = 0


@dataclass
class MOrder:
    order_id: str
    user_id: str
    total: Decimal
    shipping: Decimal
    lines: list[dict[str, Any]]
    member: str | None
    points: int
    refunded: Decimal = Decimal(0)
    clawed: int = 0


@dataclass
class MCoupon:
    code: str
    user_id: str
    cost: int
    status: str
    valid_until: datetime
    order_id: str | None = None


@dataclass
class MReward:
    id: int
    cost: int
    stock: int | None
    per_member_limit: int | None
    taken: dict[str, int] = field(default_factory=dict)


def floor_points(amount: Decimal) -> int:
    return int(amount.to_integral_value(rounding=ROUND_DOWN))


# The machine --------------------------------------------------------------------------------


class LedgerMachine(RuleBasedStateMachine):
    """One fresh database per example; ``database_url`` and ``workdir`` are set by the test."""

    database_url: str | None = None
    workdir: str = ""

    orders = Bundle("orders")
    coupon_orders = Bundle("coupon_orders")
    refunds = Bundle("refunds")
    coupons = Bundle("coupons")

    def __init__(self) -> None:
        super().__init__()
        self.tmp = tempfile.mkdtemp(dir=self.workdir)
        url = self.database_url or f"sqlite:///{self.tmp}/loyalty.sqlite"
        self.app = make_app(url, f"{self.tmp}/instance")
        self.store = self.app.extensions["loyalty"].store
        if self.store.dialect == "postgresql":
            tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
            with self.store.engine.begin() as conn:
                conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        self.clock = Clock(now=START)
        self.app.extensions["loyalty"].clock = self.clock
        self.ctx = self.app.app_context()
        self.ctx.push()
        self.loyalty = Loyalty()
        self.members: dict[str, MMember] = {}
        self.lots: list[MLot] = []
        self.model_orders: dict[str, MOrder] = {}
        self.model_refunds: dict[str, tuple[str, Decimal]] = {}
        self.model_coupons: dict[str, MCoupon] = {}
        self.rewards: list[MReward] = []
        self.award_keys: dict[tuple[str, str], int] = {}
        self.ids = count()
        self.seq = count()

    def teardown(self) -> None:
        self.ctx.pop()
        self.app.extensions["loyalty"].close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    # Model operations (SPEC §4, as the ledger's docstrings state them) ---------------------

    def _new_lot(self, user_id: str, points: int, *, pending: bool, order_id: str | None = None) -> MLot:
        now = self.clock()
        available_at = now + timedelta(days=PENDING_DAYS if pending else 0)
        lot = MLot(
            user_id,
            points,
            points,
            "pending" if pending else "available",
            available_at,
            available_at + timedelta(days=EXPIRE_DAYS),
            order_id,
            next(self.seq),
        )
        self.lots.append(lot)
        return lot

    def _arrive(self, member: MMember, lot: MLot, points: int) -> None:
        """Points becoming available pay what the member owes first."""
        member.balance += points
        owed_before = -(member.balance - points)
        if owed_before > 0:
            lot.remaining = max(0, points - owed_before)
        if lot.remaining == 0:
            lot.status = "spent"

    def _earn_now(self, user_id: str, points: int) -> None:
        lot = self._new_lot(user_id, points, pending=False)
        self._arrive(self.members[user_id], lot, points)

    def _available(self, user_id: str) -> list[MLot]:
        lots = [lot for lot in self.lots if lot.user_id == user_id and lot.status == "available" and lot.remaining]
        return sorted(lots, key=lambda lot: (lot.expires_at, lot.seq))

    @staticmethod
    def _consume(lots: list[MLot], points: int) -> None:
        for lot in lots:
            take = min(lot.remaining, points)
            lot.remaining -= take
            points -= take
            if lot.remaining == 0:
                lot.status = "spent"

    def _spend(self, user_id: str, points: int) -> None:
        self._consume(self._available(user_id), points)
        self.members[user_id].balance -= points

    def _claw_back(self, order: MOrder, points: int) -> None:
        assert order.member is not None
        member = self.members[order.member]
        own = [lot for lot in self.lots if lot.order_id == order.order_id and lot.user_id == order.member]
        left = points
        for lot in own:
            if lot.status == "pending" and left:
                take = min(lot.remaining, left)
                lot.remaining -= take
                left -= take
                member.pending -= take
                if lot.remaining == 0:
                    lot.status = "cancelled"
        if left:
            mine = [lot for lot in own if lot.status == "available" and lot.remaining]
            others = [lot for lot in self._available(order.member) if lot not in mine]
            self._consume(mine + others, left)
            member.balance -= left

    def _settle(self) -> None:
        """What ``release_pending`` then ``expire_points`` do at the clock's time."""
        now = self.clock()
        for lot in sorted(self.lots, key=lambda lot: lot.seq):
            if lot.status == "pending" and lot.remaining > 0 and lot.available_at <= now:
                member = self.members[lot.user_id]
                member.pending -= lot.remaining
                lot.status = "available"
                self._arrive(member, lot, lot.remaining)
        for lot in self.lots:
            if lot.status == "available" and lot.remaining > 0 and lot.expires_at <= now:
                self.members[lot.user_id].balance -= lot.remaining
                lot.remaining = 0
                lot.status = "expired"

    def _enrolled(self, user_id: str) -> bool:
        return user_id in self.members

    # Database views -------------------------------------------------------------------------

    def _db_lots(self) -> list[tuple[Any, ...]]:
        with self.store.work(write=False) as session:
            rows = session.execute(
                select(
                    Member.user_id,
                    PointLot.points,
                    PointLot.remaining,
                    PointLot.status,
                    PointLot.available_at,
                    PointLot.expires_at,
                    PointLot.order_id,
                    PointLot.id,
                )
                .join(Member, Member.id == PointLot.member_id)
                .order_by(PointLot.id)
            ).all()
        return [tuple(row) for row in rows]

    def _check_oldest_first(self, before: list[tuple[Any, ...]], user_id: str) -> None:
        """A spend reduced no lot while a lot expiring earlier still had points left."""
        after = {row[7]: row for row in self._db_lots()}
        avail = [row for row in before if row[0] == user_id and row[3] == "available" and row[2] > 0]
        reduced = [row for row in avail if after[row[7]][2] < row[2]]
        for lot in reduced:
            earlier = [r for r in avail if (r[5], r[7]) < (lot[5], lot[7])]
            kept = [r for r in earlier if after[r[7]][2] > 0]
            assert not kept, f"lot {lot[7]} was spent while older lots {[r[7] for r in kept]} kept points"

    # Rules -----------------------------------------------------------------------------------

    @initialize()
    def set_up_program(self) -> None:
        for definition in REWARDS:
            reward = self.loyalty.create_reward(**definition)
            self.rewards.append(MReward(reward.id, reward.cost_points, reward.stock, reward.per_member_limit))
        for user_id in ("u0", "u1"):
            self.loyalty.enroll(user_id)
            self.members[user_id] = MMember(user_id)
            self._earn_now(user_id, SIGNUP)

    @rule(user_id=user_ids)
    def enroll(self, user_id: str) -> None:
        if self._enrolled(user_id):
            with pytest.raises(AlreadyEnrolled):
                self.loyalty.enroll(user_id)
            return
        self.loyalty.enroll(user_id)
        self.members[user_id] = MMember(user_id)
        self._earn_now(user_id, SIGNUP)

    @rule(
        target=orders,
        user_id=user_ids,
        cents=st.one_of(st.integers(0, 500), st.integers(500, 200_000)),
        shipping_cents=st.sampled_from([0, 0, 499]),
        skus=st.lists(st.sampled_from(["MUG-1", "TEA-7", "PEN-3", "BAG-9"]), min_size=0, max_size=4),
    )
    def record_order(self, user_id: str, cents: int, shipping_cents: int, skus: list[str]) -> str:
        total = Decimal(cents) * CENT + Decimal(shipping_cents) * CENT
        return self._order(user_id, total, Decimal(shipping_cents) * CENT, skus)

    def _order(self, user_id: str, total: Decimal, shipping: Decimal, skus: list[str], order_id: str = "") -> str:
        order_id = order_id or f"o-{next(self.ids)}"
        lines = [{"sku": sku, "qty": 1 + i, "unit_price": "4.99", "category": "misc"} for i, sku in enumerate(skus)]
        receipt = self.loyalty.record_order(order_id, user_id, total, lines=lines, shipping=shipping)
        member = user_id if self._enrolled(user_id) else None
        points = floor_points(total - shipping) if member else 0
        assert (receipt.points_awarded, receipt.repeat) == (points, False)
        self.model_orders[order_id] = MOrder(order_id, user_id, total, shipping, lines, member, points)
        if points:
            self.members[user_id].pending += points
            self._new_lot(user_id, points, pending=True, order_id=order_id)
        return order_id

    @rule(order_id=orders, same=st.booleans())
    def deliver_order_again(self, order_id: str, same: bool) -> None:
        order = self.model_orders[order_id]
        if same:
            receipt = self.loyalty.record_order(
                order_id, order.user_id, order.total, lines=order.lines, shipping=order.shipping
            )
            assert (receipt.points_awarded, receipt.repeat) == (order.points, True)
        else:
            with pytest.raises(ConflictingDuplicate):
                self.loyalty.record_order(
                    order_id, order.user_id, order.total + 1, lines=order.lines, shipping=order.shipping
                )

    @rule(target=refunds, order_id=orders, share=st.sampled_from([1, 10, 33, 50, 100, 100, 150]))
    def refund(self, order_id: str, share: int) -> Any:
        """Part of what is left (``share`` %), all of it, or more than it (refused)."""
        return self._refund(order_id, share)

    @rule(target=refunds, order_id=coupon_orders, share=st.sampled_from([50, 100, 100]))
    def refund_order_paid_with_coupon(self, order_id: str, share: int) -> Any:
        """In full, the coupon comes back active and its points are not charged again."""
        return self._refund(order_id, share)

    def _refund(self, order_id: str, share: int) -> Any:
        order = self.model_orders[order_id]
        left = order.total - order.refunded
        amount = max(CENT, (left * share / 100).quantize(CENT, rounding=ROUND_DOWN))
        refund_id = f"r-{next(self.ids)}"
        if amount > left:
            with pytest.raises(BadInput):
                self.loyalty.record_refund(refund_id, order_id, amount)
            return multiple()
        receipt = self.loyalty.record_refund(refund_id, order_id, amount)
        order.refunded += amount
        clawed = 0
        if order.member is not None and order.total > 0:
            target = floor_points(Decimal(order.points) * order.refunded / order.total)
            clawed = target - order.clawed
            if clawed > 0:
                self._claw_back(order, clawed)
                order.clawed = target
        if order.refunded == order.total:
            for coupon in self.model_coupons.values():
                if coupon.order_id == order_id and coupon.status == "used":
                    coupon.status = "active"
                    coupon.order_id = None
                    coupon.valid_until = max(coupon.valid_until, self.clock() + timedelta(days=COUPON_DAYS))
        assert (receipt.points_clawed_back, receipt.repeat) == (max(clawed, 0), False)
        self.model_refunds[refund_id] = (order_id, amount)
        return refund_id

    @rule(refund_id=refunds, same=st.booleans())
    def deliver_refund_again(self, refund_id: str, same: bool) -> None:
        order_id, amount = self.model_refunds[refund_id]
        if same:
            assert self.loyalty.record_refund(refund_id, order_id, amount).repeat
        else:
            with pytest.raises(ConflictingDuplicate):
                self.loyalty.record_refund(refund_id, order_id, amount + CENT)

    @rule(target=coupons, user_id=user_ids, which=st.integers(0, len(REWARDS) - 1))
    def redeem(self, user_id: str, which: int) -> Any:
        code = self._redeem(user_id, which)
        return multiple() if code is None else code

    def _redeem(self, user_id: str, which: int) -> str | None:
        reward = self.rewards[which]
        if not self._enrolled(user_id):
            with pytest.raises(NotEnrolled):
                self.loyalty.redeem(user_id, reward.id)
            return None
        member = self.members[user_id]
        sold_out = reward.stock is not None and reward.stock <= 0
        at_limit = reward.per_member_limit is not None and reward.taken.get(user_id, 0) >= reward.per_member_limit
        refusal: type[Exception] | None = None
        if sold_out or at_limit:
            refusal = RewardUnavailable
        elif member.balance < reward.cost:
            refusal = InsufficientPoints
        if refusal is not None:
            with pytest.raises(refusal):
                self.loyalty.redeem(user_id, reward.id)
            return None
        before = self._db_lots()
        coupon = self.loyalty.redeem(user_id, reward.id)
        self._check_oldest_first(before, user_id)
        self._spend(user_id, reward.cost)
        if reward.stock is not None:
            reward.stock -= 1
        reward.taken[user_id] = reward.taken.get(user_id, 0) + 1
        valid_until = self.clock() + timedelta(days=COUPON_DAYS)
        assert (coupon.status, coupon.points_spent, coupon.valid_until) == ("active", reward.cost, valid_until)
        self.model_coupons[coupon.code] = MCoupon(coupon.code, user_id, reward.cost, "active", valid_until)
        return coupon.code

    @rule(
        targets=(orders, coupon_orders),
        code=coupons,
        cents=st.integers(100, 30_000),
        stranger=st.sampled_from([False, False, False, True]),
    )
    def checkout_with_coupon(self, code: str, cents: int, stranger: bool) -> Any:
        if stranger:
            owner = self.model_coupons[code].user_id
            other = next(u for u in USERS if u != owner)
            with pytest.raises(InvalidCoupon) as refused:
                self.loyalty.use_coupon(code, other, f"o-{next(self.ids)}")
            assert refused.value.reason == "not_found"
            return multiple()
        order_id = self._checkout(code, cents)
        return multiple() if order_id is None else order_id

    def _checkout(self, code: str, cents: int) -> str | None:
        """The shop's checkout: the coupon first, then the order paid with it."""
        coupon = self.model_coupons[code]
        order_id = f"o-{next(self.ids)}"
        reason = None
        if coupon.status == "used":
            reason = "used"
        elif coupon.valid_until <= self.clock():
            reason = "expired"
        if reason is not None:
            with pytest.raises(InvalidCoupon) as refused:
                self.loyalty.use_coupon(code, coupon.user_id, order_id)
            assert refused.value.reason == reason
            return None
        self.loyalty.use_coupon(code, coupon.user_id, order_id)
        assert self.loyalty.use_coupon(code, coupon.user_id, order_id).status == "used"  # a retried call
        coupon.status, coupon.order_id = "used", order_id
        return self._order(coupon.user_id, Decimal(cents) * CENT, Decimal(0), ["MUG-1"], order_id)

    @rule(
        target=coupons,
        user_id=st.sampled_from(("u0", "u1")),
        which=st.integers(0, len(REWARDS) - 1),
        cents=st.integers(100, 30_000),
    )
    def pay_with_coupon_then_refund_in_full(self, user_id: str, which: int, cents: int) -> Any:
        """Redeem, pay an order with the coupon, refund it all: the coupon is back, charged once."""
        code = self._redeem(user_id, which)
        if code is None:
            return multiple()
        balance = self.members[user_id].balance
        order_id = self._checkout(code, cents)
        assert order_id is not None
        self._refund(order_id, 100)
        assert self.model_coupons[code].status == "active"
        assert self.loyalty.balance(user_id).available == max(balance, 0)
        return code

    @rule(
        user_id=st.sampled_from(("u0", "u1")),
        cents=st.integers(5_000, 100_000),
        spend=st.sampled_from([None, 0, 1, 3]),
        share=st.sampled_from([50, 100]),
    )
    def earn_spend_then_refund(self, user_id: str, cents: int, spend: int | None, share: int) -> None:
        """Points from an order become available and are spent; then the order comes back."""
        order_id = self._order(user_id, Decimal(cents) * CENT, Decimal(0), ["BAG-9"])
        self.advance_clock_and_run_jobs(PENDING_DAYS + 1)
        balance = self.members[user_id].balance
        if spend is None and balance > 0:
            self.adjust(user_id, -balance)
        elif spend is not None:
            self._redeem(user_id, spend)
        self._refund(order_id, share)

    @rule(user_id=user_ids, points=st.one_of(st.integers(-150, -1), st.integers(1, 400)))
    def adjust(self, user_id: str, points: int) -> None:
        if not self._enrolled(user_id):
            with pytest.raises(NotEnrolled):
                self.loyalty.adjust(user_id, points, reason="test", actor="admin")
            return
        member = self.members[user_id]
        if points < 0 and member.balance < -points:
            with pytest.raises(InsufficientPoints):
                self.loyalty.adjust(user_id, points, reason="test", actor="admin")
            return
        before = self._db_lots()
        receipt = self.loyalty.adjust(user_id, points, reason="test", actor="admin")
        if points > 0:
            self._earn_now(user_id, points)
        else:
            self._check_oldest_first(before, user_id)
            self._spend(user_id, -points)
        assert receipt.balance == member.balance

    @rule(user_id=user_ids, key=st.sampled_from(AWARD_KEYS), points=st.integers(1, 80))
    def award(self, user_id: str, key: str, points: int) -> None:
        if not self._enrolled(user_id):
            with pytest.raises(NotEnrolled):
                self.loyalty.award(user_id, points, "review", key=key)
            return
        receipt = self.loyalty.award(user_id, points, "review", key=key)
        if (user_id, key) in self.award_keys:
            assert (receipt.repeat, receipt.points) == (True, self.award_keys[user_id, key])
            return
        self.award_keys[user_id, key] = points
        self._earn_now(user_id, points)
        assert (receipt.repeat, receipt.balance) == (False, self.members[user_id].balance)

    @rule(days=st.sampled_from([1, 5, 13, 14, 15, 30, 45, 120, 200, 366, 366]))
    def advance_clock_and_run_jobs(self, days: int) -> None:
        self.clock.advance(days=days)
        release_pending(self.store, now=self.clock())
        expire_points(self.store, now=self.clock())
        self._settle()
        assert release_pending(self.store, now=self.clock()).done == 0, "a second run released again"
        assert expire_points(self.store, now=self.clock()).done == 0, "a second run expired again"

    # Invariants ------------------------------------------------------------------------------

    @invariant()
    def ledger_rebuilds_every_balance(self) -> None:
        assert self.loyalty.verify() == []

    @invariant()
    def balances_match_the_model(self) -> None:
        now = self.clock()
        for user_id, member in self.members.items():
            balance = self.loyalty.balance(user_id)
            live = self._available(user_id)
            soon = sum(lot.remaining for lot in live if lot.expires_at <= now + timedelta(days=WARNING_DAYS))
            expected = (max(member.balance, 0), member.pending, max(-member.balance, 0), soon)
            assert (balance.available, balance.pending, balance.owed, balance.expiring_soon) == expected, user_id
            assert balance.next_expiry == min((lot.expires_at for lot in live), default=None)

    @invariant()
    def lots_match_the_model(self) -> None:
        assert [row[:7] for row in self._db_lots()] == [lot.row() for lot in self.lots]

    @invariant()
    def ledger_is_consistent(self) -> None:
        with self.store.work(write=False) as session:
            repeated = session.execute(
                select(LedgerEntry.cause).group_by(LedgerEntry.cause).having(func.count() > 1)
            ).all()
            assert repeated == []
            rows = session.execute(
                select(
                    Member.user_id, LedgerEntry.kind, LedgerEntry.points, LedgerEntry.balance_after, LedgerEntry.cause
                )
                .join(Member, Member.id == LedgerEntry.member_id)
                .order_by(LedgerEntry.id)
            ).all()
        running: dict[str, int] = {}
        for user_id, kind, points, balance_after, cause in rows:
            running[user_id] = running.get(user_id, 0) + points
            assert balance_after == running[user_id], cause
            if points < 0 and balance_after < 0:
                assert kind == "clawback", f"{cause} ({kind}) took {user_id} below zero"

    @invariant()
    def coupons_and_orders_match_the_model(self) -> None:
        with self.store.work(write=False) as session:
            coupons = {c.code: c for c in session.scalars(select(Coupon))}
            charges = dict(
                session.execute(
                    select(LedgerEntry.coupon_id, func.sum(LedgerEntry.points))
                    .where(LedgerEntry.coupon_id.is_not(None))
                    .group_by(LedgerEntry.coupon_id)
                ).all()
            )
            orders = {o.order_id: o for o in session.scalars(select(Order))}
        assert set(coupons) == set(self.model_coupons)
        for code, expected in self.model_coupons.items():
            coupon = coupons[code]
            assert (coupon.status, coupon.order_id, coupon.valid_until) == (
                expected.status,
                expected.order_id,
                expected.valid_until,
            ), code
            assert charges[coupon.id] == -expected.cost, f"coupon {code} charged {charges[coupon.id]}"
        assert set(orders) == set(self.model_orders)
        for order_id, expected in self.model_orders.items():
            order = orders[order_id]
            assert order.refunded_total <= order.total
            assert (order.refunded_total, order.points_earned, order.points_clawed_back) == (
                expected.refunded,
                expected.points,
                expected.clawed,
            ), order_id


# The tests -----------------------------------------------------------------------------------


def run(machine: type[LedgerMachine], *, examples: int, steps: int) -> None:
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=examples,
            stateful_step_count=steps,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )


def test_ledger_state_machine_on_sqlite(tmp_path: Any) -> None:
    class OnSQLite(LedgerMachine):
        workdir = str(tmp_path)

    run(OnSQLite, examples=40, steps=30)


def test_ledger_state_machine_on_postgresql(postgres_url: str, tmp_path: Any) -> None:
    class OnPostgreSQL(LedgerMachine):
        database_url = postgres_url
        workdir = str(tmp_path)

    run(OnPostgreSQL, examples=15, steps=30)
