"""One run of a job at a time, across processes and hosts, held in the shared database.

PostgreSQL gives a session-level advisory lock: it is released by the server the moment the
holder's connection dies, so a killed worker never leaves a job locked. SQLite has no such
lock; there a lease row stands in, taken by a compare-and-set ``UPDATE``, and a lease whose
holder process is gone (SQLite means one host) or whose time ran out may be taken over.
"""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from sqlalchemy import Connection, Engine, or_, select, text, update

from .database import upsert_insert
from .models import JobLock
from .money import utcnow

#: Backstop for a SQLite lease whose holder can no longer be checked.
LEASE = timedelta(hours=6)


def worker_name() -> str:
    """``host:pid``: what job runs and SQLite leases record as their holder."""
    return f"{socket.gethostname()}:{os.getpid()}"


def advisory_key(job: str) -> int:
    """A stable signed 64-bit key per job, the form ``pg_try_advisory_lock`` takes."""
    return int.from_bytes(hashlib.sha256(f"loyalty_plugin:{job}".encode()).digest()[:8], "big", signed=True)


@contextmanager
def job_lock(engine: Engine, job: str, holder: str) -> Iterator[bool]:
    """Yield whether this process now holds ``job``'s lock; it is released on exit."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            key = advisory_key(job)
            held = bool(connection.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}))
            connection.commit()
            try:
                yield held
            finally:
                if held:
                    connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
                    connection.commit()
        return
    held = _take_lease(engine, job, holder)
    try:
        yield held
    finally:
        if held:
            with engine.begin() as connection:
                connection.execute(
                    update(JobLock).where(JobLock.job == job, JobLock.holder == holder).values(holder=None)
                )


def _take_lease(engine: Engine, job: str, holder: str) -> bool:
    now = utcnow()
    with engine.begin() as connection:
        connection.execute(upsert_insert(connection)(JobLock).values(job=job).on_conflict_do_nothing())
        free = or_(JobLock.holder.is_(None), JobLock.expires_at < now)
        if _swap(connection, job, free, holder, now):
            return True
        current = connection.scalar(select(JobLock.holder).where(JobLock.job == job))
        return current is not None and _gone(current) and _swap(connection, job, JobLock.holder == current, holder, now)


def _swap(connection: Connection, job: str, condition: object, holder: str, now: object) -> bool:
    result = connection.execute(
        update(JobLock).where(JobLock.job == job, condition).values(holder=holder, expires_at=now + LEASE)
    )
    return result.rowcount == 1


def _gone(holder: str) -> bool:
    """Whether the process named by ``holder`` has ended (only knowable on this host)."""
    host, _, rest = holder.partition(":")
    pid_text = rest.split(":", 1)[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
