"""The admin's kept figures (``admin_figures``) follow every change: new orders, refunds, tier
changes, erasure, a write that bypasses the plugin, time passing and the clock going back.
After each change the overview and the tier report's default period are compared with what
hand-written SQL over the same tables gives. Both databases; the tables made by
``create_all`` here and by the migrations in ``test_admin_figures``."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pandas as pd
from flask import Flask
from sqlalchemy import func, select, text

from loyalty_plugin import Loyalty, admin_figures, admin_overview, admin_tiers, migrate
from loyalty_plugin.admin_member_figures import fingerprint
from loyalty_plugin.models import ADMIN_TRIGGERS, MEMBER_NOTIFY, AdminChange, AdminState, Base

from .conftest import make_app


def frame(app: Flask, sql: str, **params: Any) -> pd.DataFrame:
    with app.extensions["loyalty"].store.engine.connect() as connection:
        return pd.read_sql(text(sql), connection, params=params)


def expected(app: Flask, now: datetime) -> dict[str, Any]:
    """The figures from the tables, as the overview and the tier report define them."""
    members = frame(
        app,
        "SELECT id AS member_id, tier_code, points_balance, points_pending, enrolled_at FROM loyalty_members "
        "WHERE erased_at IS NULL",
    )
    orders = frame(
        app, "SELECT member_id, placed_at, total, refunded_total FROM loyalty_orders WHERE member_id IS NOT NULL"
    )
    orders["placed_at"] = pd.to_datetime(orders["placed_at"])
    orders = orders.merge(members[["member_id", "tier_code"]], on="member_id")
    year = orders[(orders["placed_at"] > now - timedelta(days=365)) & (orders["placed_at"] <= now)]
    recent = year[year["placed_at"] > now - timedelta(days=90)]
    first, last = admin_tiers.default_period(now)
    period = orders[
        (orders["placed_at"] >= datetime.combine(first, time()))
        & (orders["placed_at"] < datetime.combine(last + timedelta(days=1), time()))
    ]
    per_member = year.groupby("member_id").size()

    def per_tier(found: pd.DataFrame) -> dict[str, tuple[int, int, Decimal, Decimal]]:
        return {
            code: (
                int(g["member_id"].nunique()),
                len(g),
                Decimal(int(g["total"].sum())).scaleb(-2),
                Decimal(int((g["total"] - g["refunded_total"]).sum())).scaleb(-2),
            )
            for code, g in found.groupby("tier_code")
        }

    return {
        "members": len(members),
        "per tier": members.groupby("tier_code").size().to_dict(),
        "new": int((pd.to_datetime(members["enrolled_at"]) >= now.replace(day=1, hour=0, minute=0)).sum()),
        "available": int(members.loc[members["points_balance"] > 0, "points_balance"].sum()),
        "pending": int(members["points_pending"].sum()),
        "year": per_tier(year),
        "period": per_tier(period),
        "active": int(recent["member_id"].nunique()),
        "repeat": (len(per_member), int((per_member > 1).sum())),
    }


def shown(app: Flask, now: datetime) -> dict[str, Any]:
    """The same figures as the admin computes them."""
    state = app.extensions["loyalty"]
    with app.app_context(), state.store.work(write=False) as session:
        o = admin_overview.overview(session, now=now, settings=state.settings)
        snapshot = admin_figures.current(session, now=now, settings=state.settings)
    rows = admin_tiers.default_tier_rows(snapshot, state.settings)
    return {
        "members": o.members,
        "per tier": {t.code: t.members for t in o.tiers if t.members},
        "new": o.new_this_month,
        "available": o.liability.available,
        "pending": o.liability.pending,
        "year": {t.code: (t.buyers, t.orders, t.order_value, t.revenue) for t in o.tiers if t.orders},
        "period": {r.code: (r.buyers, r.orders, r.order_value, r.revenue) for r in rows if r.orders},
        "active": o.active,
        "repeat": (o.repeat_members.customers, o.repeat_members.repeaters),
    }


def queued(app: Flask) -> int:
    with app.extensions["loyalty"].store.engine.connect() as connection:
        return int(connection.scalar(select(func.count()).select_from(AdminChange)) or 0)


def test_figures_follow_orders_refunds_tiers_erasure_direct_writes_and_time(
    app: Flask, loyalty: Loyalty, clock: Any
) -> None:
    start = clock.now
    for user in ("a", "b", "c", "d"):
        loyalty.enroll(user)
    loyalty.record_order("a1", "a", "1200.00")
    loyalty.record_order("b1", "b", "50.00", placed_at=start - timedelta(days=100))
    loyalty.record_order("b2", "b", "20.00", placed_at=start - timedelta(days=10))
    loyalty.record_order("c1", "c", "30.00")
    loyalty.record_order("guest", None, "99.00")
    assert shown(app, clock.now) == expected(app, clock.now)
    assert queued(app) == 0

    loyalty.record_refund("r1", "a1", "200.00")
    clock.advance(days=1)
    loyalty.record_order("a2", "a", "10.00")
    assert shown(app, clock.now) == expected(app, clock.now)

    run = loyalty.evaluate_tiers()
    assert run.upgraded == 1
    assert shown(app, clock.now) == expected(app, clock.now)

    with app.extensions["loyalty"].store.engine.begin() as connection:  # a host's own SQL
        connection.execute(text("UPDATE loyalty_orders SET refunded_total = total WHERE order_id = 'c1'"))
        connection.execute(text("UPDATE loyalty_members SET points_pending = points_pending + 7 WHERE user_id = 'd'"))
    assert shown(app, clock.now) == expected(app, clock.now)

    loyalty.erase_member("c")
    assert shown(app, clock.now) == expected(app, clock.now)

    for days in (40, 200, 150):  # b's orders leave the 90-day and then the 365-day window
        clock.advance(days=days)
        assert shown(app, clock.now) == expected(app, clock.now), days
    earlier = start + timedelta(days=2)  # and back
    assert shown(app, earlier) == expected(app, earlier)


def test_other_settings_rebuild_the_figures(database_url: str, tmp_path: Any, clock: Any) -> None:
    first = make_app(database_url, str(tmp_path / "one"))
    first.extensions["loyalty"].clock = clock
    with first.app_context():
        Loyalty().enroll("a")
        Loyalty().record_order("a1", "a", "300.00")
    shown(first, clock.now)
    other = make_app(database_url, str(tmp_path / "two"), LOYALTY_TIER_WINDOW_DAYS=30)
    other.extensions["loyalty"].clock = clock

    figures = shown(other, clock.now)

    with other.extensions["loyalty"].store.engine.connect() as connection:
        stored = connection.scalar(select(AdminState.settings))
    assert (
        stored == fingerprint(other.extensions["loyalty"].settings) != fingerprint(first.extensions["loyalty"].settings)
    )
    assert figures == expected(other, clock.now)
    for app in (first, other):
        app.extensions["loyalty"].close()


def trigger_names(app: Flask) -> set[str]:
    engine = app.extensions["loyalty"].store.engine
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            sql = "SELECT name FROM sqlite_master WHERE type = 'trigger'"
        else:
            sql = "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"
        return set(connection.execute(text(sql)).scalars())


def test_create_all_and_the_migrations_make_the_same_triggers(app: Flask) -> None:
    made = trigger_names(app)
    engine = app.extensions["loyalty"].store.engine
    Base.metadata.drop_all(engine)
    assert trigger_names(app) == set()
    migrate.upgrade(engine)

    assert trigger_names(app) == made and made
    notify = MEMBER_NOTIFY if engine.dialect.name == "postgresql" else []
    created = [s for s in [*ADMIN_TRIGGERS[engine.dialect.name], *notify] if "CREATE TRIGGER" in s]
    assert len(made) == len(created)
    migrate.downgrade(engine, "0006_admin_figures")
    assert made - trigger_names(app) == ({"loyalty_member_notify"} if notify else set())
    migrate.downgrade(engine, "0005_recommender")
    assert trigger_names(app) == set()
