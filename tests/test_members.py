"""Joining, activity points, birthdays, referrals, adjustments and leaving the program."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from loyalty_plugin import AlreadyEnrolled, BadInput, InsufficientPoints, NotEnrolled
from loyalty_plugin.jobs import birthdays
from loyalty_plugin.models import AuditLog, LedgerEntry, Member, Order


def entries(loyalty, **filters):
    return loyalty.state().store.session.query(LedgerEntry).filter_by(**filters).all()


def test_joining_gives_the_welcome_bonus_at_once(loyalty, signal_log):
    member = loyalty.enroll("u1", email="ann@example.com", name="Ann", birthday="1990-05-17")
    assert member.tier_code == "bronze"
    balance = loyalty.balance("u1")
    assert (balance.available, balance.pending) == (100, 0)
    assert signal_log.of("member_enrolled") == [
        {"user_id": "u1", "member_id": member.id, "points": 100, "referred_by": None}
    ]


def test_joining_twice_is_refused(loyalty):
    loyalty.enroll("u1")
    with pytest.raises(AlreadyEnrolled):
        loyalty.enroll("u1")
    assert len(entries(loyalty, kind="signup")) == 1


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"birthday": "2999-01-01"}, "birthday"),
        ({"birthday": "17/05/1990"}, "birthday"),
        ({"referral_code": "NOSUCHCODE"}, "referral_code"),
        ({"name": "x" * 201}, "name"),
    ],
)
def test_bad_enrolment_is_refused_with_the_field_named(loyalty, kwargs, field):
    with pytest.raises(BadInput) as refused:
        loyalty.enroll("u1", **kwargs)
    assert refused.value.field == field
    assert loyalty.get_member("u1") is None


def test_award_counts_once_per_key(loyalty):
    loyalty.enroll("u1")
    first = loyalty.award("u1", None, "review", key="review:sku-1")
    again = loyalty.award("u1", None, "review", key="review:sku-1")
    assert first.points == again.points == 20
    assert again.repeat and not first.repeat
    assert loyalty.balance("u1").available == 120


def test_award_needs_a_member_and_positive_points(loyalty):
    with pytest.raises(NotEnrolled):
        loyalty.award("nobody", 10, "survey", key="s")
    loyalty.enroll("u1")
    with pytest.raises(BadInput):
        loyalty.award("u1", -5, "survey", key="s")


def test_referral_pays_both_sides_once_after_the_first_paid_order(loyalty):
    referrer = loyalty.enroll("u1", email="ann@example.com")
    loyalty.enroll("u2", email="bob@example.com", referral_code=referrer.referral_code.lower())
    assert loyalty.balance("u1").available == 100
    loyalty.record_order("o1", "u2", "20.00")
    loyalty.record_order("o2", "u2", "20.00")
    assert loyalty.balance("u1").available == 400
    assert loyalty.balance("u2").available == 400
    assert len(entries(loyalty, kind="referral")) == 2


def test_no_self_referral(loyalty):
    referrer = loyalty.enroll("u1", email="ann@example.com")
    with pytest.raises(BadInput, match="your own referral code"):
        loyalty.enroll("u1-second-account", email="ANN@example.com", referral_code=referrer.referral_code)


def test_birthday_points_once_a_year_and_on_28_february_for_leap_day_birthdays(loyalty, clock):
    loyalty.enroll("leap", birthday=date(2000, 2, 29))
    loyalty.enroll("may", birthday=date(1990, 5, 17))
    store, settings = loyalty.state().store, loyalty.state().settings
    clock.now = datetime(2026, 2, 28, 6)
    assert birthdays(store, now=clock(), settings=settings).done == 1
    assert birthdays(store, now=clock(), settings=settings).done == 0
    clock.now = datetime(2026, 5, 17, 6)
    assert birthdays(store, now=clock(), settings=settings).done == 1
    assert loyalty.balance("leap").available == loyalty.balance("may").available == 300


def test_manual_adjustment_is_audited_and_shown_with_its_reason(loyalty):
    loyalty.enroll("u1")
    loyalty.adjust("u1", 50, reason="Late delivery", actor="admin@shop")
    loyalty.adjust("u1", -30, reason="Duplicate bonus", actor="admin@shop")
    assert loyalty.balance("u1").available == 120
    adjustments = entries(loyalty, kind="adjust")
    assert [(e.points, e.reason, e.actor) for e in adjustments] == [
        (50, "Late delivery", "admin@shop"),
        (-30, "Duplicate bonus", "admin@shop"),
    ]
    audit = loyalty.state().store.session.query(AuditLog).filter_by(action="adjust_points").all()
    assert [a.actor for a in audit] == ["admin@shop", "admin@shop"]


def test_adjustment_cannot_take_the_balance_below_zero_or_go_without_reason(loyalty):
    loyalty.enroll("u1")
    with pytest.raises(InsufficientPoints):
        loyalty.adjust("u1", -101, reason="oops", actor="admin")
    with pytest.raises(BadInput) as refused:
        loyalty.adjust("u1", 10, reason="  ", actor="admin")
    assert refused.value.field == "reason"
    assert loyalty.balance("u1").available == 100


def test_leaving_erases_personal_data_but_keeps_the_ledger(loyalty):
    member = loyalty.enroll("u1", email="ann@example.com", name="Ann", birthday="1990-05-17")
    loyalty.record_order("o1", "u1", "50.00")
    loyalty.erase_member("u1")
    session = loyalty.state().store.session
    row = session.get(Member, member.id)
    assert (row.email, row.name, row.birthday, row.user_id) == (None, None, None, f"erased:{member.id}")
    assert session.query(Order).one().user_id is None
    assert len(entries(loyalty, member_id=member.id)) == 2
    assert loyalty.get_member("u1") is None
    assert loyalty.verify() == []
    rejoined = loyalty.enroll("u1")
    assert rejoined.id != member.id


def test_award_keys_belong_to_each_member(loyalty):
    loyalty.enroll("u1")
    loyalty.enroll("u2")
    loyalty.award("u1", 10, "survey", key="survey-2026")
    second = loyalty.award("u2", 10, "survey", key="survey-2026")
    assert not second.repeat
    assert loyalty.balance("u2").available == 110
