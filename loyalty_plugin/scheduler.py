"""APScheduler wiring: one scheduler job per configured ``LOYALTY_JOBS_*`` schedule.

APScheduler's job stores cannot be shared between processes, and every web worker that
starts a scheduler fires every trigger again. So the scheduler here is only an alarm clock:
each firing goes through :func:`.job_runs.run_job`, which lets one process in the whole
deployment run a given trigger. ``flask loyalty scheduler`` runs it as a process of its own
(the recommended deployment); ``LOYALTY_SCHEDULER = True`` starts it inside each app.
"""

from __future__ import annotations

import atexit
import logging
from datetime import UTC

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from flask import Flask

from .job_runs import run_job
from .money import utcnow
from .schedule import JOB_NAMES, Schedule

log = logging.getLogger(__name__)

#: A trigger that fires this late (a suspended host, a long previous run) is still run.
MISFIRE_GRACE_SECONDS = 300


def _fire(app: Flask, job: str, schedule: Schedule) -> None:
    with app.app_context():
        state = app.extensions["loyalty"]
        try:
            run = run_job(state, job, trigger="schedule", scheduled_for=schedule.latest_fire(utcnow()))
        except Exception:  # recorded as a failed run by run_job; the scheduler carries on
            return
        if run is not None:
            log.info("job %s: %s %s", job, run.status, run.counts or run.error or "")


def build_scheduler(app: Flask, *, blocking: bool = False) -> BaseScheduler:
    """A scheduler (not started) with a job for every schedule that is switched on."""
    settings = app.extensions["loyalty"].settings
    kind = BlockingScheduler if blocking else BackgroundScheduler
    scheduler = kind(
        timezone=UTC,
        executors={"default": ThreadPoolExecutor(max_workers=2)},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": MISFIRE_GRACE_SECONDS},
    )
    for job in JOB_NAMES:
        schedule = settings.job_schedules[job]
        if schedule is not None:
            scheduler.add_job(
                _fire, schedule.trigger(), args=(app, job, schedule), id=f"loyalty-{job}", name=f"loyalty {job}"
            )
    return scheduler


def start_in_app(app: Flask) -> BaseScheduler:
    """The opt-in in-process scheduler: a daemon thread, stopped when the process exits."""
    scheduler = build_scheduler(app)
    scheduler.start()
    atexit.register(lambda: scheduler.shutdown(wait=False) if scheduler.running else None)
    return scheduler
