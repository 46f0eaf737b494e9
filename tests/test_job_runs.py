"""Job runs in one process: recorded, claimed once per trigger, locked, failures kept.

The same guarantees across real processes are in ``test_job_processes.py``.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from loyalty_plugin import Loyalty
from loyalty_plugin.errors import ConfigError
from loyalty_plugin.job_runs import run_job
from loyalty_plugin.joblock import job_lock, worker_name
from loyalty_plugin.jobs import JOBS
from loyalty_plugin.models import JobRun, PointLot
from loyalty_plugin.schedule import parse_schedule
from loyalty_plugin.scheduler import build_scheduler

from .conftest import make_app

TRIGGER = datetime(2026, 1, 6, 2, 15)


def runs(app) -> list[JobRun]:
    with app.app_context():
        session = app.extensions["loyalty"].store.session
        return list(session.scalars(select(JobRun).order_by(JobRun.id)))


def test_a_run_is_recorded_with_its_counts(app, clock):
    with app.app_context():
        loyalty = Loyalty()
        loyalty.enroll("u1")
        loyalty.record_order("o1", "u1", "120.00")
        clock.advance(days=15)
        run = run_job(app.extensions["loyalty"], "release")
    assert (run.job, run.trigger, run.status, run.counts) == ("release", "manual", "succeeded", {"released": 1})
    assert run.started_at <= run.finished_at and run.worker == worker_name()


def test_one_trigger_runs_once_however_many_times_it_fires(app):
    state = app.extensions["loyalty"]
    with app.app_context():
        first = run_job(state, "tiers", trigger="schedule", scheduled_for=TRIGGER)
        again = run_job(state, "tiers", trigger="schedule", scheduled_for=TRIGGER)
        next_one = run_job(state, "tiers", trigger="schedule", scheduled_for=TRIGGER + timedelta(days=1))
    assert first.status == "succeeded" and again is None and next_one.status == "succeeded"
    assert [(r.scheduled_for, r.status) for r in runs(app)] == [
        (TRIGGER, "succeeded"),
        (TRIGGER + timedelta(days=1), "succeeded"),
    ]


def test_a_trigger_that_finds_the_job_still_running_is_skipped_and_does_nothing(app, clock):
    state = app.extensions["loyalty"]
    with app.app_context():
        Loyalty().enroll("u1")
        Loyalty().record_order("o1", "u1", "50.00")
        clock.advance(days=15)
        with job_lock(state.store.engine, "release", "other-host:1:99") as held:
            assert held
            run = run_job(state, "release", trigger="schedule", scheduled_for=TRIGGER)
        pending = state.store.session.scalar(select(func.count()).where(PointLot.status == "pending"))
    assert run.status == "skipped" and "still going" in run.error
    assert pending == 1
    with app.app_context():
        assert run_job(state, "release").counts == {"released": 1}


def test_the_lock_is_free_again_after_a_run_and_held_by_one_at_a_time(app):
    engine = app.extensions["loyalty"].store.engine
    with job_lock(engine, "expire", "a:1:1") as first:
        with job_lock(engine, "expire", "b:2:2") as second:
            assert (first, second) == (True, False)
        with job_lock(engine, "tiers", "b:2:3") as other_job:
            assert other_job
    with job_lock(engine, "expire", "b:2:4") as later:
        assert later


def test_a_failed_run_is_recorded_with_its_reason_and_nothing_it_did_stays(app, monkeypatch):
    state = app.extensions["loyalty"]

    def broken(ctx):
        with ctx.store.work() as session:
            session.add(PointLot(member_id=1, points=5, remaining=5, status="pending"))
            raise RuntimeError("the catalog service is down")

    monkeypatch.setitem(JOBS, "birthdays", broken)
    with app.app_context(), pytest.raises(RuntimeError):
        run_job(state, "birthdays")
    (run,) = runs(app)
    assert run.status == "failed" and run.error == "RuntimeError: the catalog service is down"
    with app.app_context():
        assert state.store.session.scalar(select(func.count()).select_from(PointLot)) == 0


def test_a_run_left_running_by_a_dead_worker_is_marked_interrupted_by_the_next(app):
    state = app.extensions["loyalty"]
    with app.app_context():
        session = state.store.session
        session.add(
            JobRun(
                job="expire",
                scheduled_for=TRIGGER,
                trigger="schedule",
                status="running",
                worker="gone:1",
                started_at=TRIGGER,
            )
        )
        session.commit()
        run_job(state, "expire")
    assert [r.status for r in runs(app)] == ["interrupted", "succeeded"]


def test_the_cli_runs_a_job_and_reports_a_failure_clearly(app, monkeypatch):
    ok = app.test_cli_runner().invoke(args=["loyalty", "run-job", "expire"])
    assert ok.exit_code == 0 and "expire: 0 expired, 0 warned" in ok.output

    def broken(ctx):
        raise ValueError("bad data in row 7")

    monkeypatch.setitem(JOBS, "tiers", broken)
    failed = app.test_cli_runner().invoke(args=["loyalty", "run-job", "tiers"])
    assert failed.exit_code == 1 and "tiers failed; the run is recorded as failed: bad data in row 7" in failed.output


@pytest.mark.parametrize(
    ("text", "when", "expected"),
    [
        ("15 2 * * *", datetime(2026, 3, 1, 9, 0), datetime(2026, 3, 1, 2, 15)),
        ("15 2 * * *", datetime(2026, 3, 1, 2, 14, 59), datetime(2026, 2, 28, 2, 15)),
        ("every 10 minutes", datetime(2026, 3, 1, 9, 7, 30), datetime(2026, 3, 1, 9, 0)),
        ("every 1 second", datetime(2026, 3, 1, 9, 7, 30, 900000), datetime(2026, 3, 1, 9, 7, 30)),
        ("0 4 * * 1", datetime(2026, 3, 5, 0, 0), datetime(2026, 3, 2, 4, 0)),  # Monday, as in crontab
        ("0 4 * * 0", datetime(2026, 3, 5, 0, 0), datetime(2026, 3, 1, 4, 0)),  # Sunday
        ("0 4 * * 7", datetime(2026, 3, 5, 0, 0), datetime(2026, 3, 1, 4, 0)),  # Sunday again
        ("0 4 * * 1-5", datetime(2026, 3, 8, 12, 0), datetime(2026, 3, 6, 4, 0)),  # Friday before the weekend
    ],
)
def test_every_process_computes_the_same_trigger_time(text, when, expected):
    assert parse_schedule("LOYALTY_JOBS_TIERS", text).latest_fire(when) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("61 2 * * *", "LOYALTY_JOBS_TIERS: '61 2 * * *' is not a crontab line"),
        ("every 0 minutes", "LOYALTY_JOBS_TIERS: 'every 0 minutes': the interval must be at least one second"),
        ("nightly", "LOYALTY_JOBS_TIERS: 'nightly' is not a crontab line"),
        ("0 4 * * 8", "LOYALTY_JOBS_TIERS: '0 4 * * 8' is not a crontab line"),
        (3, "LOYALTY_JOBS_TIERS: give a crontab line"),
    ],
)
def test_a_bad_schedule_fails_at_start_up_naming_the_key(value, message):
    with pytest.raises(ConfigError) as error:
        parse_schedule("LOYALTY_JOBS_TIERS", value)
    assert message in str(error.value)


def test_the_scheduler_has_a_job_for_each_schedule_that_is_on(configured):
    with configured(LOYALTY_JOBS_CHURN=None, LOYALTY_JOBS_RELEASE="every 5 minutes") as loyalty:
        from flask import current_app

        scheduler = build_scheduler(current_app)
        names = {job.id: str(job.trigger) for job in scheduler.get_jobs()}
        assert loyalty is not None
    assert "loyalty-churn" not in names
    assert set(names) == {f"loyalty-{job}" for job in JOBS if job != "churn"}
    assert names["loyalty-release"].startswith("interval[0:05:00]")


def test_the_opt_in_scheduler_starts_with_the_app_and_records_its_runs(database_url, tmp_path):
    config = {f"LOYALTY_JOBS_{job.upper()}": None for job in JOBS}
    config.update(LOYALTY_SCHEDULER=True, LOYALTY_JOBS_TIERS="every 1 second")
    app = make_app(database_url, str(tmp_path / "instance"), **config)
    scheduler = app.extensions["loyalty"].scheduler
    try:
        assert scheduler.running and [job.id for job in scheduler.get_jobs()] == ["loyalty-tiers"]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not [r for r in runs(app) if r.status == "succeeded"]:
            time.sleep(0.05)
    finally:
        scheduler.shutdown(wait=True)
        app.extensions["loyalty"].close()
    recorded = runs(app)
    assert recorded and {(r.job, r.trigger) for r in recorded} == {("tiers", "schedule")}
    assert all(r.scheduled_for.microsecond == 0 for r in recorded)


def test_the_scheduler_command_refuses_when_every_job_is_off(configured):
    off = {f"LOYALTY_JOBS_{job.upper()}": None for job in JOBS}
    with configured(**off):
        from flask import current_app

        result = current_app.test_cli_runner().invoke(args=["loyalty", "scheduler"])
    assert result.exit_code == 1 and "Every LOYALTY_JOBS_* schedule is switched off" in result.output
