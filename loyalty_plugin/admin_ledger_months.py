"""Points moved per month and ledger kind, kept as running totals per worker process.

Summing two million ledger entries by month takes seconds on SQLite (there is no index on
``created_at``, and none is needed anywhere else). The ledger is append-only and its ids only
grow, so the totals of the entries up to some id never change: each worker folds entries
into its totals once, by id range, and every read adds only the entries after that id. A read
is therefore exact and costs a primary-key range scan of the newest entries.

Ids are handed out before a transaction commits, so an entry with a smaller id can become
visible after a larger one. Only entries written more than ``SETTLE`` before the clock are
folded, and only the unbroken run of them from the last folded id: a later entry is summed
fresh on every read until it is old enough. An entry whose transaction stayed open longer
than ``SETTLE`` would be missed until the worker restarts; no write of the plugin runs that long.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from .models import LedgerEntry

SETTLE = timedelta(minutes=10)

#: (month "YYYY-MM", ledger kind) -> [points added, points taken], pending points included:
#: an order's points count when earned (pending), not again when released.
Totals = dict[tuple[str, str], list[int]]


def month_of(column: Any, dialect: str) -> Any:
    """``column`` as its month, "YYYY-MM", in SQL."""
    if dialect == "postgresql":
        return func.to_char(column, "YYYY-MM")
    return func.strftime("%Y-%m", column)


def _sums(session: Session, *where: Any) -> Totals:
    dialect = session.get_bind().dialect.name
    month = month_of(LedgerEntry.created_at, dialect)
    moved = LedgerEntry.points + LedgerEntry.pending
    rows = session.execute(
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


def _add(into: Totals, more: Totals) -> None:
    for key, (added, taken) in more.items():
        into[key][0] += added
        into[key][1] += taken


@dataclass
class LedgerMonths:
    """The running totals of one app in one process (``for_app`` finds them)."""

    folded_to: int = 0
    totals: Totals = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def read(self, session: Session, *, now: datetime) -> Totals:
        """Every entry's points by (month, kind), exact as of this transaction's snapshot."""
        result: Totals = defaultdict(lambda: [0, 0])
        with self.lock:
            self._fold(session, now - SETTLE)
            _add(result, self.totals)
            _add(result, _sums(session, LedgerEntry.id > self.folded_to))
        return result

    def _fold(self, session: Session, settled_before: datetime) -> None:
        first_unsettled = session.scalar(
            select(func.min(LedgerEntry.id)).where(
                LedgerEntry.id > self.folded_to, LedgerEntry.created_at >= settled_before
            )
        )
        upto = (
            first_unsettled - 1
            if first_unsettled is not None
            else session.scalar(select(func.max(LedgerEntry.id))) or self.folded_to
        )
        if upto <= self.folded_to:
            return
        _add(self.totals, _sums(session, LedgerEntry.id > self.folded_to, LedgerEntry.id <= upto))
        self.folded_to = upto


def for_app(extensions: dict[str, Any]) -> LedgerMonths:
    """This app's totals, made on first use (``app.extensions`` holds them beside the plugin's state)."""
    return extensions.setdefault("loyalty_admin_ledger_months", LedgerMonths())
