"""Running a job once per trigger and recording it: claim, lock, run, record.

Every scheduler process wakes for every trigger. The first to insert the (job, trigger
time) row owns the trigger, the rest see the unique key taken and stand down, so each
trigger runs once however many processes or hosts share the database. The owner then takes
the job's lock (:mod:`.joblock`) so that two triggers never run the same job at once; a run
that cannot have it is recorded as skipped, and the work it would have done is still due
for the next one.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from flask import Flask
from sqlalchemy import Engine, update
from sqlalchemy.exc import StatementError
from sqlalchemy.orm import Session

from .database import upsert_insert
from .joblock import job_lock, worker_name
from .jobs import JOBS, JobContext
from .models import JobRun
from .money import utcnow

if TYPE_CHECKING:
    from .extension import LoyaltyState

log = logging.getLogger(__name__)


def _claim(engine: Engine, job: str, scheduled_for: datetime, trigger: str, worker: str) -> int | None:
    with engine.begin() as connection:
        stmt = (
            upsert_insert(connection)(JobRun)
            .values(job=job, scheduled_for=scheduled_for, trigger=trigger, worker=worker)
            .values(status="running", started_at=utcnow())
            .on_conflict_do_nothing(index_elements=["job", "scheduled_for"])
            .returning(JobRun.id)
        )
        return connection.scalar(stmt)


def _finish(
    engine: Engine, run_id: int, status: str, counts: dict[str, int] | None = None, error: str | None = None
) -> None:
    with engine.begin() as connection:
        connection.execute(
            update(JobRun)
            .where(JobRun.id == run_id)
            .values(status=status, counts=counts, error=error, finished_at=utcnow())
        )


def _close_interrupted(engine: Engine, job: str, run_id: int) -> None:
    """Runs left 'running' while we hold the lock belong to workers that died mid-run."""
    with engine.begin() as connection:
        connection.execute(
            update(JobRun)
            .where(JobRun.job == job, JobRun.status == "running", JobRun.id != run_id)
            .values(status="interrupted", error="The worker stopped before the run finished; the next run resumed it.")
        )


def run_job(
    state: LoyaltyState,
    job: str,
    *,
    trigger: str = "manual",
    scheduled_for: datetime | None = None,
    now: datetime | None = None,
    progress: Callable[[int], None] | None = None,
) -> JobRun | None:
    """Run ``job`` for one trigger; None when another process already owns that trigger.

    A failure is recorded with its message and re-raised for the caller to report.
    """
    claimed = _claim_run(state, job, scheduled_for or utcnow(), trigger)
    if claimed is None:
        log.debug("%s at %s: another worker owns this trigger", job, scheduled_for)
        return None
    return _run_claimed(state, job, *claimed, now=now, progress=progress)


def start_job(app: Flask, state: LoyaltyState, job: str, *, trigger: str = "manual") -> Started | None:
    """Claim a run of ``job`` now and do it on a thread of its own, in ``app``'s context.

    For runs started from a web page: the churn scan of a large program takes longer than a
    server lets a request live, and a worker killed for it would leave the run interrupted.
    Returns None when the trigger is owned already. A failure is recorded on the run.
    """
    claimed = _claim_run(state, job, utcnow(), trigger)
    if claimed is None:
        return None
    run_id, worker = claimed

    def work() -> None:
        # A failure is recorded on the run and logged by _run_claimed; there is no caller to raise to.
        with app.app_context(), contextlib.suppress(Exception):
            _run_claimed(state, job, run_id, worker)

    thread = threading.Thread(target=work, name=f"loyalty-job-{job}-{run_id}", daemon=True)
    state.jobs_started.add(thread)
    thread.start()
    return Started(run_id, thread)


def _claim_run(state: LoyaltyState, job: str, when: datetime, trigger: str) -> tuple[int, str] | None:
    """The run's id and this worker's name, once this worker owns the trigger; None when another does."""
    if job not in JOBS:
        raise ValueError(f"Unknown job {job!r}: choose one of {', '.join(JOBS)}.")
    worker = worker_name()
    run_id = _claim(state.store.engine, job, when, trigger, worker)
    return None if run_id is None else (run_id, worker)


@dataclass(frozen=True)
class Started:
    run_id: int
    thread: threading.Thread


def run_record(state: LoyaltyState, run_id: int) -> JobRun | None:
    """The run's record as it stands (status, counts, error)."""
    with Session(state.store.engine, expire_on_commit=False) as session:
        return session.get(JobRun, run_id)


def _run_claimed(
    state: LoyaltyState,
    job: str,
    run_id: int,
    worker: str,
    *,
    now: datetime | None = None,
    progress: Callable[[int], None] | None = None,
) -> JobRun | None:
    engine = state.store.engine
    with job_lock(engine, job, f"{worker}:{run_id}") as held:
        if not held:
            _finish(engine, run_id, "skipped", error="Another run of this job was still going.")
        else:
            _close_interrupted(engine, job, run_id)
            context = JobContext(state.store, state.settings, now or state.clock(), progress)
            try:
                counts = JOBS[job](context)
            except Exception as exc:
                state.store.session.rollback()
                _finish(engine, run_id, "failed", error=_describe(exc))
                log.exception("job %s (run %s) failed", job, run_id)
                raise
            _finish(engine, run_id, "succeeded", counts=counts)
    return run_record(state, run_id)


def _describe(exc: Exception) -> str:
    """The error for the run record: a database error's own first line, never the SQL and
    parameters SQLAlchemy appends, which may hold members' data."""
    cause = exc.orig if isinstance(exc, StatementError) and exc.orig is not None else exc
    first_line = (str(cause).strip().splitlines() or [""])[0]
    return f"{type(cause).__name__}: {first_line}"[:500]
