"""Bulk back-fill from CSV: years of order history (``import-orders``) and the catalog (``import-items``).

Calling ``record_order`` per order would take hours on a shop's history, so the file is
streamed, grouped into orders, checked line by line and written in batches: orders with a
multi-row INSERT ... RETURNING, their lines as plain tuples (executemany on SQLite, COPY on
PostgreSQL), no ORM object per row. The rules stay those of ``record_order``: amounts with at
most two decimals, idempotent on ``order_id``, and the same content fingerprint, so an API
re-delivery of an imported order is a repeat and not a conflict.

An order is written whole or not at all. A first pass finds orders whose lines are not
together, so they are rejected before anything is written; a batch is one transaction of
whole orders, so a crash leaves only whole orders behind, and running the file again
finishes the work: orders already present are counted and skipped, never doubled.
"""

from __future__ import annotations

import csv
import gzip
import json
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from operator import itemgetter
from typing import Any, ClassVar, TextIO

import click
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from . import ledger, signals
from .config import Settings
from .database import Store
from .errors import BadInput
from .members import new_referral_code
from .models import Item, Member, Order
from .money import CENT, MAX_MONEY, floor_points
from .orders import earn_base, fingerprint

Progress = Callable[[int], None]
PathLike = str | os.PathLike[str]

ORDER_REQUIRED = ("order_id", "placed_at", "sku", "qty", "unit_price")
#: ``user_id`` empty = a guest; ``total`` defaults to the sum of the lines; ``name`` feeds the catalog
ORDER_OPTIONAL = ("user_id", "category", "total", "shipping", "tax", "name")
ORDER_COLUMNS = ORDER_REQUIRED + ORDER_OPTIONAL
ITEM_COLUMNS = ("sku", "name", "category", "price", "url", "image_url", "in_stock", "consumable")
ITEM_REQUIRED = ("sku", "name")

#: Exports whose headers we know: ``--mapping online-retail``.
KNOWN_EXPORTS: dict[str, dict[str, str]] = {
    "online-retail": {
        "order_id": "InvoiceNo",
        "user_id": "CustomerID",
        "placed_at": "InvoiceDate",
        "sku": "StockCode",
        "qty": "Quantity",
        "unit_price": "UnitPrice",
        "name": "Description",
    },
}

#: Why lines were rejected, as the summary lists them.
REASONS = {
    "cancellation": "cancellation invoices (order id C...): refunds go through record_refund",
    "return": "negative quantity (returns, stock corrections)",
    "zero_price": "unit price 0 (free lines, samples, corrections)",
    "bad_price": "unit price not a positive amount with at most two decimals",
    "bad_qty": "quantity not a whole number of 1 or more",
    "bad_date": "placed_at not a date-time",
    "future_date": "placed_at in the future",
    "missing": "a required value is empty",
    "too_long": "a value is too long",
    "malformed": "fewer values than the header has columns",
    "inconsistent": "lines of one order disagree (customer, total, shipping or tax)",
    "bad_total": "total, shipping or tax not valid",
    "split_order": "lines of one order not together",
    "conflict": "order already recorded with different content",
    "with_rejected_line": "other lines of an order that had a rejected line",
    "duplicate": "the same sku twice in the file",
    "bad_price_item": "price not an amount of zero or more with at most two decimals",
    "bad_flag": "in_stock or consumable not yes/no",
}

#: Driver-level statements for order lines: COPY with psycopg 3, else executemany in the driver's style.
COPY_LINES = "COPY loyalty_order_lines (order_pk, line_no, sku, qty, unit_price, category) FROM STDIN"
INSERT_LINES = {
    "qmark": "INSERT INTO loyalty_order_lines (order_pk, line_no, sku, qty, unit_price, category) "
    "VALUES (?, ?, ?, ?, ?, ?)",
    "format": "INSERT INTO loyalty_order_lines (order_pk, line_no, sku, qty, unit_price, category) "
    "VALUES (%s, %s, %s, %s, %s, %s)",
}

#: A batch is one transaction, and on SQLite it holds the write lock while it runs: these bound
#: how long a live shop's own writes may wait behind an import.
BATCH_ORDERS = 5000
BATCH_LINES = 25_000
BATCH_AWARDING = 500
BATCH_ITEMS = 2000
IN_CHUNK = 1000
PRICE_CACHE = 100_000
MAX_QTY = 1_000_000
TRUE_WORDS = {"1", "true", "yes", "y", "t"}
FALSE_WORDS = {"0", "false", "no", "n", "f"}


# Reports -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rejection:
    """One line not imported: where it is, which field, and why in words a shop owner reads."""

    line: int
    field: str
    value: str
    reason: str
    message: str
    #: the order id (orders) or the sku (items) the line belongs to
    key: str = ""


@dataclass
class ImportReport:
    """What a run did; ``summary()`` is what the CLI prints."""

    path: str
    lines_read: int = 0
    seconds: float = 0.0
    rejections: list[Rejection] = field(default_factory=list)
    key_name: ClassVar[str] = "key"

    @property
    def lines_rejected(self) -> int:
        return len(self.rejections)

    def rejected_by_reason(self) -> dict[str, int]:
        return dict(Counter(r.reason for r in self.rejections).most_common())

    def reject(self, line: int, field_name: str, value: str, reason: str, message: str, key: str = "") -> None:
        self.rejections.append(Rejection(line, field_name, value[:200], reason, message, key))

    def write_rejections(self, path: PathLike) -> None:
        """Every rejected line as CSV, in file order, for the shop to correct and import again."""
        with open(path, "w", encoding="utf-8", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(["line", self.key_name, "field", "value", "reason", "message"])
            for r in sorted(self.rejections, key=lambda r: r.line):
                writer.writerow([r.line, r.key, r.field, r.value, r.reason, r.message])

    def counts(self) -> list[tuple[str, int]]:
        """The figures ``summary()`` lists, in its order."""
        return [("lines read", self.lines_read)]

    def summary(self) -> str:
        rows = [f"{label:<24}{value:>12,}" for label, value in self.counts()]
        rows.append(f"{'lines rejected':<24}{self.lines_rejected:>12,}")
        for reason, count in self.rejected_by_reason().items():
            rows.append(f"  {reason:<22}{count:>12,}  {REASONS[reason]}")
        rows.append(f"{'time':<24}{self.seconds:>10.1f} s")
        return "\n".join([os.path.basename(self.path), *rows])


@dataclass
class OrderImportReport(ImportReport):
    key_name: ClassVar[str] = "order_id"
    lines_imported: int = 0
    lines_already_present: int = 0
    orders_imported: int = 0
    orders_of_members: int = 0
    orders_already_present: int = 0
    orders_conflicting: int = 0
    orders_rejected: int = 0
    orders_linked: int = 0
    members_enrolled: int = 0
    points_awarded: int = 0
    items_added: int = 0

    def counts(self) -> list[tuple[str, int]]:
        return [
            ("lines read", self.lines_read),
            ("lines imported", self.lines_imported),
            ("orders imported", self.orders_imported),
            ("  of members", self.orders_of_members),
            ("orders already present", self.orders_already_present),
            ("  their lines", self.lines_already_present),
            ("orders in conflict", self.orders_conflicting),
            ("orders rejected", self.orders_rejected),
            ("orders linked to members", self.orders_linked),
            ("members enrolled", self.members_enrolled),
            ("points awarded", self.points_awarded),
            ("items added to catalog", self.items_added),
        ]


@dataclass
class ItemImportReport(ImportReport):
    key_name: ClassVar[str] = "sku"
    items_added: int = 0
    items_updated: int = 0
    items_unchanged: int = 0

    def counts(self) -> list[tuple[str, int]]:
        return [
            ("lines read", self.lines_read),
            ("items added", self.items_added),
            ("items updated", self.items_updated),
            ("items unchanged", self.items_unchanged),
        ]


# Reading -----------------------------------------------------------------------------------


def count_lines(path: PathLike) -> int:
    """Data lines (newlines less the header), for a progress bar: one pass over raw bytes."""
    newlines, last = 0, b"\n"
    with _unreadable_as_bad_input(path), _open_binary(path) as stream:
        while chunk := stream.read(1 << 20):
            newlines += chunk.count(b"\n")
            last = chunk[-1:]
    if last != b"\n":
        newlines += 1
    return max(newlines - 1, 0)


def _is_gzip(path: PathLike) -> bool:
    return os.fspath(path).endswith(".gz")


def _open_binary(path: PathLike) -> Any:
    return gzip.open(path, "rb") if _is_gzip(path) else open(path, "rb")


def _open_text(path: PathLike) -> TextIO:
    if _is_gzip(path):
        return gzip.open(path, "rt", encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


class _Table:
    """A CSV file's header and its records, each with the file line it starts on."""

    def __init__(self, stream: TextIO, name: str) -> None:
        self._reader = csv.reader(stream)
        header = next(self._reader, None)
        if not header:
            raise BadInput(f"{name} is empty: the first line must name the columns.", field="file")
        self.header = [h.strip() for h in header]

    @property
    def line_num(self) -> int:
        return self._reader.line_num

    def records(self) -> Iterator[tuple[int, list[str]]]:
        start = self._reader.line_num + 1
        for row in self._reader:
            if row:
                yield start, row
            start = self._reader.line_num + 1


@contextmanager
def _table(path: PathLike) -> Iterator[_Table]:
    with _unreadable_as_bad_input(path), _open_text(path) as stream:
        yield _Table(stream, os.path.basename(os.fspath(path)))


@contextmanager
def _unreadable_as_bad_input(path: PathLike) -> Iterator[None]:
    name = os.path.basename(os.fspath(path))
    try:
        yield
    except UnicodeDecodeError:
        raise BadInput(f"{name} is not UTF-8 text: save it as 'CSV UTF-8' and import it again.", field="file") from None
    except (csv.Error, gzip.BadGzipFile, EOFError) as exc:
        raise BadInput(f"{name} cannot be read as CSV: {exc}.", field="file") from None


def resolve_mapping(value: str | None) -> dict[str, str] | None:
    """``--mapping``: nothing (the file uses our column names), a known export, or JSON.

    JSON is an object ``{our_column: their_header}``; columns it leaves out are looked for
    under our own name.
    """
    if value is None or not value.strip():
        return None
    if value.strip() in KNOWN_EXPORTS:
        return dict(KNOWN_EXPORTS[value.strip()])
    known = ", ".join(KNOWN_EXPORTS)
    try:
        mapping = json.loads(value)
    except json.JSONDecodeError:
        raise click.BadParameter(
            f'give a known export ({known}) or a JSON object like \'{{"order_id": "Invoice", "sku": "Item code"}}\'.',
            param_hint="--mapping",
        ) from None
    if not isinstance(mapping, dict) or not all(isinstance(v, str) and v.strip() for v in mapping.values()):
        raise click.BadParameter(
            "the JSON must be an object of our column -> your header (text).", param_hint="--mapping"
        )
    unknown = sorted(set(mapping) - set(ORDER_COLUMNS))
    if unknown:
        raise click.BadParameter(
            f"{', '.join(unknown)} is not one of our columns: {', '.join(ORDER_COLUMNS)}.", param_hint="--mapping"
        )
    return {ours: theirs.strip() for ours, theirs in mapping.items()}


def _columns(
    header: list[str], mapping: dict[str, str] | None, ours: Sequence[str], required: Sequence[str], name: str
) -> dict[str, int]:
    """Where each of our columns is in the file; refuses a file without a required one."""
    wanted = {col: (mapping or {}).get(col, col) for col in ours}
    found = {col: header.index(h) for col, h in wanted.items() if h in header}
    missing = [col if wanted[col] == col else f"{col} (header {wanted[col]!r})" for col in required if col not in found]
    if missing:
        raise BadInput(
            f"{name} has no column for {', '.join(missing)}. Its header is: {', '.join(header)}. "
            f"Rename the columns{' or give --mapping' if ours == ORDER_COLUMNS else ''}.",
            field="header",
        )
    return found


# Orders: parsing ---------------------------------------------------------------------------


class _Bad(Exception):
    """A line's problem, inside the parser only: callers see ``Rejection``s."""

    def __init__(self, field_name: str, value: str, reason: str, message: str, line: int = 0) -> None:
        super().__init__(message)
        self.field = field_name
        self.value = value
        self.reason = reason
        self.message = message
        #: set by checks across the lines of an order, to blame the line that disagrees
        self.line = line


@dataclass(slots=True)
class _Line:
    line: int
    sku: str
    qty: int
    unit_price: Decimal
    cents: int
    category: str | None
    name: str | None
    user_id: str | None
    placed_at: datetime
    #: total, shipping and tax where this line gives them (files that have those columns)
    figures: dict[str, Decimal] | None


@dataclass(slots=True)
class _Order:
    order_id: str
    user_id: str | None
    placed_at: datetime
    total: Decimal
    shipping: Decimal
    tax: Decimal
    lines: list[_Line]
    fingerprint: str


def _split_orders(records: Iterator[tuple[int, list[str]]], at: int) -> dict[str, list[int]]:
    """Order ids whose lines are not all together, with the line each stretch starts on.

    Found in a first pass so such an order is rejected whole, before any of it is written.
    """
    first: dict[str, int] = {}
    split: dict[str, list[int]] = {}
    current = None
    for line, row in records:
        oid = row[at].strip() if at < len(row) else ""
        if not oid or oid == current:
            continue
        current = oid
        if oid in first:
            split.setdefault(oid, [first[oid]]).append(line)
        else:
            first[oid] = line
    return split


def _groups(records: Iterator[tuple[int, list[str]]], at: int) -> Iterator[tuple[str, list[tuple[int, list[str]]]]]:
    """Consecutive lines of one order; a line without an order id stands alone."""
    current, group = "", []
    for line, row in records:
        oid = row[at].strip() if at < len(row) else ""
        if not oid:
            yield "", [(line, row)]
            continue
        if oid != current and group:
            yield current, group
            group = []
        current = oid
        group.append((line, row))
    if group:
        yield current, group


def _whole(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def _amount(text: str, field_name: str, reason: str) -> Decimal:
    """Zero or more with at most two decimals, as ``to_money`` accepts: nothing is rounded."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise _Bad(field_name, text, reason, f"{field_name} must be an amount like 2.55, not {text!r}.") from None
    if not value.is_finite() or value < 0 or value >= MAX_MONEY:
        raise _Bad(field_name, text, reason, f"{field_name} must be an amount of 0 or more, not {text!r}.")
    cents = value.quantize(CENT)
    if cents != value:
        raise _Bad(field_name, text, reason, f"{field_name} has more than two decimals: {text}.")
    return cents


def _text(raw: list[str], at: int | None, field_name: str, limit: int, *, required: bool = False) -> str | None:
    value = raw[at].strip() if at is not None else ""
    if not value:
        if required:
            raise _Bad(field_name, "", "missing", f"{field_name} is empty; every line needs one.")
        return None
    if len(value) > limit:
        raise _Bad(field_name, value, "too_long", f"{field_name} is longer than {limit} characters.")
    return value


def _integer_id(value: str) -> str:
    """Spreadsheets and pandas turn integer ids into floats ("17850.0"): give them back."""
    whole, _, fraction = value.partition(".")
    if whole.isascii() and whole.isdigit() and fraction and fraction.strip("0") == "":
        return whole
    return value


class _OrderParser:
    """Turns the lines of one order into an ``_Order``, or into rejections for all of them."""

    def __init__(
        self, columns: dict[str, int], split: dict[str, list[int]], now: datetime, report: OrderImportReport
    ) -> None:
        self.qty_at, self.sku_at = columns["qty"], columns["sku"]
        self.price_at, self.placed_at = columns["unit_price"], columns["placed_at"]
        self.user_at, self.category_at, self.name_at = (columns.get(c) for c in ("user_id", "category", "name"))
        self.figures = [(c, columns[c]) for c in ("total", "shipping", "tax") if c in columns]
        self.width = max(columns.values()) + 1
        self.split = split
        self.now = now
        self.report = report
        self._prices: dict[str, tuple[Decimal, int]] = {}
        self._date_text: str | None = None
        self._date: datetime | _Bad = datetime.min

    def parse(self, order_id: str, group: list[tuple[int, list[str]]]) -> _Order | None:
        if not order_id:
            return self._reject_all(group, "", "missing", "order_id is empty; every line needs its order's id.")
        if order_id in self.split:
            starts = ", ".join(str(n) for n in self.split[order_id])
            message = (
                f"the lines of order {order_id} are not together (they start on lines {starts}); "
                "put all lines of one order one after another."
            )
            return self._reject_all(group, order_id, "split_order", message)
        if len(order_id) > 255:
            return self._reject_all(group, order_id, "too_long", "order_id is longer than 255 characters.")
        lines: list[_Line] = []
        bad: list[tuple[int, _Bad]] = []
        for line, raw in group:
            try:
                lines.append(self._line(order_id, line, raw))
            except _Bad as problem:
                bad.append((line, problem))
        if not bad:
            try:
                return self._order(order_id, lines)
            except _Bad as problem:
                at = problem.line or lines[0].line
                bad.append((at, problem))
                lines = [x for x in lines if x.line != at]
        self.report.orders_rejected += 1
        for line, problem in bad:
            self.report.reject(line, problem.field, problem.value, problem.reason, problem.message, order_id)
        first = min(line for line, _ in bad)
        for kept in lines:
            message = (
                f"not imported: order {order_id} is imported whole or not at all, and its line {first} was rejected."
            )
            self.report.reject(kept.line, "order_id", order_id, "with_rejected_line", message, order_id)
        return None

    def _reject_all(self, group: list[tuple[int, list[str]]], order_id: str, reason: str, message: str) -> None:
        self.report.orders_rejected += 1
        for line, _ in group:
            self.report.reject(line, "order_id", order_id, reason, message, order_id)

    def _line(self, order_id: str, line: int, raw: list[str]) -> _Line:
        if len(raw) < self.width:
            message = f"the line has {len(raw)} values but the columns used need {self.width}."
            raise _Bad("", ",".join(raw), "malformed", message)
        return _Line(
            line,
            _text(raw, self.sku_at, "sku", 100, required=True),  # type: ignore[arg-type]
            self._qty(order_id, raw[self.qty_at].strip()),
            *self._unit_price(raw[self.price_at].strip()),
            _text(raw, self.category_at, "category", 100),
            (raw[self.name_at].strip()[:300] or None) if self.name_at is not None else None,
            self._user(raw),
            self._placed(raw[self.placed_at].strip()),
            {c: _amount(raw[at].strip(), c, "bad_total") for c, at in self.figures if raw[at].strip()}
            if self.figures
            else None,
        )

    @staticmethod
    def _qty(order_id: str, text: str) -> int:
        qty = _whole(text)
        if qty is not None and qty < 0 and order_id.startswith("C"):
            message = f"{order_id} is a cancellation invoice (C...): refunds go through record_refund, not imports."
            raise _Bad("order_id", order_id, "cancellation", message)
        if qty is not None and qty < 0:
            message = f"qty {qty} is negative (a return or stock correction): returns are recorded with record_refund."
            raise _Bad("qty", text, "return", message)
        if qty is None or qty == 0 or qty > MAX_QTY:
            raise _Bad("qty", text, "bad_qty", f"qty must be a whole number >= 1, not {text!r}.")
        return qty

    def _unit_price(self, text: str) -> tuple[Decimal, int]:
        """The price and its cents; a shop has few distinct prices, so each text is parsed once."""
        known = self._prices.get(text)
        if known is not None:
            return known
        price = _amount(text, "unit_price", "bad_price")
        if price == 0:
            message = "unit_price is 0: free lines (samples, gifts, corrections) are not imported as sales."
            raise _Bad("unit_price", text, "zero_price", message)
        if len(self._prices) >= PRICE_CACHE:
            self._prices.clear()
        self._prices[text] = (price, int(price.scaleb(2)))
        return self._prices[text]

    def _placed(self, text: str) -> datetime:
        """Lines of one order share their date: parse each text once."""
        if text != self._date_text:
            self._date_text = text
            self._date = self._moment(text)
        if isinstance(self._date, _Bad):
            raise self._date
        return self._date

    def _moment(self, text: str) -> datetime | _Bad:
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            message = f"placed_at must be a date-time like 2011-12-09 12:50:00, not {text!r}."
            return _Bad("placed_at", text, "bad_date", message)
        if moment.tzinfo is not None:
            moment = moment.astimezone(UTC).replace(tzinfo=None)
        if moment > self.now:
            return _Bad("placed_at", text, "future_date", f"placed_at {text} is in the future.")
        return moment

    def _user(self, raw: list[str]) -> str | None:
        user = raw[self.user_at].strip() if self.user_at is not None else ""
        if "." in user:
            user = _integer_id(user)
        if len(user) > 255:
            raise _Bad("user_id", user, "too_long", "user_id is longer than 255 characters.")
        return user or None

    def _order(self, order_id: str, lines: list[_Line]) -> _Order:
        """The order-level checks: one customer, one total, shipping and tax within it."""
        head = lines[0]
        for x in lines:
            if x.user_id != head.user_id:
                message = (
                    f"order {order_id} names two customers: {head.user_id or '(guest)'} on line {head.line} "
                    f"and {x.user_id or '(guest)'} on line {x.line}."
                )
                raise _Bad("user_id", x.user_id or "", "inconsistent", message, x.line)
        given = self._agreed(order_id, lines) if self.figures else {}
        total = given["total"] if "total" in given else sum((x.unit_price * x.qty for x in lines), Decimal(0))
        shipping = given.get("shipping", Decimal("0.00"))
        tax = given.get("tax", Decimal("0.00"))
        if shipping + tax > total:
            message = f"shipping and tax ({shipping + tax}) are more than order {order_id}'s total ({total})."
            raise _Bad("total", str(total), "bad_total", message)
        content = [{"sku": x.sku, "qty": x.qty, "unit_price": str(x.unit_price), "category": x.category} for x in lines]
        digest = fingerprint(head.user_id, str(total), str(shipping), str(tax), content)
        placed_at = min(x.placed_at for x in lines)
        return _Order(order_id, head.user_id, placed_at, total, shipping, tax, lines, digest)

    @staticmethod
    def _agreed(order_id: str, lines: list[_Line]) -> dict[str, Decimal]:
        """Order figures may be given on every line or on one: where given, they must agree."""
        agreed: dict[str, tuple[Decimal, int]] = {}
        for x in lines:
            for name, value in (x.figures or {}).items():
                seen, where = agreed.setdefault(name, (value, x.line))
                if value != seen:
                    message = f"order {order_id} has {name} {seen} on line {where} and {value} on line {x.line}."
                    raise _Bad(name, str(value), "inconsistent", message, x.line)
        return {name: value for name, (value, _) in agreed.items()}


# Orders: writing ---------------------------------------------------------------------------


def _chunks(values: Sequence[Any], size: int = IN_CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _dialect_insert(session: Session) -> Any:
    """The INSERT with ON CONFLICT of the two databases the plugin supports."""
    return {"postgresql": postgresql.insert, "sqlite": sqlite.insert}[session.get_bind().dialect.name]


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
        stmt = _dialect_insert(session)(Member.__table__).on_conflict_do_nothing(index_elements=["user_id"])
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
        s = self.settings
        factor = s.points_per_unit * s.tier(tier_code).multiplier * s.campaign_multiplier(order.placed_at)
        return floor_points(earn_base(order.total, order.shipping, order.tax, s) * factor)

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
            _dialect_insert(session)(table)
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
            session.execute(
                _dialect_insert(session)(Item.__table__).on_conflict_do_nothing(index_elements=["sku"]), rows
            )
        self.known_skus.update(skus)
        self.report.items_added += len(rows)


def import_orders(
    store: Store,
    path: PathLike,
    *,
    mapping: dict[str, str] | None = None,
    enroll: bool = False,
    award_points: bool = False,
    settings: Settings,
    now: datetime,
    progress: Progress | None = None,
    batch_orders: int | None = None,
) -> OrderImportReport:
    """Import a CSV of order lines (``.csv`` or ``.csv.gz``); safe to run again on the same file.

    By default history earns nothing: it feeds analytics, recommendations and tiers (orders of
    members are linked to them). ``enroll`` makes every customer with a valid order a member;
    ``award_points`` earns points on the new orders of members as if they had come in live.
    Imported members get no welcome, referral or birthday points and no enrolment signal.
    ``progress`` is called after each committed batch with the number of file lines it covered.
    """
    started = time.perf_counter()
    report = OrderImportReport(path=os.fspath(path))
    name = os.path.basename(report.path)
    with _table(path) as table:
        columns = _columns(table.header, mapping, ORDER_COLUMNS, ORDER_REQUIRED, name)
        split = _split_orders(table.records(), columns["order_id"])
    parser = _OrderParser(columns, split, now, report)
    writer = _OrderWriter(
        store, settings, now, enroll=enroll, award_points=award_points, with_names="name" in columns, report=report
    )
    size = batch_orders or (BATCH_AWARDING if award_points else BATCH_ORDERS)
    reported = lines = 0
    with _table(path) as table:
        batch: list[_Order] = []
        for order_id, group in _groups(table.records(), columns["order_id"]):
            report.lines_read += len(group)
            order = parser.parse(order_id, group)
            if order is not None:
                batch.append(order)
                lines += len(order.lines)
            if len(batch) >= size or lines >= BATCH_LINES:
                writer.write(batch)
                batch, lines = [], 0
                reported = _advance(progress, table.line_num - 1, reported)
        if batch:
            writer.write(batch)
        _advance(progress, table.line_num - 1, reported)
    report.seconds = time.perf_counter() - started
    return report


def _advance(progress: Progress | None, done: int, reported: int) -> int:
    if progress is not None and done > reported:
        progress(done - reported)
    return max(done, reported)


# Items -------------------------------------------------------------------------------------


def _flag(text: str, field_name: str) -> bool:
    word = text.lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise _Bad(field_name, text, "bad_flag", f"{field_name} must be yes or no (true/false, 1/0), not {text!r}.")


def _item(raw: list[str], at: dict[str, int]) -> dict[str, Any]:
    """The values a line gives; a blank optional cell leaves the catalog's value as it is."""
    width = max(at.values()) + 1
    if len(raw) < width:
        raise _Bad("", ",".join(raw), "malformed", f"the line has {len(raw)} values but the columns need {width}.")
    limits = {"sku": 100, "name": 300, "category": 100, "url": 500, "image_url": 500}
    values: dict[str, Any] = {}
    for col, limit in limits.items():
        value = _text(raw, at.get(col), col, limit, required=col in ITEM_REQUIRED)
        if value is not None:
            values[col] = value
    if "price" in at and raw[at["price"]].strip():
        values["price"] = _amount(raw[at["price"]].strip(), "price", "bad_price_item")
    for col in ("in_stock", "consumable"):
        if col in at and raw[at[col]].strip():
            values[col] = _flag(raw[at[col]].strip(), col)
    return values


def import_items(store: Store, path: PathLike, *, now: datetime) -> ItemImportReport:
    """Add or update catalog items by sku; items the file leaves out are not touched."""
    started = time.perf_counter()
    report = ItemImportReport(path=os.fspath(path))
    seen: dict[str, int] = {}
    with _table(path) as table:
        at = _columns(table.header, None, ITEM_COLUMNS, ITEM_REQUIRED, os.path.basename(report.path))
        batch: list[dict[str, Any]] = []
        for line, raw in table.records():
            report.lines_read += 1
            try:
                values = _item(raw, at)
            except _Bad as problem:
                sku = raw[at["sku"]].strip() if at["sku"] < len(raw) else ""
                report.reject(line, problem.field, problem.value, problem.reason, problem.message, sku)
                continue
            sku = values["sku"]
            if sku in seen:
                report.reject(
                    line,
                    "sku",
                    sku,
                    "duplicate",
                    f"sku {sku} is already on line {seen[sku]}; list each item once.",
                    sku,
                )
                continue
            seen[sku] = line
            batch.append(values)
            if len(batch) >= BATCH_ITEMS:
                _write_items(store, batch, now, report)
                batch = []
        if batch:
            _write_items(store, batch, now, report)
    report.seconds = time.perf_counter() - started
    return report


def _write_items(store: Store, batch: list[dict[str, Any]], now: datetime, report: ItemImportReport) -> None:
    with store.work() as session:
        stored = {}
        for chunk in _chunks([values["sku"] for values in batch]):
            stored.update({item.sku: item for item in session.scalars(select(Item).where(Item.sku.in_(chunk)))})
        added, changed = [], []
        for values in batch:
            item = stored.get(values["sku"])
            if item is None:
                added.append(
                    {
                        "category": None,
                        "price": None,
                        "url": None,
                        "image_url": None,
                        "in_stock": True,
                        "consumable": True,
                        **values,
                        "updated_at": now,
                    }
                )
            elif any(getattr(item, col) != value for col, value in values.items()):
                changed.append({**values, "updated_at": now})
            else:
                report.items_unchanged += 1
        if added:
            session.execute(insert(Item.__table__), added)
        for values in changed:
            session.execute(update(Item).where(Item.sku == values["sku"]).values(**values))
        report.items_added += len(added)
        report.items_updated += len(changed)
    store.commit()
