"""``import-orders``: a CSV of order lines read, parsed and written in batches."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import datetime

from ..config import Settings
from ..database import Store
from .columns import ORDER_COLUMNS, ORDER_REQUIRED, _columns
from .files import PathLike, _table
from .order_parser import _groups, _Order, _OrderParser, _split_orders
from .order_writer import _OrderWriter
from .reports import OrderImportReport

Progress = Callable[[int], None]

#: A batch is one transaction, and on SQLite it holds the write lock while it runs: these bound
#: how long a live shop's own writes may wait behind an import.
BATCH_ORDERS = 5000
BATCH_LINES = 25_000
BATCH_AWARDING = 500


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
