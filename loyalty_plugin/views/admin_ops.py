"""Admin pages for running the program: its settings, the background jobs (with "run now")
and the audit log.

"Run now" goes through :func:`loyalty_plugin.job_runs.start_job`, the same claim, lock and
record as the scheduler and ``flask loyalty run-job``, so a run started here cannot overlap
a scheduled one, and it is recorded like any other (trigger "manual") and in the audit log.
The request waits ``RUN_NOW_WAIT_SECONDS`` for the run; a longer one (the churn scan of a
large program) continues on a thread of its own, and the jobs page reloads itself every
``FOLLOW_SECONDS`` until that run has ended.
"""

from __future__ import annotations

import json
from datetime import UTC
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from flask import abort, current_app, flash, make_response, redirect, render_template, request, url_for
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from .. import audit, job_runs
from ..config import DEFAULTS, DESCRIPTIONS
from ..i18n import gettext
from ..models import AuditLog, JobRun
from ..schedule import JOB_NAMES
from .admin import actor, admin, state, table_csv, table_page, wants_csv

#: How long "run now" waits for its run before it answers and lets the run go on alone.
RUN_NOW_WAIT_SECONDS = 2.0
#: How often the jobs page reloads while it follows a run started from it.
FOLLOW_SECONDS = 3

#: Settings whose value is a secret: the page says whether they are set, never what they are.
SECRET_KEYS = frozenset({"LOYALTY_WEBHOOK_SECRET"})
#: Settings holding a URL that may carry a password.
URL_KEYS = frozenset({"LOYALTY_DATABASE_URI", "LOYALTY_RATE_LIMIT_STORAGE_URI"})


def shown_value(key: str, value: Any) -> str:
    """A setting as the page shows it: secrets replaced by whether they are set, passwords
    in URLs masked, the rest as JSON."""
    if key in SECRET_KEYS:
        count = len([value] if isinstance(value, str) else value or [])
        return gettext("%(count)s secret(s) set", count=count) if count else gettext("not set")
    if key in URL_KEYS and isinstance(value, str):
        return _mask_url(value)
    return json.dumps(value, default=str, ensure_ascii=False)


def _mask_url(url: str) -> str:
    if "://" not in url:
        return url
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        parts = urlsplit(url)
        host = parts.hostname or ""
        return urlunsplit(parts._replace(netloc=host + (f":{parts.port}" if parts.port else "")))


@admin.get("/settings")
def settings() -> Any:
    config = current_app.config
    rows = [
        (
            key,
            shown_value(key, config.get(key, default)),
            config.get(key, default) != default,
            DESCRIPTIONS.get(key, ""),
        )
        for key, default in DEFAULTS.items()
    ]
    return render_template("loyalty/admin/settings.html", rows=rows)


JOB_COLUMNS = (
    JobRun.id.label("id"),
    JobRun.job.label("job"),
    JobRun.trigger.label("trigger"),
    JobRun.status.label("status"),
    JobRun.scheduled_for.label("scheduled_for"),
    JobRun.started_at.label("started_at"),
    JobRun.finished_at.label("finished_at"),
    JobRun.counts.label("counts"),
    JobRun.error.label("error"),
    JobRun.worker.label("worker"),
)


@admin.get("/jobs")
def jobs() -> Any:
    s = state()
    job = request.args.get("job")
    job = job if job in JOB_NAMES else None
    stmt = select(*JOB_COLUMNS).order_by(JobRun.started_at.desc(), JobRun.id.desc())
    if job:
        stmt = stmt.where(JobRun.job == job)
    with s.store.work(write=False) as session:
        if wants_csv():
            return table_csv(session, "job-runs", stmt)
        runs = table_page(session, stmt)
        latest = _latest_runs(session)
    now = s.clock().replace(tzinfo=UTC)
    schedules = []
    for name in JOB_NAMES:
        schedule = s.settings.job_schedules.get(name)
        upcoming = schedule.trigger().get_next_fire_time(None, now) if schedule else None
        schedules.append((name, schedule.text if schedule else None, upcoming, latest.get(name)))
    response = make_response(render_template("loyalty/admin/jobs.html", runs=runs, schedules=schedules, job=job))
    following = request.args.get("following", type=int)
    run = job_runs.run_record(s, following) if following is not None else None
    if run is not None and run.status == "running":
        response.headers["Refresh"] = str(FOLLOW_SECONDS)
    return response


def _latest_runs(session: Any) -> dict[str, Any]:
    newest = select(JobRun.job, func.max(JobRun.id).label("id")).group_by(JobRun.job).subquery()
    rows = session.execute(select(*JOB_COLUMNS).join(newest, newest.c.id == JobRun.id)).all()
    return {row.job: row for row in rows}


@admin.post("/jobs/<name>/run")
def run_job(name: str) -> Any:
    s = state()
    if name not in JOB_NAMES:
        abort(404)
    started = job_runs.start_job(current_app._get_current_object(), s, name, trigger="manual")
    if started is not None:
        started.thread.join(RUN_NOW_WAIT_SECONDS)
    run = job_runs.run_record(s, started.run_id) if started else None
    with s.store.work() as session:
        details = {"run": run.id, "status": run.status} if run else {"status": "not run"}
        audit.record(session, actor=actor(), action="run_job", target=f"job:{name}", now=s.clock(), details=details)
    s.store.commit()
    if run is None:
        flash(gettext("The %(job)s job is running already.", job=name), "error")
    elif run.status == "running":
        flash(
            gettext(
                "The %(job)s job goes on in the background (run %(run)s); this page follows it.", job=name, run=run.id
            ),
            "success",
        )
        return redirect(url_for("loyalty_admin.jobs", following=run.id))
    elif run.status == "succeeded":
        flash(gettext("The %(job)s job ran (run %(run)s).", job=name, run=run.id), "success")
    else:
        flash(gettext("The %(job)s job did not finish; its run below says why.", job=name), "error")
    return redirect(url_for("loyalty_admin.jobs"))


@admin.get("/audit", endpoint="audit")
def audit_log() -> Any:
    s = state()
    action = (request.args.get("action") or "").strip()[:50]
    stmt = select(
        AuditLog.created_at.label("created_at"),
        AuditLog.actor.label("actor"),
        AuditLog.action.label("action"),
        AuditLog.target.label("target"),
        AuditLog.details.label("details"),
    ).order_by(AuditLog.created_at.desc(), AuditLog.id.desc())
    if action:
        stmt = stmt.where(AuditLog.action == action)
    with s.store.work(write=False) as session:
        if wants_csv():
            return table_csv(session, "audit-log", stmt)
        entries = table_page(session, stmt)
        actions = session.scalars(select(AuditLog.action).distinct().order_by(AuditLog.action)).all()
    return render_template("loyalty/admin/audit.html", entries=entries, actions=actions, action=action)
