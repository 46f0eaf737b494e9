"""The admin area of the demo shop in a real browser: the demo admin logs in through the shop's
own login page and opens every admin page, in English (``en-US``) and Simplified Chinese
(``zh-CN``, the browser context's locale and so its Accept-Language). Each page is screenshotted
to ``tests/browser/screenshots/admin/<locale>/NN-name.png`` and checked with axe-core; no page
may log a console error (a Content-Security-Policy violation by a chart would be one) and every
chart must be drawn. An adjustment and a "run now" go through the forms as an admin would.

The shop holds the seeded demo program (``flask loyalty seed-demo``) after a churn scan and a
fitted recommender, so the segment, alert, model and recommendation pages have something to
show; a month of widget views and clicks per A/B variant is written into the shop's database
(their figures are tested through the real API in ``tests/test_admin_recommendations.py``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any

import pytest

from .conftest import SCREENSHOTS, DemoShop, Journey

pytestmark = pytest.mark.browser

#: (screenshot name, path) of every admin page that needs no id.
PAGES = [
    ("overview", "/loyalty/admin/"),
    ("tiers", "/loyalty/admin/tiers"),
    ("keep-tier", "/loyalty/admin/tiers/keep"),
    ("segments", "/loyalty/admin/segments"),
    ("churn", "/loyalty/admin/churn?status=all"),
    ("models", "/loyalty/admin/models"),
    ("recommendations", "/loyalty/admin/recommendations"),
    ("members", "/loyalty/admin/members"),
    ("rewards", "/loyalty/admin/rewards"),
    ("reward-new", "/loyalty/admin/rewards/new"),
    ("jobs", "/loyalty/admin/jobs"),
    ("audit", "/loyalty/admin/audit"),
    ("settings", "/loyalty/admin/settings"),
]

CHARTS_DRAWN = """() => [...document.querySelectorAll("canvas[data-chart]")].map(
  canvas => Boolean(window.Chart && window.Chart.getChart(canvas)) && canvas.width > 0 && canvas.height > 0)"""


LOCALES = ["en-US", "zh-CN"]


def widget_traffic(demo_shop: DemoShop) -> None:
    """Views and clicks of the last days for each variant of the default experiment, by the
    seeded customers (so their orders give the revenue per member)."""
    path = demo_shop.env["DEMO_DATABASE_URL"].removeprefix("sqlite:///")
    today = date.today()
    with sqlite3.connect(path) as db:
        users = [row[0] for row in db.execute("SELECT user_id FROM loyalty_members ORDER BY id LIMIT 45")]
        split = {"model": users[:30], "popular": users[30:40], "holdout": users[40:]}
        db.executemany(
            "INSERT INTO loyalty_recommendation_impressions VALUES (?, ?, ?, ?, ?, ?)",
            [
                (today - timedelta(days=d), "recommendations", variant, user, 0 if variant == "holdout" else 4, 1)
                for d in range(5)
                for variant, members in split.items()
                for user in members
            ],
        )
        db.executemany(
            "INSERT INTO loyalty_recommendation_clicks (user_id, experiment, variant, sku, position, reason, "
            "model_version, clicked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (user, "recommendations", variant, "SKU-1", 1, "popular", None, datetime.now() - timedelta(days=1))
                for variant, members in (("model", split["model"][:9]), ("popular", split["popular"][:2]))
                for user in members
            ],
        )


@pytest.fixture
def admin_tab(chromium: Any, demo_shop: DemoShop, locale: str) -> Iterator[Journey]:
    """A browser tab logged in as the demo admin on a seeded, scanned shop."""
    demo_shop.flask("loyalty", "seed-demo", "--customers", "120", "--days", "400")
    demo_shop.flask("loyalty", "run-job", "churn")
    demo_shop.flask("loyalty", "run-job", "recommender")
    widget_traffic(demo_shop)
    folder = SCREENSHOTS / "admin" / locale
    folder.mkdir(parents=True, exist_ok=True)
    for old in [*folder.rglob("*.png"), *folder.glob("axe-report.txt")]:
        old.unlink()
    context = chromium.new_context(locale=locale, base_url=demo_shop.base_url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    tab = Journey(page, demo_shop, locale, folder)
    page.on("console", tab.note_console)
    page.on("pageerror", tab.note_page_error)
    page.goto("/login")
    page.locator("[name='email']").fill("admin@example.com")
    page.locator("[name='password']").fill(demo_shop.env["DEMO_ADMIN_PASSWORD"])
    page.locator("form:has([name='password']) [type='submit']").click()
    page.wait_for_load_state("load")
    try:
        yield tab
    finally:
        context.close()


@pytest.mark.parametrize("locale", LOCALES)
def test_every_admin_page_opens_clean_for_the_demo_admin(admin_tab: Journey, locale: str) -> None:
    from playwright.sync_api import expect

    page = admin_tab.page
    for name, path in PAGES:
        response = page.goto(path)
        assert response is not None and response.status == 200, (path, response and response.status)
        assert page.locator("h1").count() == 1
        assert all(page.evaluate(CHARTS_DRAWN)), f"{path}: a chart was not drawn"
        admin_tab.checkpoint(name)

    page.goto("/loyalty/admin/members")
    page.locator("[data-testid='members'] a").first.click()
    page.wait_for_load_state("load")
    admin_tab.checkpoint("member")
    page.locator("[name='points']").fill("50")
    page.locator("[name='reason']").fill("Goodwill for a late parcel")
    page.locator("[data-testid='adjust']").click()
    page.wait_for_load_state("load")
    assert page.locator("[data-kind='adjust']").first.inner_text().find("Goodwill for a late parcel") >= 0
    admin_tab.checkpoint("member-adjusted")

    page.goto("/loyalty/admin/rewards")
    page.locator("[data-reward-id] a").first.click()
    page.wait_for_load_state("load")
    admin_tab.checkpoint("reward-edit")

    page.goto("/loyalty/admin/jobs")
    page.locator("[data-testid='run-release']").click()
    # A run still going when the page answers is followed: the page reloads until it has ended.
    expect(page.locator("tr[data-job='release'] td[data-status='succeeded']")).to_have_count(1, timeout=60_000)
    admin_tab.checkpoint("jobs-after-run")

    page.set_viewport_size({"width": 375, "height": 812})
    for name, path in PAGES[:3]:
        page.goto(path)
        admin_tab.checkpoint(name, "narrow")

    admin_tab.assert_clean()
