"""Serving "recommended for you": the fitted version in the database, reasons, stock and
ownership filters, popular items for members the model does not know, version switching
between two app instances, the click redirect, impressions and attribution."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask, render_template_string
from flask_login import login_user
from sqlalchemy import func, select, text

from loyalty_plugin import Loyalty
from loyalty_plugin.experiments import variant_of
from loyalty_plugin.models import (
    Item,
    RecommendationClick,
    RecommendationImpressions,
    RecommenderVersion,
)

from .conftest import User, login, make_app


@pytest.fixture
def shop(database_url, tmp_path, clock):
    """Apps on one database. Requests are made outside any app context: Flask-Login keeps the
    user of a request in the app context's ``g``, so a held context would pin one user."""
    apps = []

    def build(**config: Any) -> Flask:
        app = make_app(database_url, str(tmp_path / f"instance{len(apps)}"), **config)
        app.extensions["loyalty"].clock = clock
        apps.append(app)
        return app

    yield build
    for app in apps:
        app.extensions["loyalty"].impressions.close()
        app.extensions["loyalty"].close()


@contextmanager
def setup(app: Flask) -> Iterator[Loyalty]:
    with app.app_context():
        yield Loyalty()


API = "/loyalty/api/v1"
MODEL_ONLY = {"LOYALTY_AB_VARIANTS": {"model": 1}, "LOYALTY_RECOMMENDER_IMPRESSION_FLUSH_SECONDS": 0}

CATALOG = {
    # sku: (name, category, consumable)
    "TEA": ("Green tea", "pantry", True),
    "CUP": ("Tea cup", "kitchen", True),
    "POT": ("Tea pot", "kitchen", True),
    "JAM": ("Strawberry jam", "pantry", True),
    "TOAST": ("Toast bread", "pantry", True),
    "KETTLE": ("Kettle", "kitchen", False),
}


def stock(loyalty: Loyalty, **overrides: Any) -> None:
    state = loyalty.state()
    with state.store.work() as session:
        for sku, (name, category, consumable) in CATALOG.items():
            session.merge(
                Item(
                    sku=sku,
                    name=name,
                    category=category,
                    price=Decimal("4.00"),
                    url=overrides.get(f"{sku}_url", f"/shop/items/{sku}"),
                    in_stock=overrides.get(f"{sku}_in_stock", True),
                    consumable=consumable,
                    updated_at=state.clock(),
                )
            )


def buy(loyalty: Loyalty, order_id: str, user: str, *skus: str) -> None:
    lines = [{"sku": s, "qty": 1, "unit_price": "4.00", "category": CATALOG.get(s, ("", "pantry"))[1]} for s in skus]
    loyalty.record_order(order_id, user, f"{4 * len(skus)}.00", lines=lines)


def tea_and_jam_shop(loyalty: Loyalty, clock) -> None:
    """Tea drinkers buy cups and pots with their tea; jam buyers buy toast. ``m1`` bought tea
    every two weeks and a kettle once; ``m2`` has bought nothing."""
    stock(loyalty)
    for n in range(12):
        buy(loyalty, f"tea{n}", f"t{n}", "TEA", "CUP", *(["POT"] if n % 2 else []))
        buy(loyalty, f"jam{n}", f"j{n}", "JAM", "TOAST")
    for n in (12, 13):  # jam has the most buyers
        buy(loyalty, f"jam{n}", f"j{n}", "JAM")
    loyalty.enroll("m1")
    loyalty.enroll("m2")
    for week in range(0, 8, 2):
        clock.advance(days=14)
        buy(loyalty, f"m1-{week}", "m1", "TEA", *(["KETTLE"] if week == 0 else []))


def fit(app) -> str:
    result = app.test_cli_runner().invoke(args=["loyalty", "run-job", "recommender"])
    assert result.exit_code == 0, result.output
    return result.output


def recommendations(client, limit: int = 4) -> dict[str, Any]:
    response = client.get(f"{API}/recommendations?limit={limit}")
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def test_the_models_picks_say_why_and_leave_out_what_is_sold_out_or_already_owned(shop, clock):
    app = shop(**MODEL_ONLY)
    with setup(app) as loyalty:
        tea_and_jam_shop(loyalty, clock)
    fit(app)
    client = app.test_client()
    login(client, "m1")
    body = recommendations(client)
    assert body["variant"] == "model"
    assert body["model_version"] is not None
    reasons = {item["sku"]: item["reason"] for item in body["items"]}
    # Tea is re-bought every 14 days: buy it again; cups go with tea.
    assert reasons["TEA"] == "buy_again"
    assert reasons["CUP"] == "similar"
    assert "KETTLE" not in reasons  # a durable the member owns
    texts = {item["sku"]: item["reason_text"] for item in body["items"]}
    assert texts["TEA"] == "You buy this about every 14 days"
    assert texts["CUP"] == "Often bought with Green tea"
    order = [item["sku"] for item in body["items"]]
    assert order.index("CUP") < order.index("JAM") if "JAM" in order else True

    with setup(app) as loyalty:
        picks = loyalty.recommend("m1", k=4)
        assert (picks[0].sku, picks[0].reason, picks[0].cycle_days) == ("TEA", "buy_again", 14)
        stock(loyalty, CUP_in_stock=False)
        assert "CUP" not in [s.sku for s in loyalty.recommend("m1", k=4)]


def test_members_the_model_does_not_know_get_popular_items_of_their_categories(shop, clock):
    app = shop(**MODEL_ONLY)
    with setup(app) as loyalty:
        tea_and_jam_shop(loyalty, clock)
        loyalty.enroll("m3")
    fit(app)
    with setup(app) as loyalty:
        buy(loyalty, "m3-1", "m3", "CUP")  # bought after the fit: unknown to the model
    client = app.test_client()
    login(client, "m2")  # no purchases at all: the shop's popular items
    body = recommendations(client, limit=3)
    assert [i["reason"] for i in body["items"]] == ["popular"] * 3
    assert body["items"][0]["sku"] == "JAM"
    assert body["items"][0]["reason_text"] == "Popular in pantry"
    login(client, "m3")
    skus = [i["sku"] for i in recommendations(client, limit=2)["items"]]
    assert skus == ["POT", "KETTLE"]  # popular in kitchen first, not the cup they own


def test_the_popularity_variant_shows_popular_items_and_the_holdout_nothing(shop, clock):
    app = shop(
        LOYALTY_AB_VARIANTS={"popular": 1}, LOYALTY_AB_HOLDOUT="0.5", LOYALTY_RECOMMENDER_IMPRESSION_FLUSH_SECONDS=0
    )
    settings = app.extensions["loyalty"].settings
    users = {variant_of(f"x{n}", settings): f"x{n}" for n in range(40)}
    assert set(users) == {"holdout", "popular"}
    with setup(app) as loyalty:
        tea_and_jam_shop(loyalty, clock)
        for user in users.values():
            loyalty.enroll(user)
    fit(app)
    client = app.test_client()
    for variant, user in users.items():
        login(client, user)
        body = recommendations(client)
        assert body["variant"] == variant
        if variant == "holdout":
            assert body["items"] == []
        else:
            assert [i["reason"] for i in body["items"]] == ["popular"] * 4
    with setup(app) as loyalty, loyalty.state().store.work(write=False) as session:
        counted = {
            row.variant: (row.user_id, row.views, row.items_shown)
            for row in session.scalars(select(RecommendationImpressions))
        }
    assert counted == {"holdout": (users["holdout"], 1, 0), "popular": (users["popular"], 1, 4)}


def test_variants_are_stable_balanced_and_reshuffled_by_a_new_experiment_name(shop):
    settings = shop(LOYALTY_AB_HOLDOUT="0.1").extensions["loyalty"].settings  # model 80, popular 20
    renamed = shop(LOYALTY_AB_EXPERIMENT="recommendations-2").extensions["loyalty"].settings
    users = [str(n) for n in range(20_000)]
    first = [variant_of(u, settings) for u in users]
    assert first == [variant_of(u, settings) for u in users]
    shares = {v: first.count(v) / len(users) for v in set(first)}
    # Within four standard errors of 10 % holdout, 72 % model (80 % of the rest), 18 % popular.
    for variant, expected in {"holdout": 0.10, "model": 0.72, "popular": 0.18}.items():
        assert abs(shares[variant] - expected) < 4 * (expected * (1 - expected) / len(users)) ** 0.5
    moved = sum(a != b for a, b in zip(first, [variant_of(u, renamed) for u in users], strict=True))
    assert moved > len(users) * 0.2


def test_a_new_version_is_served_by_another_instance_after_its_refresh_interval(shop, clock):
    settings = {**MODEL_ONLY, "LOYALTY_RECOMMENDER_REFRESH_SECONDS": 60}
    fitter, server = shop(**settings), shop(**settings)
    with setup(fitter) as loyalty:
        tea_and_jam_shop(loyalty, clock)
    fit(fitter)
    client = server.test_client()
    login(client, "m1")
    v1 = recommendations(client)["model_version"]
    assert v1 is not None
    fit(fitter)
    assert recommendations(client)["model_version"] == v1  # not looked for yet
    clock.advance(seconds=61)
    assert recommendations(client)["model_version"] > v1
    with setup(fitter) as loyalty, loyalty.state().store.work(write=False) as session:
        assert session.scalar(select(func.count()).select_from(RecommenderVersion)) == 2


def test_only_the_newest_versions_are_kept(shop, clock):
    app = shop(**MODEL_ONLY, LOYALTY_RECOMMENDER_KEEP_VERSIONS=2)
    with setup(app) as loyalty:
        tea_and_jam_shop(loyalty, clock)
    outputs = [fit(app) for _ in range(3)]
    assert "interactions" in outputs[-1]
    with setup(app) as loyalty, loyalty.state().store.work(write=False) as session:
        kept = session.scalars(select(RecommenderVersion.id).order_by(RecommenderVersion.id)).all()
    assert len(kept) == 2


def test_the_click_redirect_records_the_click_and_only_goes_to_the_shops_own_pages(shop, clock):
    app = shop(**MODEL_ONLY)
    with setup(app) as loyalty:
        tea_and_jam_shop(loyalty, clock)
    fit(app)
    client = app.test_client()
    login(client, "m1")
    items = {i["sku"]: i for i in recommendations(client)["items"]}
    response = client.get(items["CUP"]["click_url"])
    assert response.status_code == 303
    assert response.headers["Location"] == "/shop/items/CUP"

    def clicks() -> list[tuple[str, str, str, str]]:
        with setup(app) as loyalty, loyalty.state().store.work(write=False) as session:
            return [(c.user_id, c.sku, c.variant, c.reason) for c in session.scalars(select(RecommendationClick))]

    assert clicks() == [("m1", "CUP", "model", "similar")]
    # A tampered link leads nowhere.
    token = items["CUP"]["click_url"].rsplit("/", 1)[1]
    assert client.get(f"/loyalty/r/{token[:-2]}xx").status_code == 404
    # An item whose page is on another site is never a redirect target.
    for url in ("https://evil.example/x", "//evil.example/x", "/\\evil.example", "javascript:alert(1)"):
        with setup(app) as loyalty:
            stock(loyalty, TEA_url=url)
        assert client.get(items["TEA"]["click_url"]).status_code == 404, url
    with setup(app) as loyalty:
        stock(loyalty, TEA_url="http://localhost/shop/items/TEA")  # the shop's own host, absolute
    assert client.get(items["TEA"]["click_url"]).headers["Location"] == "http://localhost/shop/items/TEA"
    assert len(clicks()) == 2


def test_the_widget_in_a_host_template_links_through_the_tracker(shop, clock):
    app = shop(**MODEL_ONLY)
    with setup(app) as loyalty:
        tea_and_jam_shop(loyalty, clock)
    fit(app)
    with app.test_request_context("/"):
        login_user(User("m1"))
        html = render_template_string("{{ loyalty_recommendations(limit=3) }}")
    assert len(re.findall(r'href="/loyalty/r/[^"]+"', html)) == 3
    assert "You buy this about every 14 days" in html


def test_purchases_soon_after_a_click_are_attributed_to_its_variant(shop, clock):
    app = shop(**MODEL_ONLY, LOYALTY_ATTRIBUTION_DAYS=7)
    with setup(app) as loyalty:
        tea_and_jam_shop(loyalty, clock)
    fit(app)
    client = app.test_client()
    login(client, "m1")
    items = {i["sku"]: i for i in recommendations(client)["items"]}
    client.get(items["CUP"]["click_url"])
    with setup(app) as loyalty:
        clock.advance(days=2)
        buy(loyalty, "after-click", "m1", "CUP", "TEA")  # the cup counts, the tea was not clicked
        clock.advance(days=10)
        buy(loyalty, "too-late", "m1", "CUP")
    day = clock.now.date()
    since = day - timedelta(days=29)
    result = app.test_cli_runner().invoke(args=["loyalty", "report", "ab", "--since", str(since), "--until", str(day)])
    assert result.exit_code == 0, result.output
    line = next(x for x in result.output.splitlines() if x.startswith("model:"))
    assert "1 members, 4 items shown, 1 clicks, CTR 25.00%" in line
    assert "1 attributed purchases (4.00 USD)" in line
    with setup(app) as loyalty, loyalty.state().store.work(write=False) as session:
        spent = session.scalar(
            text("SELECT sum(total) FROM loyalty_orders WHERE user_id = 'm1' AND placed_at >= :since"),
            {"since": since},
        )
    assert f"revenue per member {spent / 100:.2f}" in line  # money is stored in cents


def test_report_ab_writes_csv_with_intervals(shop, clock, tmp_path):
    app = shop(LOYALTY_RECOMMENDER_IMPRESSION_FLUSH_SECONDS=0)
    with setup(app) as loyalty:
        tea_and_jam_shop(loyalty, clock)
        for n in range(30):
            loyalty.enroll(f"v{n}")
    client = app.test_client()
    for n in range(30):
        login(client, f"v{n}")
        recommendations(client)
    out = tmp_path / "ab.csv"
    result = app.test_cli_runner().invoke(args=["loyalty", "report", "ab", "--csv", str(out)])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(out.open()))
    assert {r["variant"] for r in rows} == {"model", "popular"}
    assert sum(int(r["members"]) for r in rows) == 30
    for r in rows:
        assert float(r["ctr"]) == 0.0 and float(r["ctr_low"]) == 0.0 and 0 < float(r["ctr_high"]) < 0.2
    runner = app.test_cli_runner()
    bad = runner.invoke(args=["loyalty", "report", "ab", "--since", "2030-01-02", "--until", "2030-01-01"])
    assert bad.exit_code == 2 and "--since must not be after --until" in bad.output


def test_impressions_are_kept_in_the_worker_and_written_as_one_upsert(shop, clock):
    app = shop(LOYALTY_RECOMMENDER_IMPRESSION_FLUSH_SECONDS=3600)
    state = app.extensions["loyalty"]
    log = state.impressions
    for _ in range(3):
        log.record(user_id="u1", experiment="e", variant="model", items=4, now=clock.now)
    log.record(user_id="u2", experiment="e", variant="popular", items=2, now=clock.now)

    def rows() -> dict[str, tuple[int, int]]:
        with setup(app), state.store.work(write=False) as session:
            return {r.user_id: (r.views, r.items_shown) for r in session.scalars(select(RecommendationImpressions))}

    assert rows() == {}
    assert log.flush() == 2
    assert rows() == {"u1": (3, 12), "u2": (1, 2)}
    log.record(user_id="u1", experiment="e", variant="model", items=4, now=clock.now)
    log.close()
    assert rows() == {"u1": (4, 16), "u2": (1, 2)}


def test_evaluate_recommender_scores_the_shops_own_orders(shop, clock, tmp_path):
    app = shop()
    runner = app.test_cli_runner()
    empty = runner.invoke(args=["loyalty", "evaluate-recommender"])
    assert empty.exit_code == 1 and "no orders to evaluate on" in empty.output
    with setup(app) as loyalty:
        tea_and_jam_shop(loyalty, clock)
    out = tmp_path / "evaluation.csv"
    result = runner.invoke(args=["loyalty", "evaluate-recommender", "--weeks", "2", "--csv", str(out)])
    assert result.exit_code == 0, result.output
    table = {(r["target"], r["model"]): r for r in csv.DictReader(out.open())}
    assert {model for _, model in table} >= {"popularity", "buy_again", "blend"}
    # m1 is the one member who bought before and after the cut-off: tea again, ranked first.
    assert table[("all", "buy_again")]["users"] == "1"
    assert float(table[("all", "buy_again")]["ndcg"]) == 1.0
    outside = runner.invoke(args=["loyalty", "evaluate-recommender", "--cutoff", "2001-01-01"])
    assert outside.exit_code == 2 and "pick a day between" in outside.output


def test_the_shops_item_info_hook_decides_stock_and_what_is_a_durable(shop, clock):
    app = shop(**MODEL_ONLY)
    with setup(app) as loyalty:
        tea_and_jam_shop(loyalty, clock)
    fit(app)
    asked: list[list[str]] = []

    def item_info(skus: list[str]) -> dict[str, dict[str, Any]]:
        asked.append(skus)
        return {
            "CUP": {"in_stock": False},
            "TEA": {"consumable": False, "name": "Tea caddy"},
            "POT": {"name": "Teapot, white", "url": "/catalog/pot"},
        }

    app.extensions["loyalty"].item_info = item_info
    with setup(app) as loyalty:
        picks = {s.sku: s for s in loyalty.recommend("m1", k=4)}
    assert asked
    assert "CUP" not in picks and "TEA" not in picks  # sold out; a durable m1 owns
    assert picks["POT"].name == "Teapot, white" and picks["POT"].url == "/catalog/pot"
    assert picks["POT"].because == "Tea caddy"


def test_each_version_is_stored_with_its_scores_on_held_out_weeks(shop, clock):
    """25 customers each re-buy a favourite of their own weekly: the last four weeks, held
    out, show the blend (which knows their habits) far above popularity."""
    app = shop(**MODEL_ONLY)
    with setup(app) as loyalty:
        for n in range(25):
            buy(loyalty, f"p{n}", f"c{n}", "P")
        for week in range(8):
            for n in range(25):
                buy(loyalty, f"w{week}-{n}", f"c{n}", f"F{n}")
            clock.advance(days=7)
    fit(app)
    with setup(app) as loyalty, loyalty.state().store.work(write=False) as session:
        version = session.scalars(select(RecommenderVersion)).one()
    assert version.scores["weeks"] == 4
    ndcg = {(r["target"], r["model"]): r["ndcg"] for r in version.scores["rows"]}
    users = {(r["target"], r["model"]): r["users"] for r in version.scores["rows"]}
    assert users[("all", "blend")] == 25
    assert ndcg[("all", "blend")] > 0.8 > ndcg[("all", "popularity")] + 0.4
    assert version.interactions == 25 * 9 and version.users == 25


def test_a_dashboard_served_from_the_page_cache_still_counts_its_view(shop, clock):
    app = shop(**MODEL_ONLY)
    with setup(app) as loyalty:
        tea_and_jam_shop(loyalty, clock)
    fit(app)
    client = app.test_client()
    login(client, "m1")
    first = client.get("/loyalty/").get_data(as_text=True)
    assert 'data-sku="CUP"' in first
    with setup(app) as loyalty:
        stock(loyalty, CUP_in_stock=False)  # changes no member version: the page stays cached
    for _ in range(2):
        assert client.get("/loyalty/").get_data(as_text=True) == first
    with setup(app) as loyalty, loyalty.state().store.work(write=False) as session:
        row = session.scalars(select(RecommendationImpressions)).one()
    assert (row.user_id, row.variant, row.views, row.items_shown) == ("m1", "model", 3, 12)
