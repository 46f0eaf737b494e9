"""Tier evaluation: upgrade at once, kept 12 months, down one step at a time."""

from __future__ import annotations

from decimal import Decimal

from loyalty_plugin.models import Member, TierChange
from loyalty_plugin.models import Tier as TierRow


def tier_of(loyalty, user_id):
    return loyalty.get_member(user_id).tier_code


def test_crossing_a_threshold_upgrades_at_the_next_evaluation_even_two_steps(loyalty, clock, signal_log):
    loyalty.enroll("u1")
    loyalty.enroll("u2")
    loyalty.record_order("o1", "u1", "5000.00")
    loyalty.record_order("o2", "u2", "999.99")
    clock.advance(days=1)
    run = loyalty.evaluate_tiers()
    assert (run.evaluated, run.upgraded, run.downgraded, run.kept) == (2, 1, 0, 1)
    assert (tier_of(loyalty, "u1"), tier_of(loyalty, "u2")) == ("gold", "bronze")
    assert signal_log.of("tier_changed") == [
        {"user_id": "u1", "from_tier": "bronze", "to_tier": "gold", "reason": "upgrade"}
    ]
    change = loyalty.state().store.session.query(TierChange).one()
    assert (change.from_tier, change.to_tier, change.qualifying_spend) == ("bronze", "gold", Decimal("5000.00"))


def test_refunded_and_shipping_money_does_not_qualify(loyalty, clock):
    loyalty.enroll("u1")
    loyalty.record_order("o1", "u1", "1100.00", shipping="20.00")
    loyalty.record_refund("r1", "o1", "100.00")
    clock.advance(days=1)
    loyalty.evaluate_tiers()
    assert tier_of(loyalty, "u1") == "bronze"


def test_a_tier_is_kept_for_twelve_months_then_lowered_one_step_per_evaluation(loyalty, clock):
    loyalty.enroll("u1")
    loyalty.record_order("o1", "u1", "6000.00")
    clock.advance(days=1)
    loyalty.evaluate_tiers()
    clock.advance(days=364)  # the order has left the window; the tier is still protected
    loyalty.evaluate_tiers()
    assert tier_of(loyalty, "u1") == "gold"
    clock.advance(days=1)
    run = loyalty.evaluate_tiers()
    assert run.downgraded == 1 and tier_of(loyalty, "u1") == "silver"
    clock.advance(days=1)
    loyalty.evaluate_tiers()
    assert tier_of(loyalty, "u1") == "silver"  # a downgrade starts a new protected year
    clock.advance(days=365)
    loyalty.evaluate_tiers()
    assert tier_of(loyalty, "u1") == "bronze"
    history = loyalty.state().store.session.query(TierChange).order_by(TierChange.id).all()
    assert [(h.from_tier, h.to_tier, h.reason) for h in history] == [
        ("bronze", "gold", "upgrade"),
        ("gold", "silver", "downgrade"),
        ("silver", "bronze", "downgrade"),
    ]


def test_spend_keeping_the_threshold_keeps_the_tier_after_the_protected_year(loyalty, clock):
    loyalty.enroll("u1")
    loyalty.record_order("o1", "u1", "1500.00")
    clock.advance(days=1)
    loyalty.evaluate_tiers()
    clock.advance(days=300)
    loyalty.record_order("o2", "u1", "1000.00")
    clock.advance(days=100)
    run = loyalty.evaluate_tiers()
    assert run.downgraded == 0 and tier_of(loyalty, "u1") == "silver"


def test_evaluation_is_stable_when_nothing_changed(loyalty, clock):
    loyalty.enroll("u1")
    loyalty.record_order("o1", "u1", "2000.00")
    loyalty.evaluate_tiers()
    assert loyalty.evaluate_tiers().upgraded == 0
    assert loyalty.state().store.session.query(TierChange).count() == 1


def test_configured_tiers_are_written_for_reports(configured):
    tiers = [
        {"code": "member", "threshold": "0"},
        {"code": "vip", "name": "VIP", "threshold": "300", "multiplier": "2", "discount_percent": "10"},
    ]
    with configured(LOYALTY_TIERS=tiers) as loyalty:
        loyalty.enroll("u1")
        loyalty.record_order("o1", "u1", "300.00")
        loyalty.evaluate_tiers()
        session = loyalty.state().store.session
        assert [(t.code, t.rank, t.multiplier) for t in session.query(TierRow).order_by(TierRow.rank)] == [
            ("member", 0, Decimal("1.0000")),
            ("vip", 1, Decimal("2.0000")),
        ]
        assert session.query(Member).one().tier_code == "vip"
        assert loyalty.record_order("o2", "u1", "10.00").points_awarded == 20


def test_a_refund_with_its_shipping_never_lifts_a_member_to_the_top_tier(loyalty, clock):
    loyalty.enroll("u1")
    clock.advance(days=400)  # past the protected year of the bronze tier
    loyalty.record_order("o1", "u1", "10.00", shipping="4.95")
    loyalty.record_refund("r1", "o1", "10.00")  # net spend in the window: -4.95
    run = loyalty.evaluate_tiers()
    assert (run.upgraded, run.downgraded, run.kept) == (0, 0, 1)
    assert tier_of(loyalty, "u1") == "bronze"
