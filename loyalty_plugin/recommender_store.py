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

import numpy as np
import pandas as pd
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from .models import Order, OrderLine, RecommenderVersion
from .recommend.blend import Recommender
from .recommend.evaluate import default_models, evaluate

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


#: The job's own check of each version: the last weeks held out, a sample of members scored.
SCORE_WEEKS = 4
SCORE_MEMBERS = 2000
#: Fewer members bought in both periods than this, and no scores are stored: they would be noise.
SCORE_MIN_MEMBERS = 20


def offline_scores(data: pd.DataFrame, *, now: datetime) -> dict[str, Any] | None:
    """The blend against popularity and buy-again on the last ``SCORE_WEEKS``, trained on what
    came before, for at most ``SCORE_MEMBERS`` members (a fixed sample, so versions compare)."""
    cutoff = pd.Timestamp(now) - pd.Timedelta(weeks=SCORE_WEEKS)
    before, after = data[data["at"] < cutoff], data[data["at"] >= cutoff]
    members = sorted(set(before["user"]) & set(after["user"]))
    if len(members) < SCORE_MIN_MEMBERS:
        return None
    if len(members) > SCORE_MEMBERS:
        members = sorted(np.random.default_rng(0).choice(members, SCORE_MEMBERS, replace=False))
    held_out = after[after["user"].isin(members)]
    models = {name: model for name, model in default_models().items() if name in ("popularity", "buy_again", "blend")}
    result = evaluate(pd.concat([before, held_out]), cutoff=cutoff, weeks=SCORE_WEEKS, models=models)
    return {
        "cutoff": cutoff.date().isoformat(),
        "weeks": SCORE_WEEKS,
        "k": result.k,
        "rows": [
            {"target": target, "model": model, **{k: float(v) for k, v in row.items()}}
            for (target, model), row in result.table.iterrows()
        ],
    }


def fit_version(session: Session, *, now: datetime, keep: int) -> Fitted | None:
    """Fit on the orders so far, check it on held-out weeks, and store it as the newest
    version; None when there are no purchases to learn from. Versions beyond the newest
    ``keep`` are deleted."""
    data = purchases(session, until=now)
    if data.empty:
        return None
    scores = offline_scores(data, now=now)
    started = time.perf_counter()
    model = Recommender().fit(data, now=now)
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
