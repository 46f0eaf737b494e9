"""The ledger's time-driven work: pending -> available, expiry, birthdays.

Each works through what is due in committed batches. A lot's release or expiry has a unique
ledger cause, and a batch only picks lots still in the state it changes, so a run that was
killed is finished by the next one without doing anything twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from . import ledger
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


def birthdays(store: Store, *, now: datetime, settings: Settings) -> JobResult:
    with store.work() as session:
        done = award_birthdays(session, today=now.date(), now=now, settings=settings)
    store.commit()
    return JobResult(done)
