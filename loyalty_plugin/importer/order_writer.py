"""Parsed orders out: one transaction per batch, members, lines, links, points and catalog names."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from operator import itemgetter
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from .. import ledger, signals
from ..config import Settings
from ..database import Store, upsert_insert
from ..members import new_referral_code
from ..models import Item, Member, Order
from ..orders import points_for
from .order_parser import _Order
from .reports import OrderImportReport
from .sql import _chunks

#: Driver-level statements for order lines: COPY with psycopg 3, else executemany in the driver's style.
COPY_LINES = "COPY loyalty_order_lines (order_pk, line_no, sku, qty, unit_price, category) FROM STDIN"
INSERT_LINES = {
    "qmark": "INSERT INTO loyalty_order_lines (order_pk, line_no, sku, qty, unit_price, category) "
    "VALUES (?, ?, ?, ?, ?, ?)",
    "format": "INSERT INTO loyalty_order_lines (order_pk, line_no, sku, qty, unit_price, category) "
    "VALUES (%s, %s, %s, %s, %s, %s)",
}


class _OrderWriter:
    """Writes batches of parsed orders, one transaction each."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        now: datetime,
        *,
        enroll: bool,
        award_points: bool,
        with_names: bool,
        report: OrderImportReport,
    ) -> None:
        self.store = store
        self.settings = settings
        self.now = now
        self.enroll = enroll
        self.award_points = award_points
        self.with_names = with_names
        self.report = report
        #: Members this run created: user id -> (member id, enrolled_at), to move enrolled_at back
        #: when a later batch holds an earlier order of theirs.
        self.enrolled: dict[str, tuple[int, datetime]] = {}
        self.known_skus: set[str] = set()

    def write(self, orders: list[_Order]) -> None:
        with self.store.work() as session:
            fresh, present = self._triage(session, orders)
            members = self._members(session, fresh, present)
            ids, awards = self._insert_orders(session, fresh, members)
            if len(ids) < len(fresh):
                _, raced = self._triage(session, [o for o in fresh if o.order_id not in ids])
                present += raced
                fresh = [o for o in fresh if o.order_id in ids]
            self._insert_lines(session, fresh, ids)
            self._link(session, present, members)
            self._award(session, awards)
            if self.with_names:
                self._add_items(session, fresh)
        self.store.commit()

    def _triage(self, session: Session, orders: list[_Order]) -> tuple[list[_Order], list[tuple[_Order, Any]]]:
        """New orders, and those already stored with the same content; conflicts are rejected."""
        stored = {}
        for chunk in _chunks([o.order_id for o in orders]):
            rows = session.execute(
                select(Order.id, Order.order_id, Order.fingerprint, Order.user_id, Order.member_id).where(
                    Order.order_id.in_(chunk)
                )
            )
            stored.update({row.order_id: row for row in rows})
        fresh, present = [], []
        for order in orders:
            row = stored.get(order.order_id)
            if row is None:
                fresh.append(order)
            elif row.fingerprint == order.fingerprint:
                present.append((order, row))
                self.report.orders_already_present += 1
                self.report.lines_already_present += len(order.lines)
            else:
                self.report.orders_conflicting += 1
                for line in order.lines:
                    self.report.reject(
                        line.line,
                        "order_id",
                        order.order_id,
                        "conflict",
                        f"order {order.order_id} is already recorded with different content; it was not changed.",
                        order.order_id,
                    )
        return fresh, present

    def _members(
        self, session: Session, fresh: list[_Order], present: list[tuple[_Order, Any]]
    ) -> dict[str, tuple[int, str]]:
        """user id -> (member id, tier) for the batch's customers, enrolling them if asked.

        A stored order whose user id was blanked belongs to an erased member: never enrolled again.
        """
        first: dict[str, datetime] = {}
        linkable = [o for o, row in present if row.member_id is None and row.user_id is not None]
        for order in [*fresh, *linkable]:
            if order.user_id is not None and (order.user_id not in first or order.placed_at < first[order.user_id]):
                first[order.user_id] = order.placed_at
        found = self._lookup(session, list(first))
        if self.enroll:
            missing = [user for user in first if user not in found]
            if missing:
                self._enroll(session, {user: first[user] for user in missing})
                new = self._lookup(session, missing)
                found.update(new)
                self.report.members_enrolled += len(new)
                self.enrolled.update({user: (new[user][0], first[user]) for user in new})
            self._move_enrolment_back(session, first, missing)
        return found

    def _lookup(self, session: Session, users: list[str]) -> dict[str, tuple[int, str]]:
        found = {}
        for chunk in _chunks(users):
            rows = session.execute(
                select(Member.user_id, Member.id, Member.tier_code).where(
                    Member.user_id.in_(chunk), Member.erased_at.is_(None)
                )
            )
            found.update({user: (member_id, tier) for user, member_id, tier in rows})
        return found

    def _enroll(self, session: Session, first: dict[str, datetime]) -> None:
        """Members from history: no welcome bonus and no signal (a back-fill must not greet
        thousands of past customers), enrolled at their first order, in the lowest tier."""
        lowest = self.settings.tiers[0].code
        rows = [
            {
                "user_id": user,
                "referral_code": new_referral_code(),
                "tier_code": lowest,
                "tier_reached_at": when,
                "enrolled_at": when,
                "points_balance": 0,
                "points_pending": 0,
                "marketing_opt_in": False,
            }
            for user, when in first.items()
        ]
        stmt = upsert_insert(session)(Member.__table__).on_conflict_do_nothing(index_elements=["user_id"])
        session.execute(stmt, rows)

    def _move_enrolment_back(self, session: Session, first: dict[str, datetime], just_enrolled: list[str]) -> None:
        skip = set(just_enrolled)
        earlier = []
        for user, when in first.items():
            if user in self.enrolled and user not in skip and when < self.enrolled[user][1]:
                member_id = self.enrolled[user][0]
                self.enrolled[user] = (member_id, when)
                earlier.append({"pk": member_id, "when": when})
        if earlier:
            table = Member.__table__
            session.execute(
                update(table)
                .where(table.c.id == bindparam("pk"))
                .values(enrolled_at=bindparam("when"), tier_reached_at=bindparam("when")),
                earlier,
            )

    def _points(self, order: _Order, tier_code: str) -> int:
        return points_for(
            order.total,
            order.shipping,
            order.tax,
            tier_code=tier_code,
            placed_at=order.placed_at,
            settings=self.settings,
        )

    def _insert_orders(
        self, session: Session, fresh: list[_Order], members: dict[str, tuple[int, str]]
    ) -> tuple[dict[str, int], list[tuple[_Order, int, int]]]:
        """Insert the new orders; their ids, and the points each member's order earns."""
        if not fresh:
            return {}, []
        rows, earned = [], {}
        for order in fresh:
            member = members.get(order.user_id) if order.user_id is not None else None
            points = self._points(order, member[1]) if member and self.award_points else 0
            earned[order.order_id] = (member[0] if member else None, points)
            rows.append(
                {
                    "order_id": order.order_id,
                    "user_id": order.user_id,
                    "member_id": earned[order.order_id][0],
                    "placed_at": order.placed_at,
                    "total": order.total,
                    "shipping": order.shipping,
                    "tax": order.tax,
                    "refunded_total": Decimal(0),
                    "points_earned": points,
                    "points_clawed_back": 0,
                    "fingerprint": order.fingerprint,
                    "source": "import",
                    "created_at": self.now,
                }
            )
        table = Order.__table__
        stmt = (
            upsert_insert(session)(table)
            .on_conflict_do_nothing(index_elements=["order_id"])
            .returning(table.c.id, table.c.order_id)
        )
        ids = {order_id: pk for pk, order_id in session.execute(stmt, rows)}
        awards = []
        for order in fresh:
            member_id, points = earned[order.order_id]
            if order.order_id in ids and member_id is not None:
                self.report.orders_of_members += 1
                if points > 0:
                    awards.append((order, member_id, points))
        return ids, awards

    def _insert_lines(self, session: Session, fresh: list[_Order], ids: dict[str, int]) -> None:
        """Plain tuples through COPY or executemany, money as integer cents as ``Scaled`` stores it.

        Sorted by sku: the sku index then grows in runs instead of at random places (a third faster
        on SQLite); ``line_no`` keeps each order's own order.
        """
        rows = sorted(
            (
                (ids[order.order_id], n, x.sku, x.qty, x.cents, x.category)
                for order in fresh
                for n, x in enumerate(order.lines)
            ),
            key=itemgetter(2),
        )
        connection = session.connection()
        if rows and connection.dialect.driver == "psycopg":
            with connection.connection.cursor() as cursor, cursor.copy(COPY_LINES) as copy:
                for row in rows:
                    copy.write_row(row)
        elif rows:
            style = "qmark" if connection.dialect.paramstyle == "qmark" else "format"
            connection.exec_driver_sql(INSERT_LINES[style], rows)
        self.report.orders_imported += len(fresh)
        self.report.lines_imported += len(rows)

    def _link(self, session: Session, present: list[tuple[_Order, Any]], members: dict[str, tuple[int, str]]) -> None:
        """Orders imported before their customer joined now count for the member's tier."""
        links = [
            {"pk": row.id, "member": members[order.user_id][0]}
            for order, row in present
            if row.member_id is None and row.user_id is not None and order.user_id in members
        ]
        if links:
            table = Order.__table__
            session.execute(
                update(table)
                .where(table.c.id == bindparam("pk"), table.c.member_id.is_(None))
                .values(member_id=bindparam("member")),
                links,
            )
        self.report.orders_linked += len(links)

    def _award(self, session: Session, awards: list[tuple[_Order, int, int]]) -> None:
        """Points through the ledger, dated when the order was placed, so the release and expiry
        jobs settle them on the real calendar."""
        if not awards:
            return
        ids = sorted({member_id for _, member_id, _ in awards})
        members = {
            m.id: m
            for m in session.scalars(
                select(Member).where(Member.id.in_(ids)).with_for_update().execution_options(populate_existing=True)
            )
        }
        with signals.muted(session):
            for order, member_id, points in awards:
                ledger.earn(
                    session,
                    members[member_id],
                    points,
                    cause=f"order:{order.order_id}",
                    now=order.placed_at,
                    settings=self.settings,
                    order_id=order.order_id,
                    reason="Order",
                )
                self.report.points_awarded += points

    def _add_items(self, session: Session, fresh: list[_Order]) -> None:
        """Names from the file for items the catalog does not know yet; never overwrites it."""
        names: dict[str, tuple[str, str | None]] = {}
        for order in fresh:
            for x in order.lines:
                if x.name and x.sku not in self.known_skus and x.sku not in names:
                    names[x.sku] = (x.name, x.category)
        if not names:
            return
        skus = list(names)
        stored = set()
        for chunk in _chunks(skus):
            stored.update(session.scalars(select(Item.sku).where(Item.sku.in_(chunk))))
        rows = [
            {
                "sku": sku,
                "name": name,
                "category": category,
                "in_stock": True,
                "consumable": True,
                "updated_at": self.now,
            }
            for sku, (name, category) in names.items()
            if sku not in stored
        ]
        if rows:
            session.execute(upsert_insert(session)(Item.__table__).on_conflict_do_nothing(index_elements=["sku"]), rows)
        self.known_skus.update(skus)
        self.report.items_added += len(rows)
