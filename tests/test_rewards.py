"""Rewards, redemption and the coupon calls a checkout makes, with every refusal."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from loyalty_plugin import BadInput, InsufficientPoints, InvalidCoupon, NotEnrolled, RewardUnavailable
from loyalty_plugin.models import Coupon, LedgerEntry
from loyalty_plugin.rewards import display_code


@pytest.fixture
def five_off(loyalty):
    return loyalty.create_reward(name="Five off", kind="fixed_amount", cost_points=100, amount="5.00")


def test_redeeming_spends_points_and_issues_a_coupon_bound_to_the_member(loyalty, five_off, clock, signal_log):
    loyalty.enroll("u1")
    coupon = loyalty.redeem("u1", five_off.id)
    assert loyalty.balance("u1").available == 0
    assert len(coupon.code) == 26  # 128 bits in base32
    assert coupon.valid_until == clock() + timedelta(days=90)
    assert display_code(coupon.code).count("-") == 6
    assert signal_log.of("coupon_issued")[0]["coupon_code"] == coupon.code
    entry = loyalty.state().store.session.query(LedgerEntry).filter_by(kind="redeem").one()
    assert (entry.points, entry.coupon_id) == (-100, coupon.id)


def test_coupon_codes_do_not_repeat(loyalty, five_off):
    loyalty.enroll("u1")
    loyalty.award("u1", 900, "gift", key="g")
    codes = {loyalty.redeem("u1", five_off.id).code for _ in range(10)}
    assert len(codes) == 10


def test_not_enough_points_is_refused_and_nothing_changes(loyalty, five_off):
    loyalty.enroll("u1")
    loyalty.redeem("u1", five_off.id)
    with pytest.raises(InsufficientPoints, match="needs 100 points and you have 0"):
        loyalty.redeem("u1", five_off.id)
    assert loyalty.state().store.session.query(Coupon).count() == 1


def test_out_of_stock_reward_is_refused(loyalty):
    reward = loyalty.create_reward(name="Mug", kind="free_item", sku="MUG", cost_points=10, stock=1)
    loyalty.enroll("u1")
    loyalty.redeem("u1", reward.id)
    with pytest.raises(RewardUnavailable, match="out of stock") as refused:
        loyalty.redeem("u1", reward.id)
    assert refused.value.code == "reward_out_of_stock"
    assert loyalty.balance("u1").available == 90


def test_tier_restricted_reward_is_refused_below_the_tier(loyalty):
    reward = loyalty.create_reward(name="Gold gift", kind="fixed_amount", amount="20", cost_points=10, min_tier="gold")
    loyalty.enroll("u1")
    with pytest.raises(RewardUnavailable, match="Gold members"):
        loyalty.redeem("u1", reward.id)


def test_per_member_limit(loyalty):
    reward = loyalty.create_reward(name="Once", kind="free_shipping", cost_points=10, per_member_limit=1)
    loyalty.enroll("u1")
    loyalty.redeem("u1", reward.id)
    with pytest.raises(RewardUnavailable, match="most times allowed"):
        loyalty.redeem("u1", reward.id)


def test_retired_reward_is_refused(loyalty, five_off):
    loyalty.enroll("u1")
    loyalty.retire_reward(five_off.id)
    with pytest.raises(RewardUnavailable, match="no longer available"):
        loyalty.redeem("u1", five_off.id)


def test_non_member_cannot_redeem(loyalty, five_off):
    with pytest.raises(NotEnrolled):
        loyalty.redeem("stranger", five_off.id)


@pytest.mark.parametrize(
    ("definition", "field"),
    [
        ({"name": "x", "kind": "cash", "cost_points": 1}, "kind"),
        ({"name": "x", "kind": "fixed_amount", "cost_points": 0, "amount": "5"}, "cost_points"),
        ({"name": "x", "kind": "fixed_amount", "cost_points": 5}, "amount"),
        ({"name": "x", "kind": "percent", "cost_points": 5, "percent": "150"}, "percent"),
        ({"name": "x", "kind": "free_item", "cost_points": 5}, "sku"),
        ({"name": "x", "kind": "free_shipping", "cost_points": 5, "min_tier": "platinum"}, "min_tier"),
        ({"kind": "free_shipping", "cost_points": 5}, "name"),
    ],
)
def test_bad_reward_definitions_name_the_field(loyalty, definition, field):
    with pytest.raises(BadInput) as refused:
        loyalty.create_reward(**definition)
    assert refused.value.field == field


def test_percent_coupon_is_capped_and_fixed_coupon_never_exceeds_the_order(loyalty):
    percent = loyalty.create_reward(name="10%", kind="percent", percent="10", max_discount="15", cost_points=10)
    loyalty.enroll("u1")
    coupon = loyalty.redeem("u1", percent.id)
    assert loyalty.check_coupon(coupon.code, "u1", "99.99").amount == Decimal("9.99")
    assert loyalty.check_coupon(coupon.code, "u1", "400.00").amount == Decimal("15.00")
    fixed = loyalty.create_reward(name="5 off", kind="fixed_amount", amount="5", cost_points=10)
    small = loyalty.redeem("u1", fixed.id)
    assert loyalty.check_coupon(display_code(small.code).lower(), "u1", "3.00").amount == Decimal("3.00")


def test_checking_a_coupon_changes_nothing(loyalty, five_off):
    loyalty.enroll("u1")
    coupon = loyalty.redeem("u1", five_off.id)
    for _ in range(3):
        loyalty.check_coupon(coupon.code, "u1", "20")
    assert loyalty.state().store.session.get(Coupon, coupon.id).status == "active"


def test_minimum_order_is_enforced(loyalty):
    reward = loyalty.create_reward(
        name="5 off 50", kind="fixed_amount", amount="5", cost_points=10, min_order_total="50"
    )
    loyalty.enroll("u1")
    coupon = loyalty.redeem("u1", reward.id)
    with pytest.raises(InvalidCoupon, match=r"at least 50\.00") as refused:
        loyalty.check_coupon(coupon.code, "u1", "49.99")
    assert refused.value.reason == "min_order"


def test_someone_elses_coupon_looks_like_a_wrong_code(loyalty, five_off):
    loyalty.enroll("u1")
    loyalty.enroll("u2")
    coupon = loyalty.redeem("u1", five_off.id)
    for call in (
        lambda: loyalty.check_coupon(coupon.code, "u2", "20"),
        lambda: loyalty.use_coupon(coupon.code, "u2", "o-u2"),
    ):
        with pytest.raises(InvalidCoupon) as refused:
            call()
        assert refused.value.reason == "not_found"
        assert refused.value.message == "This coupon code is not valid."
    assert loyalty.state().store.session.get(Coupon, coupon.id).status == "active"


def test_a_coupon_is_used_once_and_a_repeat_for_the_same_order_is_fine(loyalty, five_off, signal_log):
    loyalty.enroll("u1")
    coupon = loyalty.redeem("u1", five_off.id)
    assert loyalty.use_coupon(coupon.code, "u1", "o1").status == "used"
    assert loyalty.use_coupon(coupon.code, "u1", "o1").order_id == "o1"
    with pytest.raises(InvalidCoupon, match="already been used"):
        loyalty.use_coupon(coupon.code, "u1", "o2")
    with pytest.raises(InvalidCoupon, match="already been used"):
        loyalty.check_coupon(coupon.code, "u1", "20")
    assert len(signal_log.of("coupon_used")) == 1


def test_an_expired_coupon_is_refused(loyalty, five_off, clock):
    loyalty.enroll("u1")
    coupon = loyalty.redeem("u1", five_off.id)
    clock.advance(days=90)
    with pytest.raises(InvalidCoupon, match="expired"):
        loyalty.check_coupon(coupon.code, "u1", "20")
    with pytest.raises(InvalidCoupon, match="expired"):
        loyalty.use_coupon(coupon.code, "u1", "o1")


def test_editing_a_reward_does_not_change_issued_coupons(loyalty, five_off):
    loyalty.enroll("u1")
    coupon = loyalty.redeem("u1", five_off.id)
    loyalty.update_reward(five_off.id, name="Eight off", kind="fixed_amount", cost_points=100, amount="8")
    assert loyalty.check_coupon(coupon.code, "u1", "20").amount == Decimal("5.00")


def test_a_reward_can_be_edited_one_field_at_a_time(loyalty, five_off):
    edited = loyalty.update_reward(five_off.id, cost_points=200)
    assert (edited.cost_points, edited.amount, edited.name) == (200, Decimal("5.00"), "Five off")
    with pytest.raises(BadInput) as refused:
        loyalty.update_reward(five_off.id, amount="-1")
    assert refused.value.field == "amount"


def test_an_unknown_reward_says_so(loyalty):
    loyalty.enroll("u1")
    with pytest.raises(RewardUnavailable, match="no such reward") as refused:
        loyalty.redeem("u1", 999)
    assert refused.value.code == "reward_not_found"


def test_coupons_lists_what_a_checkout_can_apply_now(loyalty, five_off, clock):
    loyalty.enroll("u1")
    loyalty.award("u1", 200, "gift", key="g")
    used, kept, _later = (loyalty.redeem("u1", five_off.id) for _ in range(3))
    loyalty.use_coupon(used.code, "u1", "o1")
    assert [c.code for c in loyalty.coupons("u1")][-1] == kept.code
    assert used.code not in {c.code for c in loyalty.coupons("u1")}
    clock.advance(days=91)
    assert loyalty.coupons("u1") == [] and loyalty.coupons("stranger") == []
