"""The member pages that exist so far: join and the summary (the portal issue adds the rest)."""

from __future__ import annotations

import re

from loyalty_plugin import Loyalty

from .conftest import login


def csrf_token(page: str) -> str:
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)


def test_anonymous_visitors_go_to_the_hosts_login_and_back(client):
    response = client.get("/loyalty/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")


def test_joining_through_the_page_needs_consent_and_csrf(app, client):
    app.config["WTF_CSRF_ENABLED"] = True
    login(client, "u1")
    assert client.get("/loyalty/").headers["Location"].endswith("/loyalty/join")
    page = client.get("/loyalty/join").get_data(as_text=True)
    no_token = client.post("/loyalty/join", data={"accept_terms": "y"})
    assert "This form expired" in no_token.get_data(as_text=True)
    no_consent = client.post("/loyalty/join", data={"csrf_token": csrf_token(page)})
    assert "Please accept the program terms." in no_consent.get_data(as_text=True)
    with app.app_context():
        assert Loyalty().get_member("u1") is None
    joined = client.post("/loyalty/join", data={"csrf_token": csrf_token(page), "accept_terms": "y"})
    assert joined.status_code == 302
    summary = client.get("/loyalty/").get_data(as_text=True)
    assert 'data-testid="points-available">100<' in summary
    assert "Welcome! 100 points are yours." in summary


def test_joining_takes_the_email_from_the_hosts_user(app, client):
    from .conftest import User

    User.email = property(lambda self: f"{self.id}@example.com")
    try:
        login(client, "u7")
        page = client.get("/loyalty/join").get_data(as_text=True)
        client.post("/loyalty/join", data={"csrf_token": csrf_token(page), "accept_terms": "y"})
    finally:
        del User.email
    with app.app_context():
        assert Loyalty().get_member("u7").email == "u7@example.com"


def test_pages_without_flask_login_fail_with_a_clear_message(tmp_path):
    from flask import Flask

    from loyalty_plugin import ConfigError

    app = Flask("no_login", instance_path=str(tmp_path))
    app.config["SECRET_KEY"] = "k"
    Loyalty(app)
    app.testing = True
    import pytest

    with pytest.raises(ConfigError, match="need Flask-Login"):
        app.test_client().get("/loyalty/")
