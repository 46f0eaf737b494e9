"""The admin's tables: one page of a query at a time, or all of it as CSV.

Every admin list is a SQL statement; the page shows a slice of it (``LIMIT``/``OFFSET`` and a
``COUNT`` of the same statement) and the CSV export streams the whole of it through pandas, so
the file has the same columns as the page, with the same names.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pandas as pd
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from . import account

#: The most rows one CSV export holds: a spreadsheet's limit is about a million.
CSV_ROW_LIMIT = 1_000_000


@dataclass(frozen=True)
class Page(account.Page):
    """A slice of a table: its items are tuples in ``columns`` order."""

    columns: tuple[str, ...] = ()

    @property
    def rows(self) -> list[tuple[Any, ...]]:
        return self.items


def paginate(session: Session, stmt: Select[Any], *, page: int, per_page: int) -> Page:
    """Page ``page`` (1-based, clamped to the pages there are) of ``stmt``, which must be ordered."""
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    page = account.clamped(page, total, per_page)
    result = session.execute(stmt.offset((page - 1) * per_page).limit(per_page))
    return Page([tuple(row) for row in result], page, per_page, total, columns=tuple(result.keys()))


def page_of(columns: Sequence[str], rows: Sequence[tuple[Any, ...]], *, page: int, per_page: int) -> Page:
    """A page of rows already fetched: for short lists whose query is costly, so it runs once."""
    total = len(rows)
    page = account.clamped(page, total, per_page)
    chosen = list(rows[(page - 1) * per_page : page * per_page])
    return Page(chosen, page, per_page, total, columns=tuple(columns))


#: What makes a spreadsheet read a cell as a formula (OWASP "CSV injection").
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _plain(value: Any) -> Any:
    """A cell as a spreadsheet reads it: exact decimals as text, dates in ISO 8601, and text
    that would start a formula (a name or reason someone typed) quoted so it stays text."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def frame(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> pd.DataFrame:
    return pd.DataFrame([[_plain(v) for v in row] for row in rows], columns=list(columns))


def csv_text(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """The table as CSV text (UTF-8, header row, no index column)."""
    return frame(columns, rows).to_csv(index=False)


def query_csv(session: Session, stmt: Select[Any]) -> str:
    """All of ``stmt`` (up to ``CSV_ROW_LIMIT`` rows) as CSV, its column labels as the header."""
    result = session.execute(stmt.limit(CSV_ROW_LIMIT))
    return csv_text(tuple(result.keys()), [tuple(row) for row in result])
