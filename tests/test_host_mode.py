"""A host with its own Flask-SQLAlchemy ``db``: one transaction, signals after its commit,
and its Flask-Migrate autogenerate leaving the plugin's tables alone."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask_login import LoginManager
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import String, select
from sqlalchemy.orm import Mapped, mapped_column

import loyalty_plugin
from loyalty_plugin import Loyalty, migrate
from loyalty_plugin.database import normalise_url


def make_host(
    database_url: str, tmp_path: Path, *, create_host_tables: bool = True, **config: object
) -> tuple[Flask, SQLAlchemy, type]:
    db = SQLAlchemy()

    class ShopOrder(db.Model):  # type: ignore[name-defined]
        __tablename__ = "shop_orders"
        id: Mapped[str] = mapped_column(String(40), primary_key=True)
        total: Mapped[str] = mapped_column(String(20))

    app = Flask("host_shop", instance_path=str(tmp_path / "instance"))
    app.config.update(SECRET_KEY="host-key", SQLALCHEMY_DATABASE_URI=normalise_url(database_url), **config)
    db.init_app(app)
    LoginManager(app)
    Loyalty().init_app(app, db=db)
    with app.app_context():
        if database_url.startswith("sqlite"):
            migrate.upgrade(db.engine)
        if create_host_tables:
            db.create_all()
    return app, db, ShopOrder


@pytest.fixture
def host(database_url: str, tmp_path: Path):
    app, db, order_model = make_host(database_url, tmp_path)
    with app.app_context():
        yield Loyalty(), db, order_model
        db.session.remove()
        app.extensions["loyalty"].close()
        db.engine.dispose()


def test_the_hosts_order_and_its_points_commit_or_roll_back_together(host):
    loyalty, db, ShopOrder = host
    loyalty.enroll("u1")
    db.session.commit()
    db.session.add(ShopOrder(id="o1", total="50.00"))
    loyalty.record_order("o1", "u1", "50.00")
    db.session.rollback()
    assert db.session.get(ShopOrder, "o1") is None
    assert loyalty.balance("u1").pending == 0
    db.session.add(ShopOrder(id="o1", total="50.00"))
    loyalty.record_order("o1", "u1", "50.00")
    db.session.commit()
    assert db.session.get(ShopOrder, "o1") is not None
    assert loyalty.balance("u1").pending == 50


def test_signals_wait_for_the_hosts_commit_and_vanish_on_rollback(host, signal_log):
    loyalty, db, _ = host
    loyalty.enroll("u1")
    assert signal_log.events == []
    db.session.rollback()
    assert signal_log.events == []
    loyalty.enroll("u1")
    db.session.commit()
    assert [name for name, _ in signal_log.events] == ["points_changed", "member_enrolled"]


def test_the_whole_contract_works_on_the_hosts_session(host):
    loyalty, db, _ = host
    loyalty.enroll("u1")
    loyalty.record_order("o1", "u1", "600.00")
    reward = loyalty.create_reward(name="Five off", kind="fixed_amount", amount="5", cost_points=100)
    coupon = loyalty.redeem("u1", reward.id)
    assert loyalty.check_coupon(coupon.code, "u1", "30").amount == 5
    loyalty.use_coupon(coupon.code, "u1", "o2")
    loyalty.record_refund("r1", "o1", "300.00")
    db.session.commit()
    balance = loyalty.balance("u1")
    assert (balance.available, balance.pending) == (0, 300)
    assert loyalty.verify() == []


@pytest.mark.parametrize("with_filter", [True, False])
def test_a_flask_migrate_host_autogenerates_nothing_for_loyalty_tables(database_url, tmp_path, with_filter):
    flask_migrate = pytest.importorskip("flask_migrate")
    args = {"include_name": loyalty_plugin.include_name} if with_filter else {}
    app, db, _ = make_host(database_url, tmp_path, create_host_tables=False)
    flask_migrate.Migrate(app, db, **args)
    directory = str(tmp_path / "host_migrations")
    versions = tmp_path / "host_migrations" / "versions"
    with app.app_context():
        flask_migrate.init(directory=directory)
        flask_migrate.migrate(directory=directory, message="host models")
        first = [p.read_text() for p in versions.glob("*.py")]
        assert len(first) == 1 and "create_table('shop_orders'" in first[0]
        if not with_filter:
            assert "drop_table('loyalty_members')" in first[0]
            return
        assert "loyalty_" not in first[0]
        flask_migrate.upgrade(directory=directory)
        flask_migrate.migrate(directory=directory, message="nothing changed")
        db.engine.dispose()
    assert len(list(versions.glob("*.py"))) == 1


def test_concurrent_redemptions_on_the_hosts_engine_spend_once(database_url, tmp_path):
    """The host's own engine (on SQLite: pysqlite's default, reads outside transactions)."""
    import threading

    from loyalty_plugin import InsufficientPoints

    app, db, _ = make_host(database_url, tmp_path)
    with app.app_context():
        loyalty = Loyalty()
        loyalty.enroll("u1")
        reward_id = loyalty.create_reward(name="Eighty", kind="free_shipping", cost_points=80).id
        db.session.commit()
    barrier = threading.Barrier(8)
    outcomes: list[str] = []

    def redeem() -> None:
        with app.app_context():
            loyalty.get_member("u1")  # a read first, as a page would
            barrier.wait()
            try:
                loyalty.redeem("u1", reward_id)
                db.session.commit()
                outcomes.append("coupon")
            except InsufficientPoints:
                db.session.rollback()
                outcomes.append("refused")
            except Exception as exc:
                outcomes.append(repr(exc))

    threads = [threading.Thread(target=redeem) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes) == ["coupon"] + ["refused"] * 7
    with app.app_context():
        assert loyalty.balance("u1").available == 20
        assert loyalty.verify() == []
        app.extensions["loyalty"].close()
        db.engine.dispose()


def test_jobs_run_and_are_recorded_on_the_hosts_database(host):
    from loyalty_plugin.job_runs import run_job
    from loyalty_plugin.models import JobRun

    loyalty, db, _ = host
    state = loyalty.state()
    loyalty.enroll("u1")
    loyalty.record_order("o1", "u1", "80.00")
    db.session.commit()
    later = loyalty.now() + timedelta(days=20)
    run = run_job(state, "release", now=later)
    scan = run_job(state, "churn", now=later)
    assert (run.status, run.counts) == ("succeeded", {"released": 1})
    assert scan.status == "succeeded" and scan.counts["scored"] == 1
    assert loyalty.balance("u1").available == 180
    assert [r.job for r in db.session.scalars(select(JobRun).order_by(JobRun.id))] == ["release", "churn"]


def test_widget_impressions_are_written_by_the_worker_thread_on_the_hosts_engine(database_url, tmp_path):
    """The writer thread has no request and no app context of its own, yet the host's engine
    is only reachable through one."""
    import threading

    from loyalty_plugin.models import RecommendationImpressions

    app, db, _ = make_host(database_url, tmp_path)
    log = app.extensions["loyalty"].impressions
    log.flush_seconds = 3600  # the background writer stays asleep: this test flushes itself
    log.record(user_id="u1", experiment="e", variant="model", items=4, now=datetime(2026, 3, 1))
    written: list[int] = []
    thread = threading.Thread(target=lambda: written.append(log.flush()))
    thread.start()
    thread.join()
    assert written == [1]
    with app.app_context():
        row = db.session.scalars(select(RecommendationImpressions)).one()
        assert (row.user_id, row.views, row.items_shown) == ("u1", 1, 4)
        app.extensions["loyalty"].close()
        db.engine.dispose()
