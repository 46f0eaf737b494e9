"""The background jobs, by name: what each does and the counts its run records.

Each works through what is due in committed batches. A lot's release or expiry has a unique
ledger cause, a warning marks its lot, and a batch only picks rows still in the state it
changes, so a run that was killed is finished by the next one without doing anything twice.
Tier evaluation is one transaction: killed, it leaves nothing behind.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, select, update
from sqlalchemy.orm import Session

from . import ledger, signals, tiers
from .config import Settings
from .database import Store, lock_member
from .members import award_birthdays
from .models import Member, PointLot

Progress = Callable[[int], None]


@dataclass(frozen=True)
class JobResult:
    done: int


def _due_lots(store: Store, status: str, column, now: datetime, batch: int) -> list[tuple[int, str]]:
    session = store.session
    rows = session.execute(
        select(PointLot.id, Member.user_id)
        .join(Member, Member.id == PointLot.member_id)
        .where(PointLot.status == status, PointLot.remaining > 0, column <= now)
        .order_by(PointLot.member_id, PointLot.id)
        .limit(batch)
    ).all()
    return [(lot_id, user_id) for lot_id, user_id in rows]


def _run(store: Store, status: str, column, apply, now: datetime, batch: int, progress: Progress | None) -> JobResult:
    done = 0
    while True:
        with store.work() as session:
            due = _due_lots(store, status, column, now, batch)
            for lot_id, user_id in due:
                member = lock_member(session, user_id)
                lot = session.get(PointLot, lot_id, with_for_update=True, populate_existing=True)
                if member is None or lot is None or lot.status != status or lot.remaining <= 0:
                    continue
                apply(session, member, lot, now=now)
                done += 1
        store.commit()
        if progress:
            progress(len(due))
        if len(due) < batch:
            return JobResult(done)


def release_pending(store: Store, *, now: datetime, batch: int = 500, progress: Progress | None = None) -> JobResult:
    return _run(store, "pending", PointLot.available_at, ledger.release, now, batch, progress)


def expire_points(store: Store, *, now: datetime, batch: int = 500, progress: Progress | None = None) -> JobResult:
    return _run(store, "available", PointLot.expires_at, ledger.expire, now, batch, progress)


def warn_expiring(store: Store, *, now: datetime, settings: Settings, batch: int = 500) -> JobResult:
    """Tell members (``points_expiring``) about lots that expire within the warning window,
    once per lot: the lots are marked in the same transaction as the signal is queued."""
    horizon = now + timedelta(days=settings.expiry_warning_days)
    warned = 0
    while True:
        with store.work() as session:
            due = session.execute(
                select(PointLot.id, PointLot.member_id, PointLot.remaining, PointLot.expires_at)
                .where(
                    PointLot.status == "available",
                    PointLot.remaining > 0,
                    PointLot.warned_at.is_(None),
                    PointLot.expires_at > now,
                    PointLot.expires_at <= horizon,
                )
                .order_by(PointLot.member_id, PointLot.id)
                .limit(batch)
            ).all()
            if due:
                session.execute(update(PointLot).where(PointLot.id.in_([row.id for row in due])).values(warned_at=now))
                _announce_expiring(session, due)
        store.commit()
        warned += len(due)
        if len(due) < batch:
            return JobResult(warned)


def _announce_expiring(session: Session, due: Sequence[Row[Any]]) -> None:
    per_member: dict[int, tuple[int, datetime]] = {}
    for row in due:
        points, first = per_member.get(row.member_id, (0, row.expires_at))
        per_member[row.member_id] = (points + row.remaining, min(first, row.expires_at))
    users = dict(session.execute(select(Member.id, Member.user_id).where(Member.id.in_(list(per_member)))).all())
    for member_id, (points, first) in per_member.items():
        signals.defer(session, signals.points_expiring, user_id=users[member_id], points=points, expires_at=first)


def birthdays(store: Store, *, now: datetime, settings: Settings) -> JobResult:
    with store.work() as session:
        done = award_birthdays(session, today=now.date(), now=now, settings=settings)
    store.commit()
    return JobResult(done)


@dataclass(frozen=True)
class JobContext:
    store: Store
    settings: Settings
    now: datetime
    progress: Progress | None = None


def _tiers(ctx: JobContext) -> dict[str, int]:
    with ctx.store.work() as session:
        run = tiers.evaluate_tiers(session, now=ctx.now, settings=ctx.settings)
    ctx.store.commit()
    return {"evaluated": run.evaluated, "upgraded": run.upgraded, "downgraded": run.downgraded}


def _release(ctx: JobContext) -> dict[str, int]:
    done = release_pending(ctx.store, now=ctx.now, batch=ctx.settings.job_batch_size, progress=ctx.progress)
    return {"released": done.done}


def _expire(ctx: JobContext) -> dict[str, int]:
    expired = expire_points(ctx.store, now=ctx.now, batch=ctx.settings.job_batch_size, progress=ctx.progress)
    warned = warn_expiring(ctx.store, now=ctx.now, settings=ctx.settings, batch=ctx.settings.job_batch_size)
    return {"expired": expired.done, "warned": warned.done}


def _birthdays(ctx: JobContext) -> dict[str, int]:
    return {"awarded": birthdays(ctx.store, now=ctx.now, settings=ctx.settings).done}


def _churn(ctx: JobContext) -> dict[str, int]:
    from .retention import churn_scan

    return churn_scan(ctx.store, now=ctx.now, settings=ctx.settings, progress=ctx.progress)


def _recommender(ctx: JobContext) -> dict[str, int]:
    """Fit on every purchase so far and store the result as the newest version, which every
    worker then serves; one transaction, so a killed run leaves the previous version serving."""
    from .recommender_store import fit_version

    with ctx.store.work() as session:
        fitted = fit_version(session, now=ctx.now, keep=ctx.settings.recommender_keep_versions)
    ctx.store.commit()
    if fitted is None:
        return {"interactions": 0}
    return {
        "version": fitted.version,
        "interactions": fitted.interactions,
        "users": fitted.users,
        "items": fitted.items,
    }


#: Every job the scheduler and ``flask loyalty run-job`` know, by name.
JOBS: dict[str, Callable[[JobContext], dict[str, int]]] = {
    "release": _release,
    "expire": _expire,
    "birthdays": _birthdays,
    "tiers": _tiers,
    "churn": _churn,
    "recommender": _recommender,
}
