"""The member pages through real HTTP (Flask test client), on SQLite and PostgreSQL: what a
member sees, what they can do, and every refusal they can meet."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from flask import Flask, flash, redirect
from flask_login import LoginManager
from sqlalchemy import func, select

from loyalty_plugin import Loyalty
from loyalty_plugin.models import Base, Coupon, LedgerEntry, Member

from .conftest import User, login
from .test_portal import csrf_token

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def page(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code, response.headers.get("Location"))
    return response.get_data(as_text=True)


def member_with_points(loyalty: Loyalty, user_id: str, points: int) -> None:
    loyalty.enroll(user_id)
    extra = points - 100  # the welcome bonus
    if extra:
        loyalty.award(user_id, extra, "review", key=f"seed-{user_id}")


@pytest.fixture
def rewards(loyalty: Loyalty) -> dict[str, int]:
    five_off = loyalty.create_reward(name="5 off", kind="fixed_amount", cost_points=500, amount="5.00")
    big = loyalty.create_reward(name="Big prize", kind="fixed_amount", cost_points=5000, amount="60.00")
    gold = loyalty.create_reward(name="Gold lounge", kind="free_shipping", cost_points=100, min_tier="gold")
    gone = loyalty.create_reward(name="Sold out", kind="free_shipping", cost_points=100, stock=0)
    return {"five_off": five_off.id, "big": big.id, "gold": gold.id, "gone": gone.id}


def coupons_of(app: Flask, user_id: str) -> list[Coupon]:
    with app.app_context():
        return Loyalty().coupons(user_id)


def test_dashboard_shows_points_tier_progress_and_what_expires(app, client, loyalty, clock):
    loyalty.enroll("u1")
    loyalty.record_order("o1", "u1", "90.00", lines=[{"sku": "TEA", "qty": 1, "unit_price": "90.00"}])
    loyalty.record_order("o2", "u2", "12.00", lines=[{"sku": "MUG", "qty": 1, "unit_price": "12.00"}])
    login(client, "u1")
    html = page(client, "/loyalty/")
    assert 'data-testid="points-available">100<' in html
    assert 'data-testid="points-pending">90<' in html
    assert 'data-testid="tier-name">Bronze<' in html
    # Silver needs 1,000 over 12 months; the order counts until a year after it was placed.
    deadline = (clock.now + timedelta(days=365)).strftime("%b %-d, %Y")
    assert f"Spend $910.00 more by {deadline} to reach Silver." in html
    assert 'value="9"' in html  # 90 of 1,000 on the progress bar
    # Popular with other shoppers, and not what the member already has.
    assert re.findall(r'data-testid="recommendation" data-sku="(\w+)"', html) == ["MUG"]

    clock.advance(days=365 - 20)  # the welcome bonus has 20 days left
    html = page(client, "/loyalty/")
    assert 'data-testid="points-expiring"' in html
    assert "100 points expire on" in html


def test_dashboard_says_what_keeps_a_tier(app, client, loyalty, clock):
    loyalty.enroll("u1")
    loyalty.record_order("o1", "u1", "1200.00")
    loyalty.evaluate_tiers()
    login(client, "u1")
    html = page(client, "/loyalty/")
    assert 'data-testid="tier-name">Silver<' in html
    # The order that reached Silver is a year old when the guaranteed year ends: it no longer counts.
    assert "spend $1,000.00 more by then to keep it" in html
    clock.advance(days=200)
    loyalty.record_order("o2", "u1", "10.00")
    assert "spend $990.00 more by then to keep it" in page(client, "/loyalty/")
    loyalty.record_order("o3", "u1", "990.00")
    assert "your spending already keeps it after that" in page(client, "/loyalty/")


def test_visitors_who_have_not_joined_are_sent_to_join_from_every_member_page(client):
    login(client, "newcomer")
    for url in ("/loyalty/", "/loyalty/points", "/loyalty/tiers", "/loyalty/rewards", "/loyalty/coupons"):
        response = client.get(url)
        assert response.status_code == 302 and response.headers["Location"].endswith("/loyalty/join"), url


def test_points_history_pages_and_filters_and_shows_only_the_members_own(app, client, loyalty):
    loyalty.enroll("u1")
    loyalty.enroll("u2")
    for n in range(25):
        loyalty.award("u1", 5, "review", key=f"r{n}")
    loyalty.award("u2", 7, "review", key="other")
    login(client, "u1")
    first = page(client, "/loyalty/points")
    assert first.count("<tr data-kind=") == 20
    assert "Page 1 of 2" in first
    second = page(client, "/loyalty/points?page=2")
    assert second.count("<tr data-kind=") == 6  # 25 reviews + the welcome bonus
    signups = page(client, "/loyalty/points?kind=signup")
    assert signups.count("<tr data-kind=") == 1 and 'data-kind="signup"' in signups
    assert "+7" not in first + second  # u2's entry


def test_tiers_page_lists_every_tier_and_marks_the_members(client, loyalty):
    loyalty.enroll("u1")
    login(client, "u1")
    html = page(client, "/loyalty/tiers")
    for name, threshold in (("Bronze", "$0.00"), ("Silver", "$1,000.00"), ("Gold", "$5,000.00")):
        assert name in html and threshold in html
    current = re.search(r'<tr aria-current="true"[^>]*>\s*<th scope="row">(\w+)', html)
    assert current.group(1) == "Bronze"


def test_rewards_page_says_what_the_member_can_afford_and_why_not(client, loyalty, rewards):
    member_with_points(loyalty, "u1", 600)
    login(client, "u1")
    html = page(client, "/loyalty/rewards")
    assert f"/loyalty/rewards/{rewards['five_off']}/redeem" in html
    assert "4,400 more points needed." in html
    assert "For Gold members and above." in html
    assert "Out of stock." in html
    for blocked in ("big", "gold", "gone"):
        assert f"/loyalty/rewards/{rewards[blocked]}/redeem" not in html


def test_a_reward_out_of_reach_offers_nothing_to_confirm(client, loyalty, rewards):
    member_with_points(loyalty, "u1", 100)
    login(client, "u1")
    for reward in ("five_off", "gold"):
        html = page(client, f"/loyalty/rewards/{rewards[reward]}/redeem")
        assert 'role="alert"' in html and 'data-testid="confirm-redeem"' not in html


def test_redeeming_goes_through_a_confirmation_and_shows_the_coupon(app, client, loyalty, rewards):
    member_with_points(loyalty, "u1", 600)
    login(client, "u1")
    confirm = page(client, f"/loyalty/rewards/{rewards['five_off']}/redeem")
    assert "This costs 500 of your 600 points." in confirm
    assert coupons_of(app, "u1") == []  # looking is not redeeming
    done = client.post(f"/loyalty/rewards/{rewards['five_off']}/redeem", data={"csrf_token": csrf_token(confirm)})
    assert done.status_code == 302 and done.headers["Location"].endswith("/loyalty/coupons")
    [coupon] = coupons_of(app, "u1")
    listed = page(client, "/loyalty/coupons")
    shown = re.search(r'data-testid="coupon-code">([^<]+)<', listed).group(1)
    assert shown.replace("-", "") == coupon.code
    assert f"Your coupon {shown} is ready." in listed
    assert 'data-status="active"' in listed and "$5.00 off" in listed
    assert 'data-testid="points-available">100<' in page(client, "/loyalty/")


@pytest.mark.parametrize(
    ("reward", "points", "message"),
    [
        ("big", 600, "This needs 5,000 points and you have 600 available."),
        ("gone", 600, "This reward is out of stock."),
        ("gold", 600, "This reward is for Gold members and above."),
    ],
)
def test_a_refused_redemption_says_why_and_changes_nothing(app, client, loyalty, rewards, reward, points, message):
    member_with_points(loyalty, "u1", points)
    login(client, "u1")
    token = csrf_token(page(client, f"/loyalty/rewards/{rewards['five_off']}/redeem"))
    refused = client.post(f"/loyalty/rewards/{rewards[reward]}/redeem", data={"csrf_token": token})
    assert refused.status_code == 302 and refused.headers["Location"].endswith("/loyalty/rewards")
    assert message in page(client, "/loyalty/rewards")
    assert coupons_of(app, "u1") == []
    assert loyalty.balance("u1").available == points


def test_a_redemption_without_a_valid_csrf_token_is_refused(app, client, loyalty, rewards):
    app.config["WTF_CSRF_ENABLED"] = True
    member_with_points(loyalty, "u1", 600)
    login(client, "u1")
    url = f"/loyalty/rewards/{rewards['five_off']}/redeem"
    for data in ({}, {"csrf_token": "forged"}):
        refused = client.post(url, data=data)
        assert refused.status_code == 400
        assert "This form expired" in refused.get_data(as_text=True)
    assert coupons_of(app, "u1") == []


def test_too_many_redemptions_are_refused_with_a_page_that_says_so(app, client, loyalty, rewards):
    member_with_points(loyalty, "u1", 100)
    login(client, "u1")
    token = csrf_token(page(client, "/loyalty/coupons/check"))  # any of the member's forms
    statuses = [
        client.post(f"/loyalty/rewards/{rewards['five_off']}/redeem", data={"csrf_token": token}).status_code
        for _ in range(11)
    ]
    assert statuses[:10] == [302] * 10  # each refused for lack of points, each counted
    assert statuses[10] == 429
    blocked = client.post(f"/loyalty/rewards/{rewards['five_off']}/redeem", data={"csrf_token": token})
    assert "Too many attempts" in blocked.get_data(as_text=True)


def test_coupon_tabs_sort_active_used_and_expired(app, client, loyalty, rewards, clock):
    member_with_points(loyalty, "u1", 2000)
    first = loyalty.redeem("u1", rewards["five_off"])
    second = loyalty.redeem("u1", rewards["five_off"])
    loyalty.use_coupon(first.code, "u1", "order-1")
    login(client, "u1")
    assert page(client, "/loyalty/coupons").count('data-status="active"') == 1
    assert page(client, "/loyalty/coupons?status=used").count('data-status="used"') == 1
    clock.advance(days=91)
    assert page(client, "/loyalty/coupons?status=expired").count('data-status="expired"') == 1
    assert 'data-status="active"' not in page(client, "/loyalty/coupons")
    assert second.code


def test_a_member_gets_404_for_someone_elses_coupon(app, client, loyalty, rewards):
    member_with_points(loyalty, "u1", 600)
    member_with_points(loyalty, "u2", 600)
    theirs = loyalty.redeem("u2", rewards["five_off"])
    mine = loyalty.redeem("u1", rewards["five_off"])
    login(client, "u1")
    assert client.get(f"/loyalty/coupons/{theirs.id}").status_code == 404
    assert client.get(f"/loyalty/coupons/{mine.id}").status_code == 200
    assert theirs.code not in page(client, "/loyalty/coupons")


@pytest.mark.parametrize(
    ("whose", "used", "days_later", "message"),
    [
        ("own", False, 0, None),
        ("own", True, 0, "This coupon has already been used."),
        ("own", False, 91, "This coupon has expired."),
        ("other", False, 0, "This coupon code is not valid."),
    ],
)
def test_coupon_check_page(app, client, loyalty, rewards, clock, whose, used, days_later, message):
    member_with_points(loyalty, "u1", 600)
    member_with_points(loyalty, "u2", 600)
    coupon = loyalty.redeem("u1" if whose == "own" else "u2", rewards["five_off"])
    if used:
        loyalty.use_coupon(coupon.code, "u1", "order-1")
    clock.advance(days=days_later)
    login(client, "u1")
    token = csrf_token(page(client, "/loyalty/coupons/check"))
    html = client.post(
        "/loyalty/coupons/check", data={"csrf_token": token, "code": coupon.code, "order_total": "40.00"}
    ).get_data(as_text=True)
    if message is None:
        assert "This coupon takes $5.00 off this order." in html
    else:
        assert message in html and 'data-testid="discount"' not in html


def test_coupon_check_form_says_which_field_is_wrong(client, loyalty):
    loyalty.enroll("u1")
    login(client, "u1")
    token = csrf_token(page(client, "/loyalty/coupons/check"))
    html = client.post("/loyalty/coupons/check", data={"csrf_token": token, "code": "", "order_total": "-3"}).get_data(
        as_text=True
    )
    assert "Please enter a coupon code." in html
    assert "Please enter an amount of 0 or more." in html
    assert 'aria-invalid="true"' in html


def test_referral_page_shows_the_link_and_its_results_without_the_friends_details(app, client, loyalty):
    loyalty.enroll("u1")
    code = loyalty.get_member("u1").referral_code
    loyalty.enroll("friend", email="friend@example.com", name="Fiona Friend", referral_code=code)
    loyalty.enroll("later", referral_code=code)
    loyalty.record_order("f-1", "friend", "30.00")
    login(client, "u1")
    html = page(client, "/loyalty/referral")
    assert f"/loyalty/join?ref={code}" in html
    assert "2 friends joined" in html and "1 bonus earned" in html
    assert "Fiona" not in html and "friend@example.com" not in html


def test_the_referral_link_fills_in_the_code_on_the_join_page(client, loyalty):
    loyalty.enroll("u1")
    code = loyalty.get_member("u1").referral_code
    login(client, "u2")
    html = page(client, f"/loyalty/join?ref={code}")
    assert f'value="{code}"' in html


def test_export_holds_everything_about_the_member_and_nothing_about_others(app, client, loyalty, rewards):
    member_with_points(loyalty, "u1", 600)
    loyalty.enroll("u2", email="other@example.com")
    loyalty.record_order("o1", "u1", "25.00")
    loyalty.redeem("u1", rewards["five_off"])
    login(client, "u1")
    response = client.get("/loyalty/privacy/export.json")
    assert response.status_code == 200
    assert "attachment" in response.headers["Content-Disposition"]
    data = json.loads(response.get_data(as_text=True))
    assert data["member"]["user_id"] == "u1"
    assert {e["kind"] for e in data["ledger"]} >= {"signup", "award", "earn", "redeem"}
    assert len(data["coupons"]) == 1 and data["orders"][0]["order_id"] == "o1"
    assert {"scores", "segments", "tier_history", "point_lots", "churn_alerts"} <= set(data)
    with app.app_context():
        ledger_sum = sum(e["points"] for e in data["ledger"])
        assert ledger_sum == Loyalty().get_member("u1").points_balance
    assert "other@example.com" not in response.get_data(as_text=True)


def test_leaving_erases_personal_data_keeps_the_ledger_and_needs_confirmation(app, client, loyalty, rewards):
    app.config["WTF_CSRF_ENABLED"] = True
    loyalty.enroll("u1", email="me@example.com", name="Me", birthday="1990-05-17")
    loyalty.record_order("o1", "u1", "25.00")
    login(client, "u1")
    privacy = page(client, "/loyalty/privacy")
    unconfirmed = client.post("/loyalty/privacy/leave", data={"csrf_token": csrf_token(privacy)})
    assert unconfirmed.status_code == 400 and "Please tick the box to confirm." in unconfirmed.get_data(as_text=True)
    assert client.post("/loyalty/privacy/leave", data={"confirm": "y"}).status_code == 400  # no token
    assert loyalty.get_member("u1") is not None
    left = client.post("/loyalty/privacy/leave", data={"csrf_token": csrf_token(privacy), "confirm": "y"})
    assert left.status_code == 302 and left.headers["Location"].endswith("/loyalty/join")
    with app.app_context():
        loyalty = Loyalty()
        assert loyalty.get_member("u1") is None
        assert loyalty.verify() == []
        session = app.extensions["loyalty"].store.session
        erased = session.scalars(select(Member).where(Member.erased_at.is_not(None))).one()
        assert (erased.email, erased.name, erased.birthday) == (None, None, None)
        assert session.scalar(select(func.count()).where(LedgerEntry.member_id == erased.id)) == 2


def test_plugin_pages_and_api_send_security_headers(client, loyalty):
    loyalty.enroll("u1")
    login(client, "u1")
    for url in ("/loyalty/", "/loyalty/api/v1/me"):
        headers = client.get(url).headers
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["Cache-Control"] == "no-store"
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]


def host_app(tmp_path, database_url: str, templates: dict[str, str], base: str = "layout.html") -> Flask:
    folder = tmp_path / "host_templates"
    for name, body in templates.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(body)
    app = Flask("host", template_folder=str(folder), instance_path=str(tmp_path / "host_instance"))
    app.config.update(SECRET_KEY="k", LOYALTY_DATABASE_URI=database_url, LOYALTY_BASE_TEMPLATE=base)
    manager = LoginManager(app)
    manager.user_loader(User)
    manager.login_view = "signin"
    app.add_url_rule("/signin", "signin", lambda: "sign in")
    app.add_url_rule("/home", "home", lambda: __import__("flask").render_template("home.html"))
    Loyalty(app)
    Base.metadata.create_all(app.extensions["loyalty"].store.engine)
    return app


def test_a_host_overrides_templates_and_uses_the_badge_and_widget_in_its_own(tmp_path, database_url):
    app = host_app(
        tmp_path,
        database_url,
        {
            "layout.html": (
                "<html><body><header>{{ loyalty_badge() }}</header>{% block content %}{% endblock %}</body></html>"
            ),
            "home.html": (
                "{% extends 'layout.html' %}{% block content %}{{ loyalty_recommendations(limit=2) }}{% endblock %}"
            ),
            "loyalty/tiers.html": "{% extends loyalty_base %}{% block content %}OUR OWN TIERS PAGE{% endblock %}",
        },
    )
    try:
        with app.app_context():
            loyalty = Loyalty()
            loyalty.enroll("u1")
            for n, sku in enumerate(["A", "A", "B", "C"]):
                loyalty.record_order(
                    f"o{n}", f"buyer{n}", "10.00", lines=[{"sku": sku, "qty": 1, "unit_price": "10.00"}]
                )
        client = app.test_client()
        anonymous = client.get("/home").get_data(as_text=True)
        assert "loyalty-badge" not in anonymous and "Recommended for you" not in anonymous
        assert client.get("/loyalty/").headers["Location"].startswith("/signin?next=")
        login(client, "u1")
        home = client.get("/home").get_data(as_text=True)
        assert "Bronze" in home and "100 points" in home
        assert re.findall(r'data-sku="(\w+)"', home) == ["A", "B"]
        assert "OUR OWN TIERS PAGE" in page(client, "/loyalty/tiers")
        dashboard = page(client, "/loyalty/")
        assert dashboard.startswith("<html><body><header>")  # the host's layout
    finally:
        app.extensions["loyalty"].close()


@pytest.mark.parametrize(
    ("base", "layout"),
    [("layout.html", "layout.html"), ("loyalty/base.html", "loyalty/base.html")],
    ids=["LOYALTY_BASE_TEMPLATE", "plugin-layout-overridden"],
)
def test_a_host_layout_around_a_cached_dashboard_is_rendered_for_every_request(tmp_path, database_url, base, layout):
    app = host_app(
        tmp_path,
        database_url,
        {layout: "<html><body><p>cart: {{ request.args.cart }}</p>{% block content %}{% endblock %}</body></html>"},
        base=base,
    )
    try:
        with app.app_context():
            Loyalty().enroll("u1")
        client = app.test_client()
        login(client, "u1")
        first, second = (page(client, f"/loyalty/?cart={n}") for n in (1, 2))
        assert "cart: 1" in first and "cart: 2" in second
        assert first.replace("cart: 1", "cart: 2") == second  # the plugin's part came from the cache
    finally:
        app.extensions["loyalty"].close()


def test_a_message_flashed_for_the_dashboard_shows_on_it_once(app, client, loyalty):
    """The plugin's own layout is kept with the page; a message waiting to be shown is not."""

    @app.get("/ordered")
    def ordered():
        flash("Thank you for your order")
        return redirect("/loyalty/")

    loyalty.enroll("u1")
    login(client, "u1")
    before = page(client, "/loyalty/")
    assert page(client, "/loyalty/") == before
    client.get("/ordered")
    with_message = page(client, "/loyalty/")
    assert "Thank you for your order" in with_message
    assert page(client, "/loyalty/") == before


def test_money_on_pages_is_decimal_exact(client, loyalty):
    loyalty.enroll("u1")
    loyalty.record_order("o1", "u1", "0.30")
    loyalty.record_order("o2", "u1", "0.60")
    login(client, "u1")
    html = page(client, "/loyalty/tiers")
    assert f"${Decimal('0.90')} spent" in html


def test_nothing_personal_reaches_the_logs(app, client, loyalty, rewards, caplog):
    caplog.set_level("DEBUG")
    loyalty.enroll("u1", email="secret.person@example.com", name="Secret Person", birthday="1990-05-17")
    member_with_points(loyalty, "u2", 600)
    coupon = loyalty.redeem("u2", rewards["five_off"])
    login(client, "u2")
    for url in ("/loyalty/", "/loyalty/points", "/loyalty/coupons", "/loyalty/privacy/export.json"):
        client.get(url)
    token = csrf_token(page(client, "/loyalty/coupons/check"))
    client.post("/loyalty/coupons/check", data={"csrf_token": token, "code": coupon.code, "order_total": "9"})
    client.post("/loyalty/coupons/check", data={"csrf_token": token, "code": "WRONG", "order_total": "x"})
    logged = "\n".join(record.getMessage() for record in caplog.records)
    for secret in ("secret.person@example.com", "Secret Person", "1990-05-17", coupon.code):
        assert secret not in logged
