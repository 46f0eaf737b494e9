"""Points moved per month and ledger kind: stored totals of the settled ledger plus the rest.

Summing two million ledger entries by month takes seconds. The ledger is append-only and its
ids only grow, so the totals of the entries up to some id never change: they are folded once
into ``loyalty_admin_ledger_months`` (by :mod:`.admin_figures`' refresh, in id ranges of
``FOLD_CHUNK``), and a read adds the entries after that id. A read is therefore exact and
costs a primary-key range scan of the newest entries, in every worker from its first request.

Ids are handed out before a transaction commits, so an entry with a smaller id can become
visible after a larger one. Only entries written more than ``SETTLE`` before the clock are
folded, and only the unbroken run of them from the last folded id: a later entry is summed
fresh on every read until it is old enough. An entry whose transaction stayed open longer
than ``SETTLE`` would be missed for good; no write of the plugin runs that long.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, case, func, select

from .database import upsert_insert
from .models import AdminLedgerMonth, LedgerEntry

SETTLE = timedelta(minutes=10)
#: Entries folded per transaction, so a first fold of a large ledger never holds SQLite's
#: write lock for long.
FOLD_CHUNK = 250_000

#: (month "YYYY-MM", ledger kind) -> [points added, points taken], pending points included:
#: an order's points count when earned (pending), not again when released.
Totals = dict[tuple[str, str], list[int]]


def month_of(column: Any, dialect: str) -> Any:
    """``column`` as its month, "YYYY-MM", in SQL."""
    if dialect == "postgresql":
        return func.to_char(column, "YYYY-MM")
    return func.strftime("%Y-%m", column)


def _sums(connection: Connection, *where: Any) -> Totals:
    month = month_of(LedgerEntry.created_at, connection.dialect.name)
    moved = LedgerEntry.points + LedgerEntry.pending
    rows = connection.execute(
        select(
            month,
            LedgerEntry.kind,
            func.sum(case((moved > 0, moved), else_=0)),
            func.sum(case((moved < 0, -moved), else_=0)),
        )
        .where(*where)
        .group_by(month, LedgerEntry.kind)
    ).all()
    return {(m, kind): [int(added or 0), int(taken or 0)] for m, kind, added, taken in rows}


def read(connection: Connection, folded_to: int) -> Totals:
    """Every entry's points by (month, kind), exact as of this connection's snapshot."""
    totals: Totals = defaultdict(lambda: [0, 0])
    for month, kind, added, taken in connection.execute(
        select(AdminLedgerMonth.month, AdminLedgerMonth.kind, AdminLedgerMonth.added, AdminLedgerMonth.taken)
    ):
        totals[month, kind] = [int(added), int(taken)]
    for key, (added, taken) in _sums(connection, LedgerEntry.id > folded_to).items():
        totals[key][0] += added
        totals[key][1] += taken
    return totals


def fold(connection: Connection, folded_to: int, *, now: datetime) -> tuple[int, bool]:
    """Fold the next settled entries after ``folded_to`` (at most ``FOLD_CHUNK``) into the
    stored totals: the new ``folded_to``, and whether a full chunk was folded (more may follow)."""
    start = connection.scalar(select(func.min(LedgerEntry.id)).where(LedgerEntry.id > folded_to))
    if start is None:
        return folded_to, False
    last = start + FOLD_CHUNK - 1
    first_unsettled = connection.scalar(
        select(func.min(LedgerEntry.id)).where(
            LedgerEntry.id > folded_to, LedgerEntry.id <= last, LedgerEntry.created_at >= now - SETTLE
        )
    )
    if first_unsettled is not None:
        upto = first_unsettled - 1
    else:
        upto = connection.scalar(select(func.max(LedgerEntry.id)).where(LedgerEntry.id <= last)) or folded_to
    if upto <= folded_to:
        return folded_to, False
    sums = _sums(connection, LedgerEntry.id > folded_to, LedgerEntry.id <= upto)
    if sums:
        insert = upsert_insert(connection)(AdminLedgerMonth)
        table = AdminLedgerMonth.__table__
        connection.execute(
            insert.on_conflict_do_update(
                index_elements=["month", "kind"],
                set_={"added": table.c.added + insert.excluded.added, "taken": table.c.taken + insert.excluded.taken},
            ),
            [{"month": m, "kind": k, "added": a, "taken": t} for (m, k), (a, t) in sums.items()],
        )
    return upto, upto == last
