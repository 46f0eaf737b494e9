"""The signed order and refund webhooks, and the member's own JSON."""

from __future__ import annotations

import json
import re
import time

import pytest

from loyalty_plugin import Loyalty, sign_webhook

from .conftest import login

SECRET = "whsec-test-0123456789abcdef"
ORDER = {"order_id": "w1", "user_id": "u1", "total": 42.5, "lines": [{"sku": "A", "qty": 1, "unit_price": 42.5}]}


def post(client, path, payload, *, secret=SECRET, timestamp=None, header=None):
    body = json.dumps(payload).encode()
    signature = header if header is not None else sign_webhook(body, secret, timestamp)
    return client.post(
        f"/loyalty/api/v1/{path}",
        data=body,
        headers={"Content-Type": "application/json", "X-Loyalty-Signature": signature},
    )


def assert_error(response, status, code=None):
    assert response.status_code == status, response.get_json()
    error = response.get_json()["error"]
    assert error["message"]
    if code:
        assert error["code"] == code


def test_signed_order_is_recorded_and_a_replay_changes_nothing(loyalty, client):
    loyalty.enroll("u1")
    first = post(client, "orders", ORDER)
    assert first.status_code == 201
    assert first.get_json()["points_awarded"] == 42
    replay = post(client, "orders", ORDER)
    assert replay.status_code == 200 and replay.get_json()["repeat"] is True
    assert loyalty.balance("u1").pending == 42


def test_signed_refund_claws_back(loyalty, client):
    loyalty.enroll("u1")
    post(client, "orders", ORDER)
    response = post(client, "refunds", {"refund_id": "rf1", "order_id": "w1", "amount": "21.25"})
    assert response.status_code == 201 and response.get_json()["points_clawed_back"] == 21


@pytest.mark.parametrize(
    ("kwargs", "why"),
    [
        ({"header": ""}, "missing"),
        ({"header": "v1=abc"}, "look like"),
        ({"secret": "whsec-wrong-0123456789abcdef"}, "does not match"),
        ({"age": 400}, "too far"),
        ({"age": -400}, "too far"),
    ],
)
def test_unsigned_wrongly_signed_or_stale_deliveries_are_refused(loyalty, client, kwargs, why):
    loyalty.enroll("u1")
    if "age" in kwargs:
        kwargs = {"timestamp": int(time.time()) - kwargs["age"]}
    response = post(client, "orders", ORDER, **kwargs)
    assert_error(response, 401, "bad_signature")
    assert why in response.get_json()["error"]["message"]
    assert loyalty.balance("u1").pending == 0


def test_a_tampered_body_is_refused(loyalty, client):
    body = json.dumps(ORDER).encode()
    signature = sign_webhook(body, SECRET)
    response = client.post(
        "/loyalty/api/v1/orders",
        data=body.replace(b"42.5", b"4200.5"),
        headers={"Content-Type": "application/json", "X-Loyalty-Signature": signature},
    )
    assert_error(response, 401, "bad_signature")


def test_any_configured_secret_signs_so_secrets_can_rotate(configured):
    with configured(LOYALTY_WEBHOOK_SECRET=["new-secret-0123456789", SECRET]):
        from flask import current_app

        test_client = current_app.test_client()
        assert post(test_client, "orders", ORDER, secret="new-secret-0123456789").status_code == 201
        assert post(test_client, "orders", {**ORDER, "order_id": "w2"}).status_code == 201


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        ({**ORDER, "total": "12.345"}, 422, "bad_input"),
        ({**ORDER, "colour": "red"}, 422, "bad_input"),
        ([1, 2], 422, "bad_input"),
        ({**ORDER, "total": 43}, 409, "conflicting_duplicate"),
    ],
)
def test_bad_deliveries_get_a_clear_4xx_and_write_nothing(loyalty, client, payload, status, code):
    loyalty.enroll("u1")
    post(client, "orders", ORDER)
    response = post(client, "orders", payload)
    assert_error(response, status, code)
    assert loyalty.balance("u1").pending == 42


def test_webhooks_are_off_without_a_secret(configured):
    with configured(LOYALTY_WEBHOOK_SECRET=[]):
        from flask import current_app

        response = post(current_app.test_client(), "orders", ORDER)
        assert_error(response, 401, "bad_signature")
        assert "LOYALTY_WEBHOOK_SECRET" in response.get_json()["error"]["message"]


def test_me_needs_a_login_and_shows_only_the_logged_in_member(app, client):
    # Requests get an app context of their own, as in production (the `loyalty` fixture's
    # context would be shared and cache the anonymous user in `g`).
    with app.app_context():
        loyalty = Loyalty()
        loyalty.enroll("u1")
        loyalty.enroll("u2")
        loyalty.record_order("o1", "u2", "70.00")
        loyalty.record_order("o2", "u1", "120.00", shipping="20.00")
        loyalty.record_refund("r2", "o2", "10.00")
    assert_error(client.get("/loyalty/api/v1/me"), 401, "login_required")
    login(client, "u1")
    me = client.get("/loyalty/api/v1/me").get_json()
    assert "points" in me, me
    assert me["points"] == {
        "available": 100,
        "pending": 92,  # 100 earned on 120 less 20 shipping; 8 clawed back by the 10.00 refund
        "owed": 0,
        "expiring_soon": 0,
        "next_expiry": me["points"]["next_expiry"],
    }
    assert me["member"]["tier"]["code"] == "bronze"
    assert me["member"]["tier"]["qualifying_spend"] == "90.00"  # paid, less shipping and the refund
    assert me["member"]["tier"]["next"]["spend_to_go"] == "910.00"
    assert me["member"]["tier"]["next"]["code"] == "silver"
    login(client, "stranger")
    assert_error(client.get("/loyalty/api/v1/me"), 404, "not_enrolled")


def test_openapi_describes_every_api_route(app, client):
    document = client.get("/loyalty/api/v1/openapi.json").get_json()
    assert document["openapi"] == "3.1.0"
    prefix = "/loyalty/api/v1"
    routes = {
        (re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule.removeprefix(prefix)), method.lower())
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("loyalty_api.") and rule.endpoint != "loyalty_api.no_such_endpoint"
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    described = {(path, method) for path, ops in document["paths"].items() for method in ops}
    assert routes == described


def test_a_wrong_path_or_method_under_the_api_gets_the_json_error_shape(client):
    assert_error(client.get("/loyalty/api/v1/no-such-thing"), 404, "not_found")
    wrong_method = client.post("/loyalty/api/v1/me")
    assert_error(wrong_method, 405, "method_not_allowed")
    assert wrong_method.headers["Allow"] == "GET"


@pytest.mark.parametrize("csrf_first", [True, False])
def test_signed_webhooks_pass_a_hosts_csrf_protection_set_up_in_either_order(database_url, tmp_path, csrf_first):
    from flask import Flask
    from flask_login import LoginManager
    from flask_wtf.csrf import CSRFProtect

    from loyalty_plugin.models import Base

    app = Flask("csrf_host", instance_path=str(tmp_path))
    app.config.update(SECRET_KEY="k", LOYALTY_DATABASE_URI=database_url, LOYALTY_WEBHOOK_SECRET=SECRET)
    LoginManager(app)
    if csrf_first:
        CSRFProtect(app)
    Loyalty(app)
    if not csrf_first:
        CSRFProtect(app)
    Base.metadata.create_all(app.extensions["loyalty"].store.engine)
    client = app.test_client()
    assert post(client, "orders", ORDER).status_code == 201
    assert client.post("/loyalty/join", data={"accept_terms": "y"}).status_code == 400
    app.extensions["loyalty"].close()
