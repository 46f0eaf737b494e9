"""The demo shop end to end over HTTP: a host that mounts the plugin with its own ``db``.

Every test runs on SQLite and, when ``LOYALTY_TEST_DATABASE_URL`` is set, on PostgreSQL.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import ROUND_DOWN, Decimal
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

import wsgi
from loyalty_plugin import InvalidCoupon
from loyalty_plugin.demo import demo_catalog
from loyalty_plugin.money import utcnow

from .conftest import PG_URL, empty_postgres, skip_without_postgres

ADMIN_PASSWORD = "admin-test-password"
PRICES = {item.sku: item.price for item in demo_catalog()}
ESPRESSO_MACHINE = "KIT-020"
BEANS = "COF-001"
TOKEN = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


@pytest.fixture(params=["sqlite", "postgresql"])
def shop_database(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/shop.sqlite"
    if not PG_URL:
        skip_without_postgres()
    return empty_postgres(PG_URL)


@pytest.fixture
def shop(shop_database: str, clock: Any) -> Iterator[Flask]:
    """The demo shop, set up with its own commands, on a clock the test can move."""
    app = wsgi.create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "test-secret",
            "SQLALCHEMY_DATABASE_URI": shop_database,
            "DEMO_ADMIN_PASSWORD": ADMIN_PASSWORD,
        }
    )
    clock.now = utcnow()
    app.extensions["loyalty"].clock = clock
    runner = app.test_cli_runner()
    for command in (["loyalty", "db", "upgrade"], ["demo", "init-db"]):
        result = runner.invoke(args=command)
        assert result.exit_code == 0, result.output
    yield app
    with app.app_context():
        app.extensions["loyalty"].close()
        wsgi.db.engine.dispose()


@pytest.fixture
def browser(shop: Flask) -> FlaskClient:
    return shop.test_client()


def token(client: FlaskClient, path: str) -> str:
    match = TOKEN.search(client.get(path).get_data(as_text=True))
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def sign_up(client: FlaskClient, email: str, *, join: bool) -> None:
    form = {
        "csrf_token": token(client, "/signup"),
        "name": "Test Customer",
        "email": email,
        "password": "a-long-password",
        "confirm": "a-long-password",
    }
    if join:
        form["join"] = "y"
    response = client.post("/signup", data=form)
    assert response.status_code == 302, response.get_data(as_text=True)


def log_in(client: FlaskClient, email: str, password: str) -> None:
    response = client.post("/login", data={"csrf_token": token(client, "/login"), "email": email, "password": password})
    assert response.status_code == 302


def add_to_cart(client: FlaskClient, sku: str, qty: int) -> None:
    response = client.post(f"/cart/add/{sku}", data={"csrf_token": token(client, f"/items/{sku}"), "qty": str(qty)})
    assert response.status_code == 302


def check_out(client: FlaskClient, coupon: str = "") -> Any:
    form = {"csrf_token": token(client, "/checkout"), "coupon": coupon, "place": "1"}
    return client.post("/checkout", data=form, follow_redirects=True)


def me(client: FlaskClient) -> dict[str, Any]:
    response = client.get("/loyalty/api/v1/me")
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def user_id(shop: Flask, email: str) -> str:
    with shop.app_context():
        return wsgi.db.session.scalar(select(wsgi.User.id).where(wsgi.User.email == email))


def shop_orders(shop: Flask) -> int:
    with shop.app_context():
        return wsgi.db.session.scalar(select(func.count()).select_from(wsgi.ShopOrder))


def points_for(amount: Decimal) -> int:
    """Bronze earns one point per whole unit paid."""
    return int(amount.to_integral_value(rounding=ROUND_DOWN))


def release_pending_points(shop: Flask, clock: Any) -> None:
    clock.advance(days=15)
    result = shop.test_cli_runner().invoke(args=["loyalty", "run-job", "release"])
    assert result.exit_code == 0, result.output


def five_off_coupon(shop: Flask, uid: str) -> str:
    """Redeem through the facade, as a host's own rewards page would, and commit as the host."""
    with shop.app_context():
        reward = wsgi.loyalty.create_reward(name="5.00 off", kind="fixed_amount", cost_points=500, amount="5.00")
        wsgi.db.session.commit()
        code = wsgi.loyalty.redeem(uid, reward.id).code
        wsgi.db.session.commit()
    return code


def test_customer_joins_on_the_plugin_page_buys_and_sees_points_pending(browser: FlaskClient) -> None:
    sign_up(browser, "ann@example.com", join=False)
    assert browser.get("/loyalty/").headers["Location"].endswith("/loyalty/join")
    joined = browser.post("/loyalty/join", data={"csrf_token": token(browser, "/loyalty/join"), "accept_terms": "y"})
    assert joined.status_code == 302
    points = me(browser)["points"]
    assert (points["available"], points["pending"]) == (100, 0)

    add_to_cart(browser, BEANS, 3)
    page = check_out(browser)

    assert "Thank you! Order" in page.get_data(as_text=True)
    assert me(browser)["points"]["pending"] == points_for(PRICES[BEANS] * 3)
    assert "Classic espresso beans 1 kg" in browser.get("/orders").get_data(as_text=True)


def test_join_box_at_sign_up_enrolls_the_customer(browser: FlaskClient) -> None:
    sign_up(browser, "ben@example.com", join=True)

    assert me(browser)["points"]["available"] == 100


def test_customer_who_did_not_join_buys_without_points(shop: Flask, browser: FlaskClient) -> None:
    sign_up(browser, "cy@example.com", join=False)
    add_to_cart(browser, BEANS, 1)

    page = check_out(browser).get_data(as_text=True)

    assert "Thank you! Order" in page and "You earned" not in page
    assert browser.get("/loyalty/api/v1/me").status_code == 404


def test_coupon_from_points_pays_part_of_an_order_and_is_used(shop: Flask, browser: FlaskClient, clock: Any) -> None:
    sign_up(browser, "dee@example.com", join=True)
    add_to_cart(browser, ESPRESSO_MACHINE, 2)
    check_out(browser)
    release_pending_points(shop, clock)
    code = five_off_coupon(shop, user_id(shop, "dee@example.com"))
    add_to_cart(browser, BEANS, 3)
    assert wsgi.grouped(code) in browser.get("/checkout").get_data(as_text=True)

    page = check_out(browser, coupon=code).get_data(as_text=True)

    goods = PRICES[BEANS] * 3
    assert f"Coupon <code>{wsgi.grouped(code)}</code> used" in browser.get("/orders").get_data(as_text=True)
    assert "Thank you! Order" in page
    state = me(browser)
    assert state["coupons"] == []
    assert state["points"]["available"] == 100 + points_for(PRICES[ESPRESSO_MACHINE] * 2) - 500
    assert state["points"]["pending"] == points_for(goods - Decimal("5.00"))
    with shop.test_request_context(), pytest.raises(InvalidCoupon) as refused:
        wsgi.loyalty.check_coupon(code, user_id(shop, "dee@example.com"), goods)
    assert refused.value.reason == "used"


def test_used_coupon_is_refused_at_checkout_with_the_plugins_message(
    shop: Flask, browser: FlaskClient, clock: Any
) -> None:
    sign_up(browser, "eve@example.com", join=True)
    add_to_cart(browser, ESPRESSO_MACHINE, 2)
    check_out(browser)
    release_pending_points(shop, clock)
    code = five_off_coupon(shop, user_id(shop, "eve@example.com"))
    add_to_cart(browser, BEANS, 1)
    check_out(browser, coupon=code)
    add_to_cart(browser, BEANS, 1)

    page = check_out(browser, coupon=code).get_data(as_text=True)

    assert "This coupon has already been used." in page
    assert shop_orders(shop) == 2


def test_admin_refunds_claw_points_back_in_proportion(shop: Flask, browser: FlaskClient) -> None:
    sign_up(browser, "fay@example.com", join=True)
    add_to_cart(browser, ESPRESSO_MACHINE, 2)
    check_out(browser)
    paid = PRICES[ESPRESSO_MACHINE] * 2
    earned = points_for(paid)
    admin = shop.test_client()
    log_in(admin, wsgi.DEFAULT_ADMIN_EMAIL, ADMIN_PASSWORD)
    with shop.app_context():
        order_id = wsgi.db.session.scalar(select(wsgi.ShopOrder.id))

    half = PRICES[ESPRESSO_MACHINE]
    refunded = admin.post(
        f"/admin/orders/{order_id}/refund",
        data={"csrf_token": token(admin, "/admin/orders"), "amount": str(half)},
        follow_redirects=True,
    )

    assert "points taken back" in refunded.get_data(as_text=True)
    assert me(browser)["points"]["pending"] == earned - points_for(earned * half / paid)
    admin.post(
        f"/admin/orders/{order_id}/refund",
        data={"csrf_token": token(admin, "/admin/orders"), "amount": str(paid - half)},
    )
    assert me(browser)["points"]["pending"] == 0
    assert "fully refunded" in admin.get("/admin/orders").get_data(as_text=True)


def test_refund_larger_than_what_is_left_is_refused(shop: Flask, browser: FlaskClient) -> None:
    sign_up(browser, "gus@example.com", join=True)
    add_to_cart(browser, BEANS, 1)
    check_out(browser)
    admin = shop.test_client()
    log_in(admin, wsgi.DEFAULT_ADMIN_EMAIL, ADMIN_PASSWORD)
    with shop.app_context():
        order_id = wsgi.db.session.scalar(select(wsgi.ShopOrder.id))

    page = admin.post(
        f"/admin/orders/{order_id}/refund",
        data={"csrf_token": token(admin, "/admin/orders"), "amount": "999.00"},
        follow_redirects=True,
    ).get_data(as_text=True)

    assert "is left to refund" in page
    assert me(browser)["points"]["pending"] == points_for(PRICES[BEANS])


def test_admin_page_refuses_customers_and_sends_visitors_to_log_in(shop: Flask, browser: FlaskClient) -> None:
    visitor = shop.test_client()
    assert "/login?next=" in visitor.get("/admin/orders").headers["Location"]
    sign_up(browser, "hal@example.com", join=True)

    assert browser.get("/admin/orders").status_code == 403
    assert (
        browser.post("/admin/orders/1/refund", data={"csrf_token": token(browser, "/"), "amount": "1"}).status_code
        == 403
    )


def test_checkout_without_csrf_token_is_refused(shop: Flask, browser: FlaskClient) -> None:
    sign_up(browser, "ida@example.com", join=True)
    add_to_cart(browser, BEANS, 1)

    response = browser.post("/checkout", data={"coupon": "", "place": "1"})

    assert response.status_code == 400
    assert shop_orders(shop) == 0
    assert me(browser)["points"]["pending"] == 0


def test_catalog_lists_about_200_items_and_filters_by_category(browser: FlaskClient) -> None:
    pantry = browser.get("/?category=Pantry").get_data(as_text=True)
    skus = re.findall(r'data-sku="([A-Z]+)-\d+"', pantry)

    assert len(set(PRICES)) == 200
    assert skus and set(skus) == {"PAN"}
    assert len(re.findall(r'href="/\?category=', browser.get("/").get_data(as_text=True))) == 10


def test_login_goes_back_only_to_a_page_of_this_shop(browser: FlaskClient) -> None:
    sign_up(browser, "jo@example.com", join=False)
    browser.post("/logout", data={"csrf_token": token(browser, "/")})
    form = {"csrf_token": token(browser, "/login"), "email": "jo@example.com", "password": "a-long-password"}

    assert browser.post("/login?next=//evil.example/x", data=form).headers["Location"] == "/"
    browser.post("/logout", data={"csrf_token": token(browser, "/")})
    form["csrf_token"] = token(browser, "/login")
    assert browser.post("/login?next=/orders", data=form).headers["Location"] == "/orders"


def test_item_info_hook_answers_from_the_shops_products(shop: Flask) -> None:
    with shop.test_request_context():
        info = shop.extensions["loyalty"].item_info([BEANS, "NO-SUCH"])

    assert list(info) == [BEANS]
    assert info[BEANS]["price"] == PRICES[BEANS]
    assert info[BEANS]["url"] == f"/items/{BEANS}" and info[BEANS]["in_stock"] is True
