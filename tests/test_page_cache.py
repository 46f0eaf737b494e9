"""The dashboard is rendered once per member version and reused: every change the plugin makes
shows on the next request, time passing shows within the time-to-live, and nothing of one
request (flashed messages, another member, another language) leaks into another."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import update

from loyalty_plugin import Loyalty
from loyalty_plugin.models import Member

from .conftest import login

EN = {"Accept-Language": "en-US"}


def available(client, headers=EN) -> int:
    html = client.get("/loyalty/", headers=headers).get_data(as_text=True)
    return int(re.search(r'data-testid="points-available">([\d,]+)<', html).group(1).replace(",", ""))


def dashboard(client, headers=EN) -> str:
    return client.get("/loyalty/", headers=headers).get_data(as_text=True)


def act(app, do) -> None:
    """Change something through the public API, in its own app context, as a shop would."""
    with app.app_context():
        do(Loyalty())


def test_a_page_is_reused_until_the_member_changes(app, client):
    act(app, lambda loyalty: loyalty.enroll("u1"))
    login(client, "u1")
    assert available(client) == 100
    engine = app.extensions["loyalty"].store.engine
    with engine.begin() as connection:  # behind the plugin's back: no version bump
        connection.execute(update(Member).values(points_balance=999))
    assert available(client) == 100  # served from the cache
    act(app, lambda loyalty: loyalty.award("u1", 5, "review", key="k1"))
    assert available(client) == 999 + 5  # the award bumped the version: rendered afresh


@pytest.mark.parametrize(
    ("change", "shows"),
    [
        (lambda loyalty: loyalty.award("u1", 50, "review", key="k"), "Activity points"),
        (lambda loyalty: loyalty.record_order("o9", "u1", "0.50"), "$999.50 more"),  # no points, but spend
        (lambda loyalty: loyalty.redeem("u1", 1), "You have 1 coupon ready to use."),
        (lambda loyalty: loyalty.adjust("u1", -10, reason="typo", actor="admin"), "Adjustment"),
    ],
)
def test_every_change_shows_on_the_next_request(app, client, change, shows):
    def setup(loyalty: Loyalty) -> None:
        loyalty.enroll("u1")
        loyalty.create_reward(name="5 off", kind="fixed_amount", cost_points=100, amount="5.00")

    act(app, setup)
    login(client, "u1")
    assert shows not in dashboard(client)
    act(app, change)
    assert shows in dashboard(client)


def test_using_and_getting_back_a_coupon_show_at_once(app, client):
    def setup(loyalty: Loyalty) -> None:
        loyalty.enroll("u1")
        reward = loyalty.create_reward(name="5 off", kind="fixed_amount", cost_points=100, amount="5.00")
        loyalty.redeem("u1", reward.id)

    act(app, setup)
    login(client, "u1")
    assert "1 coupon ready" in dashboard(client)
    with app.app_context():
        code = Loyalty().coupons("u1")[0].code
    act(app, lambda loyalty: loyalty.record_order("o1", "u1", "20.00"))
    act(app, lambda loyalty: loyalty.use_coupon(code, "u1", "o1"))
    assert "coupon ready" not in dashboard(client)
    act(app, lambda loyalty: loyalty.record_refund("r1", "o1", "20.00"))  # a full refund gives it back
    assert "1 coupon ready" in dashboard(client)


def test_a_tier_change_shows_at_once(app, client):
    act(app, lambda loyalty: loyalty.enroll("u1"))
    login(client, "u1")
    assert 'data-testid="tier-name">Bronze<' in dashboard(client)
    act(app, lambda loyalty: loyalty.record_order("o1", "u1", "1500.00"))
    act(app, lambda loyalty: loyalty.evaluate_tiers())
    assert 'data-testid="tier-name">Silver<' in dashboard(client)


def test_time_passing_shows_within_the_time_to_live(app, client, clock):
    act(app, lambda loyalty: loyalty.enroll("u1"))
    login(client, "u1")
    dashboard(client)
    engine = app.extensions["loyalty"].store.engine
    with engine.begin() as connection:
        connection.execute(update(Member).values(points_balance=321))
    clock.advance(seconds=299)
    assert available(client) == 100
    clock.advance(seconds=2)
    assert available(client) == 321


def test_flashed_messages_and_languages_are_not_baked_into_the_page(app, client):
    app.config["WTF_CSRF_ENABLED"] = False
    login(client, "u1")
    client.post("/loyalty/join", data={"accept_terms": "y"})
    assert "Welcome! 100 points are yours." in dashboard(client)
    assert "Welcome!" not in dashboard(client)  # shown once, though the body came from the cache
    chinese = dashboard(client, {"Accept-Language": "zh-CN"})
    assert 'lang="zh-Hans"' in chinese and 'lang="zh-Hans"' not in dashboard(client)


def test_members_never_get_each_others_page(app, client):
    def setup(loyalty: Loyalty) -> None:
        loyalty.enroll("u1")
        loyalty.enroll("u2")
        loyalty.award("u2", 77, "review", key="k")

    act(app, setup)
    login(client, "u1")
    assert available(client) == 100
    other = app.test_client()
    login(other, "u2")
    assert available(other) == 177
    assert available(client) == 100


def test_the_cache_can_be_turned_off(configured):
    with configured(LOYALTY_PAGE_CACHE_SIZE=0) as loyalty:
        from flask import current_app

        app = current_app._get_current_object()
        loyalty.enroll("u1")
    client = app.test_client()
    login(client, "u1")
    assert available(client) == 100
    with app.extensions["loyalty"].store.engine.begin() as connection:
        connection.execute(update(Member).values(points_balance=5))
    assert available(client) == 5
