"""Jobs across real processes: several schedulers on one database, and runs killed with SIGKILL.

Each process is ``flask loyalty …`` on ``tests/process_app.py``; the test waits for what it
needs to see in the database (polling with a deadline), never for a fixed time.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select

from loyalty_plugin import Loyalty, ledger
from loyalty_plugin.database import normalise_url
from loyalty_plugin.models import (
    ChurnAlert,
    Coupon,
    JobRun,
    LedgerEntry,
    Member,
    MemberScore,
    Order,
    PointLot,
    TierChange,
)
from loyalty_plugin.schedule import JOB_NAMES

ROOT = Path(__file__).resolve().parent.parent
DEADLINE = 90.0


def flask(database_url: str, *args: str, **config: Any) -> subprocess.Popen:
    env = {**os.environ, "TESTAPP_LOYALTY_DATABASE_URI": json.dumps(database_url)}
    for job in JOB_NAMES:
        env[f"TESTAPP_LOYALTY_JOBS_{job.upper()}"] = "null"
    env.update({f"TESTAPP_{key}": json.dumps(value) for key, value in config.items()})
    command = [sys.executable, "-m", "flask", "--app", "tests.process_app:create_app", "loyalty", *args]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(check: Callable[[], Any], what: str) -> Any:
    """Poll the database until ``check`` returns something true."""
    end = time.monotonic() + DEADLINE
    while time.monotonic() < end:
        result = check()
        if result:
            return result
        time.sleep(0.02)
    raise AssertionError(f"gave up waiting for {what}")


def kill_when(job: subprocess.Popen, check: Callable[[], Any], what: str) -> None:
    """SIGKILL ``job`` once ``check`` holds; a job that ended first fails the test with its output."""
    try:
        wait_for(lambda: check() or job.poll() is not None, what)
        assert job.poll() is None, f"the job ended before it could be killed: {job.communicate()}"
    finally:
        job.kill()
        job.wait(timeout=30)


@pytest.fixture
def engine(database_url: str):
    engine = create_engine(normalise_url(database_url))
    yield engine
    engine.dispose()


def count(engine, stmt) -> int:
    with engine.connect() as connection:
        return connection.scalar(stmt) or 0


def test_three_schedulers_run_each_trigger_exactly_once(app, database_url, engine):
    schedulers = [flask(database_url, "scheduler", LOYALTY_JOBS_RELEASE="every 1 second") for _ in range(3)]
    try:
        wait_for(
            lambda: count(engine, select(func.count()).where(JobRun.status == "succeeded")) >= 6,
            "six scheduled runs",
        )
    finally:
        for process in schedulers:
            process.send_signal(signal.SIGTERM)
        logs = [process.communicate(timeout=30)[1] for process in schedulers]
    with engine.connect() as connection:
        rows = connection.execute(select(JobRun.scheduled_for, JobRun.status, JobRun.worker).order_by("id")).all()
    triggers = sorted(row.scheduled_for for row in rows)
    assert len(triggers) == len(set(triggers)), "a trigger ran twice"
    assert all(later - earlier == timedelta(seconds=1) for earlier, later in itertools.pairwise(triggers))
    assert {row.status for row in rows} == {"succeeded"}
    ran = sum(log.count("job release: succeeded") for log in logs)
    assert ran == len(rows), "a process ran a trigger it had not claimed"
    assert all(process.returncode == 0 for process in schedulers)


def make_expiring_lots(app, members: int, awards: int) -> None:
    with app.app_context():
        loyalty = Loyalty()
        for m in range(members):
            loyalty.enroll(f"u{m}")
            for a in range(awards):
                loyalty.award(f"u{m}", 10, "review", key=f"review-{m}-{a}")


def test_expiry_killed_mid_run_is_finished_by_the_next_run_without_doing_anything_twice(app, database_url, engine):
    members, awards = 60, 20
    make_expiring_lots(app, members, awards)
    lots = count(engine, select(func.count()).select_from(PointLot))
    later = (datetime(2026, 1, 5) + timedelta(days=400)).isoformat()
    expired = select(func.count()).where(LedgerEntry.kind == "expire")

    job = flask(
        database_url,
        "run-job",
        "expire",
        "--now",
        later,
        LOYALTY_JOBS_BATCH_SIZE=20,
        PAUSE_AFTER_WRITING="loyalty_ledger_entries",
    )
    kill_when(job, lambda: count(engine, expired) > 0, "the first committed batch")
    done_before_kill = count(engine, expired)
    assert done_before_kill == 20, "the run was not stopped after its first batch"

    rerun = flask(database_url, "run-job", "expire", "--now", later, LOYALTY_JOBS_BATCH_SIZE=20)
    output, errors = rerun.communicate(timeout=DEADLINE)
    assert rerun.returncode == 0, errors
    assert f"{lots - done_before_kill} expired" in output

    with engine.connect() as connection:
        per_lot = connection.execute(
            select(LedgerEntry.lot_id, func.count()).where(LedgerEntry.kind == "expire").group_by(LedgerEntry.lot_id)
        ).all()
        statuses = connection.execute(select(JobRun.status).order_by(JobRun.id)).scalars().all()
        left = connection.scalar(select(func.count()).where(PointLot.status != "expired"))
    assert len(per_lot) == lots and {n for _, n in per_lot} == {1}
    assert left == 0
    assert statuses == ["interrupted", "succeeded"]
    with app.app_context():
        assert ledger.verify(app.extensions["loyalty"].store.session) == []
        assert {m.points_balance for m in app.extensions["loyalty"].store.session.scalars(select(Member))} == {0}


def test_tier_evaluation_killed_at_any_moment_changes_each_tier_once(app, database_url, engine):
    with app.app_context():
        loyalty = Loyalty()
        for m in range(150):
            loyalty.enroll(f"u{m}")
            loyalty.record_order(f"o{m}", f"u{m}", "1200.00" if m % 3 else "6000.00")
    now = "2026-01-06T03:00:00"
    job = flask(database_url, "run-job", "tiers", "--now", now)
    wait_for(
        lambda: count(engine, select(func.count()).select_from(JobRun)) > 0 or job.poll() is not None,
        "the tier run to start",
    )
    job.send_signal(signal.SIGKILL)
    job.wait(timeout=30)
    rerun = flask(database_url, "run-job", "tiers", "--now", now)
    _output, errors = rerun.communicate(timeout=DEADLINE)
    assert rerun.returncode == 0, errors
    again = flask(database_url, "run-job", "tiers", "--now", now)
    assert "0 upgraded" in again.communicate(timeout=DEADLINE)[0]
    with engine.connect() as connection:
        changes = connection.execute(select(TierChange.member_id, func.count()).group_by(TierChange.member_id)).all()
        tiers = dict(connection.execute(select(Member.tier_code, func.count()).group_by(Member.tier_code)).all())
    assert len(changes) == 150 and {n for _, n in changes} == {1}
    assert tiers == {"silver": 100, "gold": 50}


def test_churn_scan_killed_mid_run_leaves_no_duplicate_score_alert_or_coupon(app, database_url, engine):
    from loyalty_plugin import demo

    from .test_churn_scan import SCAN, WINBACK

    state = app.extensions["loyalty"]
    with app.app_context():
        Loyalty().create_reward(**WINBACK)
        demo.seed_demo(
            state.store, state.settings, seed=5, customers=300, days=365, now=SCAN, create_users=None, progress=None
        )
    config = {"LOYALTY_JOBS_BATCH_SIZE": 5, "LOYALTY_WINBACK_REWARD": 1}
    job = flask(
        database_url,
        "run-job",
        "churn",
        "--now",
        SCAN.isoformat(),
        PAUSE_AFTER_WRITING="loyalty_member_scores",
        **config,
    )
    scored = select(func.count()).select_from(MemberScore)
    kill_when(job, lambda: count(engine, scored) > 0, "the first committed scores")
    written_before_kill = count(engine, scored)
    assert written_before_kill == 5, "the run was not stopped after its first batch of scores"

    rerun = flask(database_url, "run-job", "churn", "--now", SCAN.isoformat(), **config)
    output, errors = rerun.communicate(timeout=DEADLINE)
    assert rerun.returncode == 0, errors
    with engine.connect() as connection:
        scores = connection.execute(
            select(MemberScore.member_id, MemberScore.churn_risk, MemberScore.recency_days)
        ).all()
        alerts = connection.execute(select(ChurnAlert.member_id, ChurnAlert.coupon_id)).all()
        coupons = connection.scalar(select(func.count()).select_from(Coupon).where(Coupon.points_spent == 0))
    kept = Order.total > Order.refunded_total  # an order refunded in full is no purchase
    members_with_orders = count(engine, select(func.count(func.distinct(Order.member_id))).where(kept))
    assert 0 < written_before_kill < len(scores) == members_with_orders
    assert f"{len(scores) - written_before_kill} scored" in output
    expected = {m for m, risk, recency in scores if risk >= 0.7 and recency < 90}
    assert sorted(m for m, _ in alerts) == sorted(expected)
    assert coupons == len(alerts) == len({c for _, c in alerts})
