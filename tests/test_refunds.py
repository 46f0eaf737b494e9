"""Claw-back on refunds: proportional, once per refund, coupons given back, owed balances."""

from __future__ import annotations

import pytest

from loyalty_plugin import BadInput, ConflictingDuplicate
from loyalty_plugin.jobs import release_pending
from loyalty_plugin.models import Coupon, LedgerEntry, Order


def available_after_window(loyalty, clock) -> None:
    clock.advance(days=14)
    release_pending(loyalty.state().store, now=clock())


def test_partial_refund_claws_back_in_proportion(loyalty):
    loyalty.enroll("u1")
    loyalty.record_order("o1", "u1", "200.00")
    receipt = loyalty.record_refund("r1", "o1", "50.00")
    assert receipt.points_clawed_back == 50
    assert loyalty.balance("u1").pending == 150


def test_refunds_add_up_to_exactly_the_points_earned(loyalty):
    loyalty.enroll("u1")
    loyalty.record_order("o1", "u1", "99.99")  # 99 points
    clawed = [loyalty.record_refund(f"r{i}", "o1", "33.33").points_clawed_back for i in range(3)]
    assert sum(clawed) == 99
    assert loyalty.balance("u1").pending == 0


def test_full_refund_inside_the_return_window_cancels_pending_points(loyalty, clock):
    loyalty.enroll("u1")
    loyalty.record_order("o1", "u1", "80.00")
    loyalty.record_refund("r1", "o1", "80.00")
    available_after_window(loyalty, clock)
    balance = loyalty.balance("u1")
    assert (balance.available, balance.pending) == (100, 0)
    assert loyalty.verify() == []


def test_a_refund_is_counted_once_per_refund_id(loyalty):
    loyalty.enroll("u1")
    loyalty.record_order("o1", "u1", "100.00")
    first = loyalty.record_refund("r1", "o1", "40.00")
    again = loyalty.record_refund("r1", "o1", "40.00")
    assert again.repeat and again.points_clawed_back == first.points_clawed_back == 40
    assert loyalty.balance("u1").pending == 60
    with pytest.raises(ConflictingDuplicate):
        loyalty.record_refund("r1", "o1", "41.00")


def test_refund_larger_than_what_is_left_is_refused_and_changes_nothing(loyalty):
    loyalty.enroll("u1")
    loyalty.record_order("o1", "u1", "100.00")
    loyalty.record_refund("r1", "o1", "70.00")
    with pytest.raises(BadInput, match=r"30\.00 left to refund"):
        loyalty.record_refund("r2", "o1", "30.01")
    session = loyalty.state().store.session
    assert session.query(Order).one().refunded_total == 70
    assert loyalty.balance("u1").pending == 30


def test_refund_of_an_unknown_order_is_refused(loyalty):
    with pytest.raises(BadInput) as refused:
        loyalty.record_refund("r1", "nope", "10.00")
    assert refused.value.field == "order_id"


def test_refund_after_redemption_leaves_an_owed_balance_repaid_by_later_points(loyalty, clock):
    loyalty.enroll("u1")
    loyalty.record_order("o1", "u1", "500.00")
    available_after_window(loyalty, clock)  # 600 available
    reward = loyalty.create_reward(name="Ten off", kind="fixed_amount", cost_points=600, amount="10")
    loyalty.redeem("u1", reward.id)
    loyalty.record_refund("r1", "o1", "500.00")
    balance = loyalty.balance("u1")
    assert (balance.available, balance.owed) == (0, 500)
    loyalty.record_order("o2", "u1", "700.00")
    available_after_window(loyalty, clock)
    balance = loyalty.balance("u1")
    assert (balance.available, balance.owed) == (200, 0)
    assert loyalty.verify() == []
    entries = loyalty.state().store.session.query(LedgerEntry)
    took_below_zero = entries.filter(LedgerEntry.balance_after < 0, LedgerEntry.points < 0).all()
    assert {entry.kind for entry in took_below_zero} == {"clawback"}


def test_full_refund_of_an_order_paid_with_a_coupon_gives_the_coupon_back(loyalty, clock):
    loyalty.enroll("u1")
    loyalty.award("u1", 500, "welcome back", key="k1")
    reward = loyalty.create_reward(name="Five off", kind="fixed_amount", cost_points=500, amount="5")
    coupon = loyalty.redeem("u1", reward.id)
    assert loyalty.check_coupon(coupon.code, "u1", "50.00").amount == 5
    loyalty.record_order("o1", "u1", "45.00")  # 50 less the coupon
    loyalty.use_coupon(coupon.code, "u1", "o1")
    clock.advance(days=80)
    loyalty.record_refund("r1", "o1", "45.00")
    session = loyalty.state().store.session
    restored = session.get(Coupon, coupon.id)
    assert restored.status == "active" and restored.order_id is None
    assert restored.valid_until >= clock() + __import__("datetime").timedelta(days=90)
    redeems = session.query(LedgerEntry).filter_by(kind="redeem").all()
    assert [e.points for e in redeems] == [-500]
    balance = loyalty.balance("u1")
    assert (balance.available, balance.pending, balance.owed) == (100, 0, 0)
    assert loyalty.check_coupon(coupon.code, "u1", "50.00").amount == 5


def test_partial_refund_keeps_the_coupon_used(loyalty):
    loyalty.enroll("u1")
    reward = loyalty.create_reward(name="Free shipping", kind="free_shipping", cost_points=100)
    coupon = loyalty.redeem("u1", reward.id)
    loyalty.record_order("o1", "u1", "60.00")
    loyalty.use_coupon(coupon.code, "u1", "o1")
    loyalty.record_refund("r1", "o1", "20.00")
    assert loyalty.state().store.session.get(Coupon, coupon.id).status == "used"


def test_an_order_paid_entirely_with_a_coupon_can_be_refunded_and_gets_its_coupon_back(loyalty):
    loyalty.enroll("u1")
    reward = loyalty.create_reward(name="Five off", kind="fixed_amount", cost_points=100, amount="5")
    coupon = loyalty.redeem("u1", reward.id)
    loyalty.record_order("o1", "u1", "0.00")
    loyalty.use_coupon(coupon.code, "u1", "o1")
    loyalty.record_refund("r1", "o1", "0.00")
    assert loyalty.state().store.session.get(Coupon, coupon.id).status == "active"
    loyalty.record_order("o2", "u1", "10.00")
    with pytest.raises(BadInput, match="more than zero"):
        loyalty.record_refund("r2", "o2", "0")
