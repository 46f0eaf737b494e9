"""``flask loyalty seed-demo`` on the demo shop: deterministic, idempotent, and shaped like a
live program. Runs on SQLite and, when ``LOYALTY_TEST_DATABASE_URL`` is set, on PostgreSQL."""

from __future__ import annotations

import hashlib
import statistics
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

import wsgi
from loyalty_plugin.demo import DEMO_PASSWORD, demo_catalog
from loyalty_plugin.models import Item, LedgerEntry, Member, Order, OrderLine

from .conftest import PG_URL, empty_postgres, skip_without_postgres

NOW = datetime(2026, 6, 1, 12, 0)
CUSTOMERS = 60


def make_shop(url: str) -> Flask:
    app = wsgi.create_app({"TESTING": True, "SECRET_KEY": "test-secret", "SQLALCHEMY_DATABASE_URI": url})
    app.extensions["loyalty"].clock = lambda: NOW
    run(app, "loyalty", "db", "upgrade")
    run(app, "demo", "init-db")
    return app


def run(app: Flask, *args: str) -> str:
    result = app.test_cli_runner().invoke(args=list(args))
    assert result.exit_code == 0, result.output
    return result.output


def seed(app: Flask, number: int = 7) -> str:
    return run(app, "loyalty", "seed-demo", "--seed", str(number), "--customers", str(CUSTOMERS))


def close(app: Flask) -> None:
    with app.app_context():
        wsgi.db.engine.dispose()


def digest(app: Flask) -> str:
    """Every order, line and balance; coupon and referral codes are random by design and left out."""
    with app.app_context():
        session = wsgi.db.session
        orders = session.execute(
            select(
                Order.order_id,
                Order.user_id,
                Order.placed_at,
                Order.total,
                Order.shipping,
                Order.refunded_total,
                Order.points_earned,
                Order.points_clawed_back,
            ).order_by(Order.order_id)
        ).all()
        lines = session.execute(
            select(Order.order_id, OrderLine.line_no, OrderLine.sku, OrderLine.qty, OrderLine.unit_price)
            .join(Order, Order.id == OrderLine.order_pk)
            .order_by(Order.order_id, OrderLine.line_no)
        ).all()
        members = session.execute(
            select(Member.user_id, Member.tier_code, Member.points_balance, Member.points_pending).order_by(
                Member.user_id
            )
        ).all()
    return hashlib.sha256(repr((orders, lines, members)).encode()).hexdigest()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def seeded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Flask, str]]:
    """One seeded shop per database for the whole module: seeding is the slow part."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('seeded')}/shop.sqlite"
    elif PG_URL:
        url = empty_postgres(PG_URL)
    else:
        skip_without_postgres()
    app = make_shop(url)
    output = seed(app)
    yield app, output
    close(app)


@pytest.fixture
def blank_shop(tmp_path: Any) -> Iterator[Flask]:
    app = make_shop(f"sqlite:///{tmp_path}/blank.sqlite")
    yield app
    close(app)


def orders_by_member(app: Flask) -> dict[str, list[datetime]]:
    with app.app_context():
        rows = wsgi.db.session.execute(
            select(Order.user_id, Order.placed_at).where(Order.member_id.is_not(None)).order_by(Order.placed_at)
        ).all()
    placed: dict[str, list[datetime]] = defaultdict(list)
    for user_id, at in rows:
        placed[user_id].append(at)
    return placed


def test_seed_reports_what_it_wrote(seeded: tuple[Flask, str]) -> None:
    app, output = seeded
    with app.app_context():
        session = wsgi.db.session
        orders = session.scalar(select(func.count()).select_from(Order))
        members = session.scalar(select(func.count()).select_from(Member))
        items = session.scalar(select(func.count()).select_from(Item))

    assert f"{CUSTOMERS} customers, {members} of them members" in output
    assert f"{orders:,} orders" in output
    assert 0 < members < CUSTOMERS
    assert orders > 2 * CUSTOMERS
    assert items == 200


def test_every_balance_matches_the_ledger_after_seeding(seeded: tuple[Flask, str]) -> None:
    app, _ = seeded
    with app.app_context():
        assert wsgi.loyalty.verify() == []
    assert "Every balance matches the ledger." in run(app, "loyalty", "verify")


def test_second_run_does_nothing_and_says_so(seeded: tuple[Flask, str]) -> None:
    app, _ = seeded
    before = digest(app)

    output = seed(app)

    assert "Nothing done: the demo data is already in" in output
    assert digest(app) == before


def test_same_seed_gives_the_same_orders_on_any_database(seeded: tuple[Flask, str], blank_shop: Flask) -> None:
    app, _ = seeded

    seed(blank_shop)

    assert digest(blank_shop) == digest(app)


def test_another_seed_gives_other_orders(seeded: tuple[Flask, str], blank_shop: Flask) -> None:
    app, _ = seeded

    seed(blank_shop, number=8)

    assert digest(blank_shop) != digest(app)


def test_seed_leaves_a_program_that_already_has_members_alone(blank_shop: Flask) -> None:
    with blank_shop.app_context():
        wsgi.loyalty.enroll("early-bird")
        wsgi.db.session.commit()

    output = seed(blank_shop)

    assert "Nothing done: the program already has 1 member(s) and 0 order(s)" in output
    with blank_shop.app_context():
        assert wsgi.db.session.scalar(select(func.count()).select_from(Order)) == 0


def test_some_members_lapse_while_others_keep_buying(seeded: tuple[Flask, str]) -> None:
    placed = orders_by_member(seeded[0])
    repeat = {user: times for user, times in placed.items() if len(times) >= 2}

    lapsed = [user for user, times in repeat.items() if times[-1] < NOW - timedelta(days=90)]
    active = [user for user, times in placed.items() if times[-1] >= NOW - timedelta(days=30)]

    assert lapsed and active


def test_purchase_rates_differ_widely_between_members(seeded: tuple[Flask, str]) -> None:
    counts = sorted(len(times) for times in orders_by_member(seeded[0]).values())

    assert counts[0] == 1
    assert counts[-1] >= 5 * statistics.median(counts)


def test_consumables_are_rebought_on_a_cycle(seeded: tuple[Flask, str]) -> None:
    app, _ = seeded
    consumables = {item.sku for item in demo_catalog() if item.consumable}
    with app.app_context():
        rows = wsgi.db.session.execute(
            select(Order.user_id, OrderLine.sku, Order.placed_at)
            .join(Order, Order.id == OrderLine.order_pk)
            .order_by(Order.placed_at)
        ).all()
    bought: dict[tuple[str, str], list[datetime]] = defaultdict(list)
    for user_id, sku, at in rows:
        if sku in consumables:
            bought[(user_id, sku)].append(at)

    gaps = [statistics.median((b - a).days for a, b in pairwise(times)) for times in bought.values() if len(times) >= 3]

    assert len(gaps) >= 5
    assert 10 <= statistics.median(gaps) <= 60


def test_complements_land_in_the_same_basket(seeded: tuple[Flask, str]) -> None:
    app, _ = seeded
    partner = {item.sku: item.goes_with for item in demo_catalog() if item.goes_with}
    with app.app_context():
        rows = wsgi.db.session.execute(select(OrderLine.order_pk, OrderLine.sku)).all()
    baskets: dict[int, set[str]] = defaultdict(set)
    for order, sku in rows:
        baskets[order].add(sku)

    together = sum(1 for skus in baskets.values() for sku in skus if partner.get(sku) in skus)

    assert together >= 5


def test_program_looks_live(seeded: tuple[Flask, str]) -> None:
    app, _ = seeded
    with app.app_context():
        session = wsgi.db.session
        kinds = set(session.scalars(select(LedgerEntry.kind).distinct()))
        with_points = session.scalar(select(func.count()).where(Member.points_balance > 0))
        waiting = session.scalar(select(func.count()).where(Member.points_pending > 0))
        guests = session.scalar(select(func.count()).select_from(Order).where(Order.member_id.is_(None)))

    assert {"signup", "earn", "release", "redeem", "clawback", "birthday", "referral"} <= kinds
    assert with_points > 0 and waiting > 0
    assert guests > 0


def test_loyalty_items_match_the_shops_products(seeded: tuple[Flask, str]) -> None:
    app, _ = seeded
    with app.app_context():
        session = wsgi.db.session
        items = {row.sku: (row.name, row.category, row.price) for row in session.scalars(select(Item))}
        products = {row.sku: (row.name, row.category, row.price) for row in session.scalars(select(wsgi.Product))}

    assert items == products


def test_seeded_customers_log_in_with_the_demo_password(seeded: tuple[Flask, str]) -> None:
    app, _ = seeded
    with app.app_context():
        email = wsgi.db.session.scalar(
            select(wsgi.User.email).join(Member, Member.user_id == wsgi.User.id).order_by(wsgi.User.id).limit(1)
        )
    browser = app.test_client()
    page = browser.get("/login").get_data(as_text=True)
    csrf = page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]

    assert (
        browser.post("/login", data={"csrf_token": csrf, "email": email, "password": DEMO_PASSWORD}).status_code == 302
    )
    assert browser.get("/loyalty/api/v1/me").get_json()["member"]["tier"]["code"] in {"bronze", "silver", "gold"}
