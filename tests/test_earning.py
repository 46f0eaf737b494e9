"""Earning rules of SPEC §4: rate, multipliers, pending window, expiry, FIFO spending."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from loyalty_plugin import BadInput, ConflictingDuplicate
from loyalty_plugin.jobs import expire_points, release_pending
from loyalty_plugin.models import LedgerEntry, Order, PointLot

from .conftest import line


def store(loyalty):
    return loyalty.state().store


def settle(loyalty, clock) -> None:
    """What the nightly jobs would do at the clock's time."""
    release_pending(store(loyalty), now=clock())
    expire_points(store(loyalty), now=clock())


def test_order_earns_one_point_per_currency_unit_rounded_down(loyalty):
    loyalty.enroll("u1")
    receipt = loyalty.record_order("o1", "u1", "100.99", lines=[line(unit_price="100.99")])
    assert receipt.points_awarded == 100
    assert receipt.pending == 100
    assert not receipt.repeat


def test_shipping_and_tax_earn_nothing_by_default(loyalty):
    loyalty.enroll("u1")
    receipt = loyalty.record_order("o1", "u1", "120.00", shipping="5.00", tax="15.00")
    assert receipt.points_awarded == 100


def test_shipping_earns_when_configured(configured):
    with configured(LOYALTY_EARN_ON_SHIPPING=True) as loyalty:
        loyalty.enroll("u1")
        assert loyalty.record_order("o1", "u1", "120.00", shipping="5.00", tax="15.00").points_awarded == 105


def test_campaign_multiplies_points_inside_its_dates_only(configured, clock):
    campaign = {"name": "Double week", "multiplier": "2", "starts": "2026-01-05", "ends": "2026-01-12"}
    with configured(LOYALTY_CAMPAIGNS=[campaign]) as loyalty:
        loyalty.enroll("u1")
        assert loyalty.record_order("o1", "u1", "50.00").points_awarded == 100
        clock.advance(days=8)
        assert loyalty.record_order("o2", "u1", "50.00").points_awarded == 50


def test_tier_multiplier_applies_to_later_orders(loyalty, clock):
    loyalty.enroll("u1")
    loyalty.record_order("o1", "u1", "1200.00")
    clock.advance(days=1)
    run = loyalty.evaluate_tiers()
    assert run.upgraded == 1
    assert loyalty.record_order("o2", "u1", "100.00").points_awarded == 125


def test_points_stay_pending_until_the_return_window_ends(loyalty, clock):
    loyalty.enroll("u1")
    loyalty.record_order("o1", "u1", "80.00")
    clock.advance(days=13, hours=23)
    settle(loyalty, clock)
    assert loyalty.balance("u1").pending == 80
    assert loyalty.balance("u1").available == 100  # the welcome bonus only
    clock.advance(hours=1)
    settle(loyalty, clock)
    balance = loyalty.balance("u1")
    assert (balance.available, balance.pending) == (180, 0)
    assert loyalty.verify() == []


def test_non_member_orders_are_kept_but_earn_nothing(loyalty):
    guest = loyalty.record_order("g1", None, "40.00", lines=[line(sku="A"), line(sku="B")])
    stranger = loyalty.record_order("s1", "not-a-member", "40.00")
    assert guest.points_awarded == stranger.points_awarded == 0
    session = store(loyalty).session
    assert session.query(Order).count() == 2
    assert session.query(LedgerEntry).count() == 0


def test_repeat_delivery_counts_once(loyalty):
    loyalty.enroll("u1")
    first = loyalty.record_order("o1", "u1", "30.00", lines=[line(unit_price="30.00")])
    again = loyalty.record_order("o1", "u1", "30.00", lines=[line(unit_price="30.00")])
    assert again.repeat and again.points_awarded == first.points_awarded == 30
    assert loyalty.balance("u1").pending == 30


def test_same_order_id_with_other_content_is_a_conflict(loyalty):
    loyalty.enroll("u1")
    loyalty.record_order("o1", "u1", "30.00")
    with pytest.raises(ConflictingDuplicate, match="different content"):
        loyalty.record_order("o1", "u1", "31.00")
    assert loyalty.balance("u1").pending == 30


@pytest.mark.parametrize(
    ("total", "lines", "field"),
    [
        ("-1", None, "total"),
        (12.5, None, "total"),
        ("1.234", None, "total"),
        ("abc", None, "total"),
        ("10", [{"sku": "", "unit_price": "1"}], "lines[0].sku"),
        ("10", [{"sku": "A", "qty": 0, "unit_price": "1"}], "lines[0].qty"),
        ("10", [{"sku": "A", "qty": 1, "unit_price": "-2"}], "lines[0].unit_price"),
        ("10", "not a list", "lines"),
        (None, None, "total"),
    ],
)
def test_bad_orders_are_refused_with_the_field_named_and_nothing_written(loyalty, total, lines, field):
    loyalty.enroll("u1")
    with pytest.raises(BadInput) as refused:
        loyalty.record_order("o1", "u1", total, lines=lines)
    assert refused.value.field == field
    assert store(loyalty).session.query(Order).count() == 0


def test_spending_takes_the_oldest_points_first_and_expiry_takes_what_is_left(loyalty, clock):
    loyalty.enroll("u1")  # 100 welcome points, lot A, expires START + 365 days
    clock.advance(days=100)
    loyalty.award("u1", 300, "survey", key="survey-1")  # lot B, expires 100 days later than A
    reward = loyalty.create_reward(name="Five off", kind="fixed_amount", cost_points=150, amount="5")
    loyalty.redeem("u1", reward.id)  # takes all of A and 50 of B
    lots = {lot.points: lot for lot in store(loyalty).session.query(PointLot)}
    assert (lots[100].remaining, lots[300].remaining) == (0, 250)
    clock.advance(days=266)  # past A's expiry, before B's
    settle(loyalty, clock)
    assert loyalty.balance("u1").available == 250
    clock.advance(days=100)
    settle(loyalty, clock)
    assert loyalty.balance("u1").available == 0
    expired = store(loyalty).session.query(LedgerEntry).filter_by(kind="expire").all()
    assert [e.points for e in expired] == [-250]
    assert loyalty.verify() == []


def test_points_expiring_soon_are_shown(loyalty, clock):
    loyalty.enroll("u1")
    clock.advance(days=340)
    balance = loyalty.balance("u1")
    assert balance.expiring_soon == 100
    assert balance.next_expiry is not None
    assert balance.next_expiry.date().isoformat() == "2027-01-05"


def test_order_lines_are_kept_for_analytics(loyalty):
    loyalty.record_order("o1", "x", "25.00", lines=[line("A", 2, "5.00", "tea"), line("B", 1, "15.00", None)])
    order = store(loyalty).session.query(Order).one()
    assert order.total == Decimal("25.00")
    from loyalty_plugin.models import OrderLine

    rows = store(loyalty).session.query(OrderLine).order_by(OrderLine.line_no).all()
    assert [(r.sku, r.qty, r.unit_price, r.category) for r in rows] == [
        ("A", 2, Decimal("5.00"), "tea"),
        ("B", 1, Decimal("15.00"), None),
    ]


def test_an_order_placed_in_the_future_is_refused(loyalty, clock):
    loyalty.enroll("u1")
    with pytest.raises(BadInput, match="future") as refused:
        loyalty.record_order("o1", "u1", "10.00", placed_at=clock() + timedelta(days=2))
    assert refused.value.field == "placed_at"
