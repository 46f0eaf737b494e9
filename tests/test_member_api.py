"""The member's JSON API v1 through real HTTP: data, redemption, coupons and their refusals,
each refusal in the one error shape with the right 4xx."""

from __future__ import annotations

import os

import pytest

from loyalty_plugin import Loyalty

from .conftest import login
from .test_portal_pages import member_with_points

API = "/loyalty/api/v1"


@pytest.fixture(autouse=True)
def _no_csrf(app):
    """Programs call the API here; the CSRF test below turns the check back on."""
    app.config["WTF_CSRF_ENABLED"] = False


@pytest.fixture
def rewards(loyalty: Loyalty) -> dict[str, int]:
    made = {
        "five_off": loyalty.create_reward(name="5 off", kind="fixed_amount", cost_points=500, amount="5.00"),
        "big": loyalty.create_reward(name="Big", kind="fixed_amount", cost_points=5000, amount="60.00"),
        "gold": loyalty.create_reward(name="Gold", kind="free_shipping", cost_points=100, min_tier="gold"),
        "gone": loyalty.create_reward(name="Gone", kind="free_shipping", cost_points=100, stock=0),
        "min40": loyalty.create_reward(
            name="Min 40", kind="fixed_amount", cost_points=100, amount="5.00", min_order_total="40.00"
        ),
    }
    return {key: reward.id for key, reward in made.items()}


def error_of(response, status: int) -> str:
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    assert body["error"]["message"]
    return body["error"]["code"]


MEMBER_ENDPOINTS = [
    ("get", "/me"),
    ("get", "/points"),
    ("get", "/rewards"),
    ("post", "/rewards/1/redeem"),
    ("get", "/coupons"),
    ("get", "/coupons/1"),
    ("post", "/coupons/check"),
    ("get", "/recommendations"),
]


@pytest.mark.parametrize(("method", "path"), MEMBER_ENDPOINTS)
def test_member_endpoints_need_a_logged_in_member(client, method, path):
    assert error_of(getattr(client, method)(API + path, json={}), 401) == "login_required"
    login(client, "not-a-member")
    assert error_of(getattr(client, method)(API + path, json={}), 404) == "not_enrolled"


def test_points_are_paginated_filtered_and_checked(client, loyalty):
    loyalty.enroll("u1")
    for n in range(30):
        loyalty.award("u1", 2, "review", key=f"k{n}")
    login(client, "u1")
    first = client.get(f"{API}/points?per_page=25").get_json()
    assert (first["total"], first["pages"], len(first["items"])) == (31, 2, 25)
    assert first["items"][0]["balance_after"] == 160  # newest first
    second = client.get(f"{API}/points?per_page=25&page=2").get_json()
    assert len(second["items"]) == 6
    assert [e["kind"] for e in client.get(f"{API}/points?kind=signup").get_json()["items"]] == ["signup"]
    assert error_of(client.get(f"{API}/points?kind=bogus"), 422) == "bad_input"
    assert error_of(client.get(f"{API}/points?per_page=1000"), 422) == "bad_input"
    assert error_of(client.get(f"{API}/points?page=x"), 422) == "bad_input"


def test_rewards_say_what_the_member_can_afford(client, loyalty, rewards):
    member_with_points(loyalty, "u1", 600)
    login(client, "u1")
    listed = {r["id"]: r for r in client.get(f"{API}/rewards").get_json()["rewards"]}
    assert listed[rewards["five_off"]]["available"] is True
    assert listed[rewards["big"]]["points_short"] == 4400 and listed[rewards["big"]]["available"] is False
    assert listed[rewards["gold"]]["blocked"] == "tier"
    assert listed[rewards["gone"]]["blocked"] == "out_of_stock"
    assert listed[rewards["five_off"]]["amount"] == "5.00"


def test_redeem_returns_the_coupon_and_the_balance_drops(client, loyalty, rewards):
    member_with_points(loyalty, "u1", 600)
    login(client, "u1")
    response = client.post(f"{API}/rewards/{rewards['five_off']}/redeem")
    assert response.status_code == 201
    coupon = response.get_json()["coupon"]
    assert coupon["status"] == "active" and coupon["amount"] == "5.00"
    assert client.get(f"{API}/me").get_json()["points"]["available"] == 100
    assert [c["code"] for c in client.get(f"{API}/coupons?status=active").get_json()["coupons"]] == [coupon["code"]]


@pytest.mark.parametrize(
    ("reward", "status", "code"),
    [
        ("big", 409, "insufficient_points"),
        ("gone", 409, "reward_out_of_stock"),
        ("gold", 409, "reward_tier_restricted"),
        (None, 409, "reward_not_found"),
    ],
)
def test_refused_redemptions_change_nothing(client, loyalty, rewards, reward, status, code):
    member_with_points(loyalty, "u1", 600)
    login(client, "u1")
    reward_id = rewards[reward] if reward else 999_999
    assert error_of(client.post(f"{API}/rewards/{reward_id}/redeem"), status) == code
    assert loyalty.balance("u1").available == 600
    assert loyalty.coupons("u1") == []


def test_api_writes_need_the_csrf_token_from_me(app, client, loyalty, rewards):
    app.config["WTF_CSRF_ENABLED"] = True
    member_with_points(loyalty, "u1", 600)
    login(client, "u1")
    url = f"{API}/rewards/{rewards['five_off']}/redeem"
    assert error_of(client.post(url), 400) == "csrf_failed"
    assert error_of(client.post(url, headers={"X-CSRFToken": "forged"}), 400) == "csrf_failed"
    assert loyalty.coupons("u1") == []
    token = client.get(f"{API}/me").get_json()["csrf_token"]
    assert client.post(url, headers={"X-CSRFToken": token}).status_code == 201


def test_a_member_cannot_see_or_check_someone_elses_coupon(client, loyalty, rewards):
    member_with_points(loyalty, "u1", 600)
    member_with_points(loyalty, "u2", 600)
    theirs = loyalty.redeem("u2", rewards["five_off"])
    mine = loyalty.redeem("u1", rewards["five_off"])
    login(client, "u1")
    assert error_of(client.get(f"{API}/coupons/{theirs.id}"), 404) == "not_found"
    assert client.get(f"{API}/coupons/{mine.id}").get_json()["coupon"]["id"] == mine.id
    check = client.post(f"{API}/coupons/check", json={"code": theirs.code, "order_total": "50.00"})
    assert error_of(check, 409) == "coupon_not_found"
    listed = client.get(f"{API}/coupons").get_json()["coupons"]
    assert [c["id"] for c in listed] == [mine.id]


def test_coupon_check_refusals(client, loyalty, rewards, clock):
    member_with_points(loyalty, "u1", 2000)
    used = loyalty.redeem("u1", rewards["five_off"])
    loyalty.use_coupon(used.code, "u1", "order-1")
    minimum = loyalty.redeem("u1", rewards["min40"])
    fresh = loyalty.redeem("u1", rewards["five_off"])
    login(client, "u1")

    def check(code, total="50.00"):
        return client.post(f"{API}/coupons/check", json={"code": code, "order_total": total})

    assert check(fresh.code).get_json()["discount"]["amount"] == "5.00"
    assert check(fresh.code, "3.00").get_json()["discount"]["amount"] == "3.00"  # never more than the order
    assert error_of(check(used.code), 409) == "coupon_used"
    assert error_of(check(minimum.code, "39.99"), 409) == "coupon_min_order"
    assert error_of(check("NOT-A-CODE"), 409) == "coupon_not_found"
    assert error_of(check(fresh.code, "-1"), 422) == "bad_input"
    assert error_of(client.post(f"{API}/coupons/check", data="not json"), 422) == "bad_input"
    assert error_of(client.post(f"{API}/coupons/check", json={"code": fresh.code, "x": 1}), 422) == "bad_input"
    clock.advance(days=91)
    assert error_of(check(fresh.code), 409) == "coupon_expired"


def test_coupon_checking_is_rate_limited_per_member(app, client):
    # Set up in a context of its own: Flask-Login keeps the user in the app context's ``g``,
    # and an app context held open around the requests would keep u1 logged in after the switch.
    with app.app_context():
        Loyalty().enroll("u1")
        Loyalty().enroll("u2")
    login(client, "u1")
    statuses = [
        client.post(f"{API}/coupons/check", json={"code": f"GUESS{n}", "order_total": "10"}).status_code
        for n in range(11)
    ]
    assert statuses == [409] * 10 + [429]
    limited = client.post(f"{API}/coupons/check", json={"code": "GUESS", "order_total": "10"})
    assert error_of(limited, 429) == "too_many_requests"
    assert "Too many attempts" in limited.get_json()["error"]["message"]
    assert int(limited.headers["Retry-After"]) > 0
    login(client, "u2")  # another member has their own allowance
    assert client.post(f"{API}/coupons/check", json={"code": "GUESS", "order_total": "10"}).status_code == 409


def test_recommendations_fall_back_to_popular_items_with_a_reason(client, loyalty):
    loyalty.enroll("u1")
    for n, sku in enumerate(["A", "A", "A", "B", "B", "C"]):
        loyalty.record_order(f"o{n}", f"buyer{n}", "10.00", lines=[{"sku": sku, "qty": 1, "unit_price": "10.00"}])
    login(client, "u1")
    items = client.get(f"{API}/recommendations?limit=2").get_json()["items"]
    assert [(i["sku"], i["reason"]) for i in items] == [("A", "popular"), ("B", "popular")]
    assert error_of(client.get(f"{API}/recommendations?limit=0"), 422) == "bad_input"


def test_with_redis_the_limit_is_shared_by_every_worker(database_url, tmp_path):
    """Two apps on one database stand for two worker processes; memory counts would double."""
    import uuid

    import redis

    from .conftest import make_app

    url = os.environ.get("LOYALTY_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    try:
        redis.Redis.from_url(url).ping()
    except redis.exceptions.ConnectionError:
        if os.environ.get("LOYALTY_REQUIRE_POSTGRES"):  # CI, whose machine runs Redis as well
            pytest.fail(f"Redis is not reachable at {url}")
        pytest.skip(f"Redis run skipped: start Redis or set LOYALTY_TEST_REDIS_URL (tried {url})")
    config = {"LOYALTY_RATE_LIMIT_STORAGE_URI": url, "WTF_CSRF_ENABLED": False}
    workers = [make_app(database_url, str(tmp_path / f"worker{n}"), **config) for n in range(2)]
    user = f"u-{uuid.uuid4().hex}"  # counts live a minute in Redis: a fresh member each run
    try:
        with workers[0].app_context():
            Loyalty().enroll(user)
        statuses = []
        for n in range(12):
            client = workers[n % 2].test_client()
            login(client, user)
            statuses.append(client.post(f"{API}/coupons/check", json={"code": "GUESS", "order_total": "1"}).status_code)
        assert statuses == [409] * 10 + [429] * 2
    finally:
        for app in workers:
            app.extensions["loyalty"].close()


def test_popular_items_are_reused_for_ten_minutes_then_recounted(app, client, clock):
    def buy(n: int, sku: str) -> None:
        with app.app_context():
            Loyalty().record_order(f"o-{sku}-{n}", f"b{n}", "1.00", lines=[{"sku": sku, "qty": 1, "unit_price": "1"}])

    with app.app_context():
        Loyalty().enroll("u1")
    buy(0, "A")
    login(client, "u1")

    def first() -> str:
        return client.get(f"{API}/recommendations?limit=1").get_json()["items"][0]["sku"]

    assert first() == "A"
    for n in range(3):
        buy(n, "B")
    assert first() == "A"  # the ranking of a minute ago
    clock.advance(minutes=11)
    assert first() == "B"
