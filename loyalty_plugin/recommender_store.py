"""Fitted recommenders in the shared database: the training data read from the orders, a
fitted version written as one row, and each worker's copy of the newest version.

The database is the one place every worker and host can see, so a version written there by
the recommender job is what all of them serve after their next look (at most
``LOYALTY_RECOMMENDER_REFRESH_SECONDS`` later), with no restart and no shared file system.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from .models import Order, OrderLine, RecommenderVersion
from .recommend.blend import Recommender

log = logging.getLogger(__name__)


def purchases(session: Session, *, until: datetime) -> pd.DataFrame:
    """Every purchase by a known user up to ``until`` (columns user, item, at, quantity):
    members and customers who never joined alike, since both show what goes together.
    Orders refunded in full are left out: they were not wanted."""
    rows = session.execute(
        select(Order.user_id, OrderLine.sku, Order.placed_at, OrderLine.qty)
        .join(Order, Order.id == OrderLine.order_pk)
        .where(
            Order.user_id.is_not(None),
            Order.placed_at <= until,
            OrderLine.qty > 0,
            Order.refunded_total < Order.total,
        )
    ).all()
    frame = pd.DataFrame(rows, columns=["user", "item", "at", "quantity"])
    frame["at"] = pd.to_datetime(frame["at"])
    return frame


@dataclass(frozen=True)
class Fitted:
    version: int
    interactions: int
    users: int
    items: int
    seconds: float


def fit_version(
    session: Session, *, now: datetime, keep: int, scores: dict[str, Any] | None = None, **params: Any
) -> Fitted | None:
    """Fit on the orders so far and store the result as the newest version; None when there
    are no purchases to learn from. Versions beyond the newest ``keep`` are deleted."""
    data = purchases(session, until=now)
    if data.empty:
        return None
    started = time.perf_counter()
    model = Recommender(**params).fit(data, now=now)
    seconds = time.perf_counter() - started
    row = RecommenderVersion(
        fitted_at=now,
        trained_until=data["at"].max().to_pydatetime(),
        fit_seconds=seconds,
        users=int(data["user"].nunique()),
        items=int(data["item"].nunique()),
        interactions=len(data),
        params=model.get_params(),
        scores=scores,
        artifact=model.to_bytes(),
    )
    session.add(row)
    session.flush()
    stale = select(RecommenderVersion.id).order_by(RecommenderVersion.id.desc()).offset(keep)
    session.execute(delete(RecommenderVersion).where(RecommenderVersion.id.in_(stale.scalar_subquery())))
    return Fitted(row.id, row.interactions, row.users, row.items, seconds)


class ModelHolder:
    """This worker's copy of the newest fitted version, reloaded when a newer one appears.

    Looking costs one indexed ``max(id)`` at most every ``refresh``; loading a new version
    happens once per worker, under a lock so that concurrent requests do not load it twice.
    """

    def __init__(self, refresh: timedelta) -> None:
        self.refresh = refresh
        self.version: int | None = None
        self.model: Recommender | None = None
        self._checked: datetime | None = None
        self._lock = threading.Lock()

    def current(self, session: Session, now: datetime) -> tuple[int | None, Recommender | None]:
        if self._checked is not None and self._checked <= now < self._checked + self.refresh:
            return self.version, self.model
        with self._lock:
            if self._checked is None or not self._checked <= now < self._checked + self.refresh:
                self._load(session)
                self._checked = now
            return self.version, self.model

    def _load(self, session: Session) -> None:
        newest = session.scalar(select(func.max(RecommenderVersion.id)))
        if newest == self.version:
            return
        if newest is None:
            self.version, self.model = None, None
            return
        artifact = session.scalar(select(RecommenderVersion.artifact).where(RecommenderVersion.id == newest))
        if artifact is None:  # deleted between the two reads: look again next time
            return
        self.model = Recommender.from_bytes(artifact)
        self.version = newest
        log.info("serving recommender version %s", newest)
