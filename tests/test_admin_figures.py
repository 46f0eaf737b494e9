"""The overview and tier report on the seeded demo shop equal what independent queries give:
each expected figure is computed here with hand-written SQL read into pandas, not with the
plugin's queries. Runs on SQLite and, with ``LOYALTY_TEST_DATABASE_URL``, on PostgreSQL."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pandas as pd
import pytest
from flask import Flask
from sqlalchemy import text

import wsgi
from loyalty_plugin import admin_figures, admin_ledger_months, admin_overview, admin_segments, admin_tiers
from loyalty_plugin.models import LedgerEntry, Member

from .conftest import PG_URL, empty_postgres, skip_without_postgres
from .test_seed import close, run

NOW = datetime(2026, 6, 1, 12, 0)
CUSTOMERS = 150
DAYS = 540


def seeded_shop(url: str) -> Flask:
    """The demo shop with a year and a half of history and a churn scan (with a threshold low
    enough that a small shop has alerts)."""
    app = wsgi.create_app(
        {"TESTING": True, "SECRET_KEY": "test-secret", "SQLALCHEMY_DATABASE_URI": url, "LOYALTY_CHURN_THRESHOLD": "0.3"}
    )
    app.extensions["loyalty"].clock = lambda: NOW
    run(app, "loyalty", "db", "upgrade")
    run(app, "demo", "init-db")
    run(app, "loyalty", "seed-demo", "--seed", "11", "--customers", str(CUSTOMERS), "--days", str(DAYS))
    run(app, "loyalty", "run-job", "churn")
    return app


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def shop(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('admin')}/shop.sqlite"
    elif PG_URL:
        url = empty_postgres(PG_URL)
    else:
        skip_without_postgres()
    app = seeded_shop(url)
    yield app
    close(app)


def table(app: Flask, sql: str, **params: Any) -> pd.DataFrame:
    with app.app_context(), wsgi.db.engine.connect() as connection:
        return pd.read_sql(text(sql), connection, params=params)


def figures(app: Flask, now: datetime = NOW) -> admin_overview.Overview:
    with app.app_context():
        state = app.extensions["loyalty"]
        return admin_overview.overview(wsgi.db.session, now=now, settings=state.settings)


def cents(value: Any) -> Decimal:
    return Decimal(int(value)).scaleb(-2)


def live_members(app: Flask) -> pd.DataFrame:
    return table(
        app,
        "SELECT id, user_id, tier_code, points_balance, points_pending, enrolled_at, tier_reached_at "
        "FROM loyalty_members WHERE erased_at IS NULL",
    )


def orders_in_year(app: Flask, now: datetime = NOW) -> pd.DataFrame:
    return table(
        app,
        "SELECT member_id, user_id, placed_at, total, refunded_total, shipping, tax FROM loyalty_orders "
        "WHERE placed_at > :since AND placed_at <= :now",
        since=now - timedelta(days=365),
        now=now,
    )


def test_member_counts_match_the_members_table(shop: Flask) -> None:
    members = live_members(shop)
    orders = orders_in_year(shop)
    recent = orders[pd.to_datetime(orders["placed_at"]) > NOW - timedelta(days=90)]

    o = figures(shop)

    assert o.members == len(members) > 0
    recent_ids = recent["member_id"].dropna().astype(int)
    assert o.active == recent_ids[recent_ids.isin(members["id"])].nunique() > 0
    assert o.new_this_month == int((pd.to_datetime(members["enrolled_at"]) >= datetime(2026, 6, 1)).sum())


def test_repeat_purchase_rates_of_members_and_other_customers(shop: Flask) -> None:
    members = live_members(shop)
    orders = orders_in_year(shop)
    by_member = orders[orders["member_id"].isin(members["id"])].groupby("member_id").size()
    everyone = table(shop, "SELECT user_id FROM loyalty_members")["user_id"]
    others = orders[orders["member_id"].isna() & orders["user_id"].notna() & ~orders["user_id"].isin(everyone)]
    by_other = others.groupby("user_id").size()

    o = figures(shop)

    assert (o.repeat_members.customers, o.repeat_members.repeaters) == (len(by_member), int((by_member > 1).sum()))
    assert (o.repeat_others.customers, o.repeat_others.repeaters) == (len(by_other), int((by_other > 1).sum()))
    assert o.repeat_members.customers > 0 and o.repeat_others.customers > 0


def test_average_order_value_by_tier(shop: Flask) -> None:
    members = live_members(shop).rename(columns={"id": "member_id"})
    orders = orders_in_year(shop).dropna(subset=["member_id"])
    orders["member_id"] = orders["member_id"].astype(int)
    joined = orders.merge(members[["member_id", "tier_code"]], on="member_id")
    expected = joined.groupby("tier_code").agg(orders=("total", "size"), paid=("total", "sum"))

    o = figures(shop)

    assert sum(t.orders for t in o.tiers) == len(joined) > 0
    for row in o.tiers:
        assert row.members == int((members["tier_code"] == row.code).sum())
        if row.code not in expected.index:
            assert row.orders == 0 and row.aov is None
            continue
        orders_n, paid = expected.loc[row.code]
        assert row.orders == orders_n
        assert row.order_value == cents(paid)
        assert row.aov == (cents(paid) / int(orders_n)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def ledger_by_month(app: Flask) -> pd.DataFrame:
    entries = table(app, "SELECT kind, points, pending, created_at FROM loyalty_ledger_entries")
    entries["month"] = pd.to_datetime(entries["created_at"]).dt.strftime("%Y-%m")
    entries["moved"] = entries["points"] + entries["pending"]
    return entries


def test_points_issued_redeemed_and_expired_per_month(shop: Flask) -> None:
    entries = ledger_by_month(shop)
    issuing = entries[entries["kind"].isin(admin_overview.ISSUING) & (entries["moved"] > 0)]
    issued = issuing.groupby("month")["moved"].sum()
    redeemed = -entries[entries["kind"] == "redeem"].groupby("month")["moved"].sum()
    expired = -entries[entries["kind"] == "expire"].groupby("month")["moved"].sum()

    o = figures(shop)

    assert [m.month for m in o.months] == [f"{y}-{m:02d}" for y, m in [(2025, x) for x in range(7, 13)]] + [
        f"2026-{m:02d}" for m in range(1, 7)
    ]
    for m in o.months:
        assert (m.issued, m.redeemed, m.expired) == (
            int(issued.get(m.month, 0)),
            int(redeemed.get(m.month, 0)),
            int(expired.get(m.month, 0)),
        ), m.month
    assert o.issued > 0 and o.redeemed > 0 and o.expired > 0
    assert o.redemption_rate == o.redeemed / o.issued


def test_liability_and_forecast_expiry(shop: Flask) -> None:
    members = live_members(shop)
    rewards = table(
        shop,
        "SELECT amount, cost_points FROM loyalty_rewards WHERE active = :yes AND kind = 'fixed_amount'",
        yes=True,
    )
    value = max(cents(a) / int(c) for a, c in zip(rewards["amount"], rewards["cost_points"], strict=True))
    available = int(members.loc[members["points_balance"] > 0, "points_balance"].sum())
    pending = int(members["points_pending"].sum())

    o = figures(shop)
    liability = o.liability

    assert (liability.available, liability.pending, liability.point_value) == (available, pending, value)
    assert liability.money == ((available + pending) * value).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    assert liability.breakage == o.expired / (o.expired + o.redeemed)
    assert liability.expiring_points == round((available + pending) * liability.breakage)


def test_tier_report_rows_for_a_period(shop: Flask) -> None:
    start, end = datetime(2025, 9, 1), datetime(2026, 3, 1)
    members = live_members(shop).rename(columns={"id": "member_id"})
    orders = table(
        shop,
        "SELECT member_id, total, refunded_total FROM loyalty_orders "
        "WHERE member_id IS NOT NULL AND placed_at >= :start AND placed_at < :end",
        start=start,
        end=end,
    )
    joined = orders.merge(members[["member_id", "tier_code"]], on="member_id")
    joined["kept"] = joined["total"] - joined["refunded_total"]
    expected = joined.groupby("tier_code").agg(
        buyers=("member_id", "nunique"), orders=("total", "size"), revenue=("kept", "sum")
    )

    with shop.app_context():
        rows = admin_tiers.tier_rows(
            wsgi.db.session, start=start, end=end, settings=shop.extensions["loyalty"].settings
        )

    assert sum(r.orders for r in rows) == len(joined) > 0
    for row in rows:
        assert row.members == int((members["tier_code"] == row.code).sum())
        buyers, orders_n, revenue = expected.loc[row.code] if row.code in expected.index else (0, 0, 0)
        assert (row.buyers, row.orders, row.revenue) == (buyers, orders_n, cents(revenue))


def test_tier_movements_per_month(shop: Flask) -> None:
    start, end = datetime(2025, 1, 1), datetime(2026, 6, 1)
    changes = table(shop, "SELECT member_id, reason, changed_at FROM loyalty_tier_history")
    changes["month"] = pd.to_datetime(changes["changed_at"]).dt.strftime("%Y-%m")
    members = live_members(shop)
    joined = pd.to_datetime(members["enrolled_at"]).dt.strftime("%Y-%m")

    with shop.app_context():
        snapshot = admin_figures.current(wsgi.db.session, now=NOW, settings=shop.extensions["loyalty"].settings)
        months = admin_tiers.movements(wsgi.db.session, start=start, end=end, snapshot=snapshot)

    assert [m.month for m in months][:2] == ["2025-01", "2025-02"] and months[-1].month == "2026-05"
    assert sum(m.upgrades for m in months) > 0
    for m in months:
        in_month = changes[changes["month"] == m.month]
        assert m.upgrades == int((in_month["reason"] == "upgrade").sum())
        assert m.downgrades == int((in_month["reason"] == "downgrade").sum())
        assert m.kept == int((joined <= m.month).sum()) - in_month["member_id"].nunique()


def admin_client(app: Flask) -> Any:
    client = app.test_client()
    with client.session_transaction() as session:
        session["_user_id"] = "admin"
    return client


def test_rfm_grid_counts_each_cell_of_the_last_scan(shop: Flask) -> None:
    segments = table(
        shop,
        "SELECT s.segment, s.scores, s.computed_on FROM loyalty_member_segments s "
        "JOIN loyalty_members m ON m.id = s.member_id WHERE s.kind = 'rfm' AND m.erased_at IS NULL",
    )
    latest = segments[segments["computed_on"] == segments["computed_on"].max()]
    cells = latest["scores"].str.extract(r"R(\d) F(\d)").astype(int)
    expected = cells.assign(segment=latest["segment"]).groupby([0, 1, "segment"]).size()

    with shop.app_context():
        grid = admin_segments.rfm_grid(wsgi.db.session)

    assert {(c.r, c.f, c.segment): c.members for c in grid.cells.values()} == {
        (int(r), int(f), name): int(n) for (r, f, name), n in expected.items()
    }
    assert grid.members == len(latest) > 0
    html = admin_client(shop).get("/loyalty/admin/segments").get_data(as_text=True)
    for cell in grid.cells.values():
        assert f'data-r="{cell.r}" data-f="{cell.f}" data-members="{cell.members}"' in html


def test_value_segments_and_churn_alerts_and_model_quality_pages(shop: Flask) -> None:
    value = table(
        shop,
        "SELECT segment, COUNT(*) AS n FROM loyalty_member_segments WHERE kind = 'value' GROUP BY segment",
    )
    alerts = table(shop, "SELECT status FROM loyalty_churn_alerts")
    report = table(shop, "SELECT details FROM loyalty_model_reports WHERE model = 'churn'")
    auc = json.loads(report["details"].iloc[0])["auc"] if isinstance(report["details"].iloc[0], str) else None
    client = admin_client(shop)

    segments = client.get("/loyalty/admin/segments").get_data(as_text=True)
    churn = client.get("/loyalty/admin/churn?status=all").get_data(as_text=True)
    exported = pd.read_csv(io.StringIO(client.get("/loyalty/admin/churn?status=all&format=csv").get_data(as_text=True)))
    models = client.get("/loyalty/admin/models").get_data(as_text=True)

    for name, n in zip(value["segment"], value["n"], strict=True):
        assert f'data-segment="{name}"' in segments and f'data-value="{n}"' in segments
    assert len(alerts) > 0
    assert churn.count('<tr data-status="') == min(len(alerts), 50) and len(exported) == len(alerts)
    assert f'data-testid="alerts-open" data-value="{int((alerts["status"] == "open").sum())}"' in churn
    if auc is not None:
        assert f'data-testid="auc" data-value="{auc}"' in models
    assert 'id="admin-calibration-chart"' in models


def test_the_overview_page_shows_the_figures(shop: Flask) -> None:
    o = figures(shop)
    page = admin_client(shop).get("/loyalty/admin/")

    assert page.status_code == 200
    html = page.get_data(as_text=True)
    for testid, value in {
        "members": o.members,
        "active": o.active,
        "issued": o.issued,
        "redeemed": o.redeemed,
        "expired": o.expired,
        "outstanding": o.liability.points,
        "liability": o.liability.money,
    }.items():
        assert f'data-testid="{testid}" data-value="{value}"' in html


def test_ledger_totals_take_in_entries_written_after_the_first_read(shop: Flask) -> None:
    """The running monthly totals of a worker stay exact as the ledger grows."""
    with shop.app_context():
        before = figures(shop)
        user_id = wsgi.db.session.query(Member.user_id).filter(Member.erased_at.is_(None)).first()[0]
        wsgi.loyalty.award(user_id, 777, "survey", key="admin-figures-test")
        wsgi.db.session.commit()
        newest = wsgi.db.session.query(LedgerEntry).order_by(LedgerEntry.id.desc()).first()
        month = newest.created_at.strftime("%Y-%m")

        after = figures(shop)
        later = figures(shop, now=NOW + admin_ledger_months.SETTLE * 2)

    issued = {m.month: m.issued for m in before.months}
    assert {m.month: m.issued for m in after.months}[month] == issued[month] + 777
    assert {m.month: m.issued for m in later.months}[month] == issued[month] + 777


def test_preview_of_the_next_evaluation_is_what_evaluation_does(shop: Flask) -> None:
    """At a later day (spend leaving the window, protection ended for some) and after two big
    orders, the preview's moves are the ones the real evaluation makes."""
    later = NOW + timedelta(days=380)
    members = live_members(shop)
    bronze = members.loc[members["tier_code"] == "bronze", "user_id"].head(2).tolist()
    with shop.app_context():
        shop.extensions["loyalty"].clock = lambda: later
        for i, user_id in enumerate(bronze):
            wsgi.loyalty.record_order(f"admin-preview-{i}", user_id, "1200.00", placed_at=later)
        wsgi.db.session.commit()
        preview = figures(shop, now=later).preview
        run = wsgi.loyalty.evaluate_tiers()
        wsgi.db.session.commit()
        moved = table(
            shop,
            "SELECT from_tier, to_tier FROM loyalty_tier_history WHERE changed_at > :since",
            since=later - timedelta(days=1),
        )

    assert preview.upgrades == run.upgraded >= 2
    assert preview.downgrades == run.downgraded > 0
    assert preview.kept == run.kept
    assert preview.moves == moved.groupby(["from_tier", "to_tier"]).size().to_dict()
