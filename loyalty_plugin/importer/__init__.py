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

from .columns import resolve_mapping
from .files import count_lines
from .items import import_items
from .orders import import_orders
from .reports import ImportReport, ItemImportReport, OrderImportReport, Rejection

__all__ = [
    "ImportReport",
    "ItemImportReport",
    "OrderImportReport",
    "Rejection",
    "count_lines",
    "import_items",
    "import_orders",
    "resolve_mapping",
]
