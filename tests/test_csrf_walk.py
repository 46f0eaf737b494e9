"""Every state-changing route of the plugin refuses a request without the session's CSRF token,
or with a forged one, and changes nothing. The routes come from ``app.url_map``, so a route
added later is walked without anyone adding it here. Member pages and the API are walked as a
member, the admin area as an admin (a member would be refused before the token is looked at)."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from loyalty_plugin import Loyalty
from loyalty_plugin.models import AuditLog, Coupon, JobRun, LedgerEntry, Member, Reward

from .conftest import login
from .test_portal_pages import member_with_points

#: Signed by the shop's server instead (tests/test_webhooks.py), and the API's 404/405 catch-all.
NOT_COOKIE_AUTHENTICATED = {"loyalty_api.order_webhook", "loyalty_api.refund_webhook", "loyalty_api.no_such_endpoint"}
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


def state_changing_routes(app) -> list[tuple[str, str, str]]:
    found = []
    for rule in app.url_map.iter_rules():
        if (
            not rule.endpoint.startswith(("loyalty.", "loyalty_api.", "loyalty_admin."))
            or rule.endpoint in NOT_COOKIE_AUTHENTICATED
        ):
            continue
        for method in sorted(rule.methods & UNSAFE):
            url = re.sub(r"<(?:\w+:)?(\w+)>", "1", rule.rule)
            found.append((rule.endpoint, method, url))
    return found


def snapshot(app) -> tuple[object, ...]:
    with app.extensions["loyalty"].store.engine.connect() as connection:
        counts = tuple(
            connection.scalar(select(func.count()).select_from(model))
            for model in (LedgerEntry, Coupon, Member, AuditLog, Reward, JobRun)
        )
        balance = connection.scalar(select(func.sum(Member.points_balance)))
        erased = connection.scalar(select(func.count()).where(Member.erased_at.is_not(None)))
        rewards = tuple(connection.execute(select(Reward.name, Reward.active, Reward.cost_points).order_by(Reward.id)))
    return (*counts, balance, erased, rewards)


def test_the_walk_finds_the_routes_it_must_guard(app):
    endpoints = {endpoint for endpoint, _, _ in state_changing_routes(app)}
    assert {"loyalty.join", "loyalty.redeem", "loyalty.leave", "loyalty_api.redeem"} <= endpoints
    assert {
        "loyalty_admin.adjust",
        "loyalty_admin.reward_new",
        "loyalty_admin.reward_edit",
        "loyalty_admin.reward_retire",
        "loyalty_admin.run_job",
    } <= endpoints


@pytest.mark.parametrize("token", [None, "forged-token"])
def test_every_state_changing_route_refuses_a_missing_or_forged_csrf_token(app, client, loyalty, token):
    app.config["WTF_CSRF_ENABLED"] = True
    reward = loyalty.create_reward(name="5 off", kind="fixed_amount", cost_points=100, amount="5.00")
    assert reward.id == 1  # the walk fills every <id> with 1
    member_with_points(loyalty, "u1", 600)
    login(client, "u1")
    client.get("/loyalty/")  # the session has a CSRF secret, as in a real visit
    before = snapshot(app)
    routes = [route for route in state_changing_routes(app) if not route[0].startswith("loyalty_admin.")]
    for endpoint, method, url in routes:
        data = {"csrf_token": token} if token else {}
        data |= {"accept_terms": "y", "confirm": "y", "code": "X", "order_total": "1"}
        headers = {"X-CSRFToken": token} if token else {}
        if endpoint.startswith("loyalty_api."):
            response = client.open(url, method=method, json=data, headers=headers)
            assert response.status_code == 400, (endpoint, response.status_code)
            assert response.get_json()["error"]["code"] == "csrf_failed"
        else:
            response = client.open(url, method=method, data=data, headers=headers)
            assert response.status_code == 400, (endpoint, response.status_code)
            assert "This form expired" in response.get_data(as_text=True)
    assert snapshot(app) == before


@pytest.mark.parametrize("token", [None, "forged-token"])
def test_every_admin_form_refuses_a_missing_or_forged_csrf_token(app, token):
    """Set up in an app context of its own: a request inside the test's context would share its
    ``g``, where Flask-Login keeps the user it loaded first."""
    app.config["WTF_CSRF_ENABLED"] = True
    with app.app_context():
        loyalty = Loyalty()
        loyalty.create_reward(name="5 off", kind="fixed_amount", cost_points=100, amount="5.00")
        member_with_points(loyalty, "u1", 600)
    admin = app.test_client()
    login(admin, "admin-1")
    admin.get("/loyalty/admin/jobs")  # a page with forms: the session gets its CSRF secret
    before = snapshot(app)
    routes = [route for route in state_changing_routes(app) if route[0].startswith("loyalty_admin.")]
    assert routes
    for endpoint, method, url in routes:
        data = {"csrf_token": token} if token else {}
        data |= {"points": "50", "reason": "goodwill", "name": "New", "kind": "free_shipping", "cost_points": "10"}
        headers = {"X-CSRFToken": token} if token else {}
        response = admin.open(url, method=method, data=data, headers=headers)
        assert response.status_code == 400, (endpoint, response.status_code)
        assert "This form expired" in response.get_data(as_text=True)
    assert snapshot(app) == before
