"""Every admin route refuses anonymous visitors (sent to the host's login) and members who are
not admins (403 with the reason), whatever the method, and changes nothing for them. The
routes come from ``app.url_map``, so a route added later is walked without anyone adding it."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask_login import LoginManager

from loyalty_plugin import Loyalty
from loyalty_plugin.models import Base

from .conftest import User, login
from .test_csrf_walk import snapshot

ADMIN = "loyalty_admin."
#: Every page and action of the admin area, by endpoint: the walk must find them all.
KNOWN = {
    "overview",
    "tiers",
    "keep",
    "segments",
    "churn",
    "models",
    "recommendations",
    "members",
    "member",
    "adjust",
    "rewards",
    "reward_new",
    "reward_edit",
    "reward_retire",
    "jobs",
    "run_job",
    "audit",
    "settings",
}


def admin_routes(app: Flask) -> list[tuple[str, str, str]]:
    """(endpoint, method, url) of every admin route, each ``<parameter>`` filled with 1."""
    found = []
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith(ADMIN):
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            found.append((rule.endpoint, method, re.sub(r"<(?:\w+:)?(\w+)>", "1", rule.rule)))
    return found


def seed(app: Flask) -> None:
    """A member (id 1) and a reward (id 1), so that routes with ids find something to act on."""
    with app.app_context():
        loyalty = Loyalty()
        loyalty.enroll("u1")
        loyalty.create_reward(name="5 off", kind="fixed_amount", cost_points=100, amount="5.00")


def test_the_walk_finds_every_admin_page_and_action(app: Flask) -> None:
    assert {endpoint.removeprefix(ADMIN) for endpoint, _, _ in admin_routes(app)} == KNOWN


def test_anonymous_visitors_are_sent_to_the_hosts_login(app: Flask, client: Any) -> None:
    seed(app)
    before = snapshot(app)
    for endpoint, method, url in admin_routes(app):
        response = client.open(url, method=method, data={"points": "5", "reason": "x"})
        assert response.status_code == 302, (endpoint, method, response.status_code)
        assert response.headers["Location"].startswith("/login?next="), endpoint
    assert snapshot(app) == before


def test_members_who_are_not_admins_are_refused_with_the_reason(app: Flask, client: Any) -> None:
    app.config["WTF_CSRF_ENABLED"] = False  # even a valid form gets no further than the guard
    seed(app)
    login(client, "u1")
    before = snapshot(app)
    for endpoint, method, url in admin_routes(app):
        response = client.open(url, method=method, data={"points": "5", "reason": "x", "name": "y"})
        assert response.status_code == 403, (endpoint, method, response.status_code)
        assert "for the loyalty program&#39;s administrators" in response.get_data(as_text=True), endpoint
    assert snapshot(app) == before


def test_admins_can_open_every_admin_page(app: Flask, client: Any) -> None:
    seed(app)
    login(client, "admin-1")
    for endpoint, method, url in admin_routes(app):
        if method == "GET":
            response = client.get(url)
            assert response.status_code == 200, (endpoint, response.status_code)
            assert response.headers["X-Frame-Options"] == "DENY"
            assert response.headers["Cache-Control"] == "no-store"


def test_the_hosts_is_admin_hook_decides_who_is_an_admin(tmp_path: Any) -> None:
    app = Flask("hooked", instance_path=str(tmp_path))
    app.config.update(SECRET_KEY="k", LOYALTY_DATABASE_URI=f"sqlite:///{tmp_path}/l.sqlite")
    manager = LoginManager(app)
    manager.user_loader(lambda uid: User(uid, is_admin=True))  # the attribute says yes to everyone...
    Loyalty(app, is_admin=lambda user: user.get_id() == "boss")  # ...the hook only to the boss
    Base.metadata.create_all(app.extensions["loyalty"].store.engine)
    boss, clerk = app.test_client(), app.test_client()
    login(boss, "boss")
    login(clerk, "clerk")

    assert boss.get("/loyalty/admin/").status_code == 200
    assert clerk.get("/loyalty/admin/").status_code == 403
    app.extensions["loyalty"].close()


@pytest.mark.parametrize("path", ["/loyalty/admin/members/999999", "/loyalty/admin/rewards/999999"])
def test_unknown_ids_are_not_found(app: Flask, client: Any, path: str) -> None:
    login(client, "admin-1")
    assert client.get(path).status_code == 404
