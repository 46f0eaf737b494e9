"""The overview's and the tier report's member figures, kept up to date in the database.

Counting every member and summing a year of orders (half a million at 100k members) took
300-600 ms a request. Instead each live member's part (:mod:`.admin_member_figures`) is
stored with the totals per group (month enrolled, tier, tier the spend qualifies for,
protected, within reach), and a page reads the few dozen group totals.

Before it reads, a page refreshes them (:func:`refresh`): members the database triggers
queued in ``loyalty_admin_changes`` (any write to a member's tier, points, enrolment or
erasure, or to one of their orders, whoever made it) and members whose part has expired
(``valid_until``: an order left a window, protection ended) are recomputed, and their old
part is taken out of its group total and the new one added, in one transaction. So a figure
is exact as of the start of the request, never stale. The ledger's settled entries are folded
into the monthly totals in the same transaction (:mod:`.admin_ledger_months`).

Refreshes are serialised by a lock on the single ``loyalty_admin_state`` row (on SQLite, the
database's write lock). A transaction takes at most ``CHUNK`` queued changes and ``CHUNK``
expired parts each way, so the first refresh after the upgrade (every member, once per
database: seconds at 100k members), or after a settings change, never holds the write lock
for long, and what it finished stays done if the request is cut short. It runs on a
connection of its own, so its work is committed in host mode too, where the plugin never
commits the host's session.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, delete, insert, select, update
from sqlalchemy.orm import Session

from . import admin_ledger_months
from .admin_member_figures import KEY, SUMS, Part, fingerprint, parts
from .config import Settings
from .database import WRITE_OPTION, upsert_insert
from .models import AdminChange, AdminFigureTotals, AdminMemberFigures, AdminState, Member

#: Members recomputed per transaction.
CHUNK = 5_000
STATE_ID = 1


@dataclass(frozen=True)
class Group:
    """One row of the group totals: its key and its sums, in ``SUMS`` order."""

    enrolled_month: str
    tier_code: str
    qualified: int
    protected: bool
    reach: bool
    sums: dict[str, int]


@dataclass(frozen=True)
class Snapshot:
    """The group totals and the ledger's monthly totals, read in one transaction."""

    groups: list[Group]
    ledger: admin_ledger_months.Totals

    def total(self, column: str, where: Callable[[Group], bool] = lambda g: True) -> int:
        return sum(g.sums[column] for g in self.groups if where(g))

    def by(self, key: Callable[[Group], Any], *columns: str) -> dict[Any, list[int]]:
        """``columns`` summed per ``key(group)``."""
        found: dict[Any, list[int]] = defaultdict(lambda: [0] * len(columns))
        for g in self.groups:
            sums = found[key(g)]
            for i, column in enumerate(columns):
                sums[i] += g.sums[column]
        return found


def current(session: Session, *, now: datetime, settings: Settings) -> Snapshot:
    """The figures as of ``now``, refreshed first, on the database of ``session``."""
    bind = session.get_bind()
    return refresh(bind if isinstance(bind, Engine) else bind.engine, now=now, settings=settings)


def refresh(engine: Engine, *, now: datetime, settings: Settings) -> Snapshot:
    """Bring the stored figures up to ``now`` and read them (see the module's docstring)."""
    digest = fingerprint(settings)
    while True:
        with _locked(engine, now) as (connection, state):
            if state.settings != digest:
                _reset(connection, digest)
            folded, more_ledger = admin_ledger_months.fold(connection, state.ledger_folded_to, now=now)
            if folded != state.ledger_folded_to:
                connection.execute(update(AdminState).where(AdminState.id == STATE_ID).values(ledger_folded_to=folded))
            claimed = _claim(connection)
            due = _due(connection, now)
            members = sorted(set(claimed) | set(due))
            for start in range(0, len(members), CHUNK):
                _apply(connection, members[start : start + CHUNK], now=now, settings=settings)
            if not more_ledger and len(claimed) < CHUNK and len(due) < CHUNK:
                return Snapshot(_groups(connection), admin_ledger_months.read(connection, folded))


@contextmanager
def _locked(engine: Engine, now: datetime) -> Iterator[tuple[Connection, Any]]:
    """A write transaction holding the state row's lock (created on first use)."""
    with engine.connect() as connection:
        connection.execution_options(**{WRITE_OPTION: True})
        with connection.begin():
            connection.execute(
                upsert_insert(connection)(AdminState).on_conflict_do_nothing(),
                {"id": STATE_ID, "settings": "", "ledger_folded_to": 0},
            )
            connection.execute(update(AdminState).where(AdminState.id == STATE_ID).values(refreshed_at=now))
            state = connection.execute(
                select(AdminState.settings, AdminState.ledger_folded_to).where(AdminState.id == STATE_ID)
            ).one()
            yield connection, state


def _reset(connection: Connection, digest: str) -> None:
    """Forget every stored part and queue every live member: the next chunks rebuild them."""
    for table in (AdminMemberFigures, AdminFigureTotals, AdminChange):
        connection.execute(delete(table))
    connection.execute(
        insert(AdminChange).from_select(["member_id"], select(Member.id).where(Member.erased_at.is_(None)))
    )
    connection.execute(update(AdminState).where(AdminState.id == STATE_ID).values(settings=digest))


def _claim(connection: Connection) -> list[int]:
    """Take the oldest queued changes (at most ``CHUNK``): the members they name.

    Only committed rows are seen and deleted; a change committed later stays queued for the
    next refresh, which recomputes that member again."""
    oldest = select(AdminChange.id).order_by(AdminChange.id).limit(CHUNK)
    return list(
        connection.execute(delete(AdminChange).where(AdminChange.id.in_(oldest)).returning(AdminChange.member_id))
        .scalars()
        .all()
    )


def _due(connection: Connection, now: datetime) -> list[int]:
    """Members whose stored part no longer holds at ``now`` (at most ``CHUNK`` each way).

    Two statements, each ordered by its index, so that each reads its index whatever the
    table's statistics say (an ``OR`` of both, or a stale estimate, made PostgreSQL scan it)."""
    figures = AdminMemberFigures
    found: list[int] = []
    for expired, order in (
        (figures.valid_until <= now, figures.valid_until),
        (figures.valid_from > now, figures.valid_from.desc()),
    ):
        found += connection.execute(select(figures.member_id).where(expired).order_by(order).limit(CHUNK)).scalars()
    return found


def _apply(connection: Connection, members: Sequence[int], *, now: datetime, settings: Settings) -> None:
    """Replace these members' parts and move the group totals by the difference."""
    figures = AdminMemberFigures.__table__
    new = parts(connection, members, now=now, settings=settings)
    old = [Part(**row._mapping) for row in connection.execute(select(figures).where(figures.c.member_id.in_(members)))]
    delta: dict[tuple[Any, ...], list[int]] = defaultdict(lambda: [0] * len(SUMS))
    for sign, changed in ((-1, old), (1, new)):
        for part in changed:
            sums = delta[part.key]
            for i, value in enumerate(part.sums()):
                sums[i] += sign * value
    connection.execute(delete(figures).where(figures.c.member_id.in_(members)))
    if new:
        connection.execute(insert(figures), [part.row() for part in new])
    moved = [dict(zip(KEY, key, strict=True)) | dict(zip(SUMS, d, strict=True)) for key, d in delta.items() if any(d)]
    if moved:
        totals = AdminFigureTotals.__table__
        upsert = upsert_insert(connection)(totals)
        connection.execute(
            upsert.on_conflict_do_update(
                index_elements=list(KEY), set_={c: totals.c[c] + upsert.excluded[c] for c in SUMS}
            ),
            moved,
        )
        connection.execute(delete(totals).where(totals.c.members == 0))


def _groups(connection: Connection) -> list[Group]:
    rows = connection.execute(select(AdminFigureTotals.__table__)).all()
    return [
        Group(
            row.enrolled_month,
            row.tier_code,
            int(row.qualified),
            bool(row.protected),
            bool(row.reach),
            {c: int(row._mapping[c]) for c in SUMS},
        )
        for row in rows
    ]
