"""The admin's recommendations page on data made through the real API: widget views through
``/loyalty/api/v1/recommendations``, clicks through its ``click_url`` redirect, purchases
through ``record_order``, versions fitted by ``flask loyalty run-job recommender``. Every
expected figure is computed here from the tables with hand-written SQL and pandas.

Requests are made outside any app context: Flask-Login keeps the user of a request in the app
context's ``g``, so a held context would pin one user (see ``test_recommendations.py``)."""

from __future__ import annotations

import io
import math
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pandas as pd
import pytest
from flask import Flask
from scipy import stats
from sqlalchemy import text

from loyalty_plugin import Loyalty
from loyalty_plugin.experiments import variant_of

from .conftest import login, make_app
from .test_recommendations import buy, fit, recommendations, stock, tea_and_jam_shop

PAGE = "/loyalty/admin/recommendations"
#: Views are written at once; a third of the members are held out.
CONFIG = {"LOYALTY_RECOMMENDER_IMPRESSION_FLUSH_SECONDS": 0, "LOYALTY_AB_HOLDOUT": "0.34"}


@pytest.fixture
def shop(database_url: str, tmp_path: Any, clock: Any) -> Iterator[Flask]:
    app = make_app(database_url, str(tmp_path / "instance"), **CONFIG)
    app.extensions["loyalty"].clock = clock
    yield app
    app.extensions["loyalty"].impressions.close()
    app.extensions["loyalty"].close()


def admin_client(app: Flask) -> Any:
    client = app.test_client()
    login(client, "admin-1")
    return client


def table(app: Flask, sql: str, **params: Any) -> pd.DataFrame:
    with app.app_context():
        engine = app.extensions["loyalty"].store.engine
        with engine.connect() as connection:
            return pd.read_sql(text(sql), connection, params=params)


def csv(client: Any, query: str) -> pd.DataFrame:
    response = client.get(f"{PAGE}?format=csv&{query}")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    return pd.read_csv(io.StringIO(response.get_data(as_text=True)))


def wilson(successes: int, trials: int) -> tuple[float, float]:
    """The 95 % Wilson score interval, from its formula."""
    z = 1.959963984540054
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return centre - half, centre + half


def test_the_page_says_when_nothing_was_shown_and_no_model_was_fitted(shop: Flask) -> None:
    client = admin_client(shop)

    html = client.get(PAGE).get_data(as_text=True)

    assert 'data-testid="ab-empty"' in html and 'data-testid="versions-empty"' in html
    assert 'id="admin-ctr-chart"' not in html
    assert 'aria-current="page">Recommendations<' in html
    assert csv(client, "").empty
    assert csv(client, "table=versions").empty
    empty_scores = csv(client, "table=scores")
    assert empty_scores.empty and list(empty_scores.columns)[:4] == ["version", "cutoff", "target", "model"]


def test_the_ab_table_and_its_csv_equal_the_figures_computed_from_the_tables(shop: Flask, clock: Any) -> None:
    settings = shop.extensions["loyalty"].settings
    users = [f"v{n}" for n in range(24)]
    with shop.app_context():
        loyalty = Loyalty()
        tea_and_jam_shop(loyalty, clock)
        for user in users:
            loyalty.enroll(user)
    fit(shop)
    client = shop.test_client()
    for n, user in enumerate(users):
        login(client, user)
        items = recommendations(client)["items"]
        if items and n % 3 == 0:  # a third of those shown items click the first and buy it
            assert client.get(items[0]["click_url"]).status_code == 303
            with shop.app_context():
                buy(Loyalty(), f"bought-{n}", user, items[0]["sku"])
    assert {variant_of(u, settings) for u in users} == {"holdout", "model", "popular"}
    today = clock.now.date()

    admin = admin_client(shop)
    html = admin.get(PAGE).get_data(as_text=True)
    exported = csv(admin, "").set_index("variant")

    shown = table(
        shop,
        "SELECT variant, COUNT(DISTINCT user_id) AS members, SUM(views) AS views, SUM(items_shown) AS items "
        "FROM loyalty_recommendation_impressions GROUP BY variant",
    ).set_index("variant")
    clicks = table(
        shop,
        "SELECT c.variant, c.user_id, c.sku, COUNT(l.id) AS bought, COALESCE(SUM(l.qty * l.unit_price), 0) AS cents "
        "FROM loyalty_recommendation_clicks c LEFT JOIN loyalty_orders o ON o.user_id = c.user_id "
        "AND o.placed_at >= c.clicked_at LEFT JOIN loyalty_order_lines l ON l.order_pk = o.id AND l.sku = c.sku "
        "GROUP BY c.id, c.variant, c.user_id, c.sku",
    )
    spent = table(shop, "SELECT user_id, SUM(total) AS cents FROM loyalty_orders GROUP BY user_id").set_index("user_id")
    exposed = table(shop, "SELECT DISTINCT variant, user_id FROM loyalty_recommendation_impressions")
    assert len(clicks) >= 2 and clicks["bought"].sum() >= 2
    for variant, row in shown.iterrows():
        mine = clicks[clicks["variant"] == variant]
        n_clicks, items = len(mine), int(row["items"])
        tag = (
            f'data-variant="{variant}" data-members="{row["members"]}" data-views="{row["views"]}" '
            f'data-items="{items}" data-clicks="{n_clicks}" data-purchases="{int(mine["bought"].sum())}"'
        )
        assert tag in html, variant
        e = exported.loc[variant]
        assert (e["members"], e["views"], e["items_shown"], e["clicks"]) == (
            row["members"],
            row["views"],
            items,
            n_clicks,
        )
        assert e["attributed_purchases"] == int(mine["bought"].sum())
        assert e["attributed_revenue"] == pytest.approx(int(mine["cents"].sum()) / 100)
        if items:
            low, high = wilson(n_clicks, items)
            assert (e["ctr"], e["ctr_low"], e["ctr_high"]) == pytest.approx((n_clicks / items, low, high), abs=1e-4)
        else:
            assert math.isnan(e["ctr"])
        per_member = [
            int(spent["cents"].get(u, 0)) / 100 for u in exposed.loc[exposed["variant"] == variant, "user_id"]
        ]
        mean = sum(per_member) / len(per_member)
        assert e["revenue_per_member"] == pytest.approx(mean, abs=0.005)
        if len(per_member) > 1:
            half = stats.t.ppf(0.975, len(per_member) - 1) * pd.Series(per_member).std() / math.sqrt(len(per_member))
            assert e["revenue_per_member_high"] == pytest.approx(mean + half, abs=0.01)
    assert shown.loc["holdout", "items"] == 0 and "holdout" in exported.index
    assert 'id="admin-ctr-chart"' in html and 'id="admin-revenue-chart"' in html
    long_ago = today - timedelta(days=400)
    older = admin.get(f"{PAGE}?start={long_ago - timedelta(days=10)}&end={long_ago}").get_data(as_text=True)
    assert 'data-testid="ab-empty"' in older


def test_versions_and_the_newest_scores_are_listed_and_exported(shop: Flask, clock: Any) -> None:
    """Weekly re-buyers (as in ``test_recommendations``), fitted twice: both versions are
    listed, the newest first, with the newest one's scores per target and model."""
    with shop.app_context():
        loyalty = Loyalty()
        stock(loyalty)
        for week in range(8):
            for n in range(25):
                buy(loyalty, f"w{week}-{n}", f"c{n}", "TEA" if n % 2 else "JAM")
            clock.advance(days=7)
    fit(shop)
    clock.advance(days=1)
    fit(shop)
    versions = table(
        shop, "SELECT id, users, items, interactions FROM loyalty_recommender_versions ORDER BY id DESC"
    ).set_index("id")
    admin = admin_client(shop)

    html = admin.get(PAGE).get_data(as_text=True)
    listed = csv(admin, "table=versions")
    scores = csv(admin, "table=scores")

    assert len(versions) == 2
    order = [int(v) for v in versions.index]
    assert html.index(f'data-version="{order[0]}"') < html.index(f'data-version="{order[1]}"')
    for version, row in versions.iterrows():
        tag = (
            f'data-version="{version}" data-users="{row["users"]}" data-items="{row["items"]}" '
            f'data-interactions="{row["interactions"]}"'
        )
        assert tag in html
    assert listed["version"].tolist() == order
    assert listed[["users", "items", "interactions"]].to_numpy().tolist() == versions.to_numpy().tolist()
    with shop.app_context():
        from loyalty_plugin.models import RecommenderVersion

        newest = shop.extensions["loyalty"].store.session.get(RecommenderVersion, order[0]).scores
    assert {(r["target"], r["model"]) for r in newest["rows"]} == set(
        zip(scores["target"], scores["model"], strict=True)
    )
    assert set(scores["version"]) == {order[0]}
    for r in newest["rows"]:
        assert f'data-target="{r["target"]}" data-model="{r["model"]}" data-ndcg="{r["ndcg"]}"' in html
    assert scores.loc[scores["model"] == "blend", "target"].tolist() == ["new", "all"]
    assert "artifact" not in listed.columns and "artifact" not in scores.columns


def test_an_inverted_period_is_refused(shop: Flask) -> None:
    response = admin_client(shop).get(f"{PAGE}?start=2026-02-01&end=2026-01-01")
    assert response.status_code == 400
    assert "must end on or after the day it starts" in response.get_data(as_text=True)
