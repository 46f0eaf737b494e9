"""What the widget's audience did: impressions counted per worker and written in batches,
clicks recorded through a signed redirect.

A click link carries the item, its position and why it was shown, signed with the app's
secret key; the redirect goes to the item's page as the shop knows it, never to an address
taken from the link, so it cannot be turned into an open redirect.
"""

from __future__ import annotations

import atexit
import functools
import logging
import os
import threading
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from urllib.parse import urlsplit

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy.exc import SQLAlchemyError

from .database import Store, upsert_insert
from .models import RecommendationClick, RecommendationImpressions

log = logging.getLogger(__name__)

_SALT = "loyalty-recommendation-click"


@dataclass(frozen=True)
class Click:
    sku: str
    position: int
    reason: str
    model_version: int | None


@functools.lru_cache(maxsize=8)
def _serializer(secret_key: str | bytes) -> URLSafeSerializer:
    return URLSafeSerializer(secret_key, salt=_SALT)


@functools.lru_cache(maxsize=16384)
def click_token(secret_key: str | bytes, click: Click) -> str:
    """Kept once made: a token depends only on its arguments, and signing one (an HMAC with a
    derived key) for each item shown was a noticeable share of a freshly rendered dashboard."""
    return _serializer(secret_key).dumps([click.sku, click.position, click.reason, click.model_version])


def read_click_token(secret_key: str | bytes, token: str) -> Click | None:
    """The click a link stands for, or None for a link this shop did not sign."""
    try:
        sku, position, reason, version = _serializer(secret_key).loads(token)
    except (BadSignature, TypeError, ValueError):
        return None
    if not isinstance(sku, str) or not isinstance(position, int) or not isinstance(reason, str):
        return None
    return Click(sku, position, reason, version if isinstance(version, int) else None)


def own_url(url: str | None, host: str) -> bool:
    """Whether ``url`` stays on this shop: a path on this site, or an absolute URL on its host."""
    if not url or "\\" in url or any(ord(c) < 32 for c in url):
        return False
    parts = urlsplit(url)
    if not parts.scheme and not parts.netloc:
        return url.startswith("/") and not url.startswith("//")
    return parts.scheme in ("http", "https") and parts.netloc.lower() == host.lower()


def record_click(store: Store, *, user_id: str, experiment: str, variant: str, click: Click, now: datetime) -> None:
    with store.work() as session:
        session.add(
            RecommendationClick(
                user_id=user_id,
                experiment=experiment,
                variant=variant,
                sku=click.sku,
                position=click.position,
                reason=click.reason[:20],
                model_version=click.model_version,
                clicked_at=now,
            )
        )
    store.commit()


Key = tuple[date, str, str, str]


class ImpressionLog:
    """Impression counts of one worker, per (day, experiment, variant, user).

    Counting a view must not cost the page a database write, so counts collect in memory and
    a background thread writes them every ``flush_seconds`` as one upsert; with 0 they are
    written at once. A worker that dies loses at most that many seconds of counts.
    """

    def __init__(self, store: Store, flush_seconds: int) -> None:
        self.store = store
        self.flush_seconds = flush_seconds
        self._items: Counter[Key] = Counter()
        self._views: Counter[Key] = Counter()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        #: The process that started the writer: a forked worker starts its own.
        self._pid = 0

    def record(self, *, user_id: str, experiment: str, variant: str, items: int, now: datetime) -> None:
        key = (now.date(), experiment, variant, user_id)
        with self._lock:
            self._items[key] += items
            self._views[key] += 1
        if self.flush_seconds == 0:
            self.flush()
        elif self._pid != os.getpid():
            self._start()

    def flush(self) -> int:
        """Write what has been counted; returns the number of rows written."""
        with self._lock:
            items, views = self._items, self._views
            self._items, self._views = Counter(), Counter()
        if not views:
            return 0
        rows = [
            {"day": k[0], "experiment": k[1], "variant": k[2], "user_id": k[3], "items_shown": items[k], "views": n}
            for k, n in views.items()
        ]
        table = RecommendationImpressions.__table__
        try:
            with self.store.engine.begin() as connection:
                insert = upsert_insert(connection)(table)
                connection.execute(
                    insert.on_conflict_do_update(
                        index_elements=["day", "experiment", "variant", "user_id"],
                        set_={
                            "items_shown": table.c.items_shown + insert.excluded.items_shown,
                            "views": table.c.views + insert.excluded.views,
                        },
                    ),
                    rows,
                )
        except SQLAlchemyError:
            log.exception("recommendation impressions not written; kept for the next flush")
            with self._lock:
                self._items.update(items)
                self._views.update(views)
            return 0
        return len(rows)

    def _start(self) -> None:
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
            self._wake = threading.Event()
            self._thread = threading.Thread(target=self._loop, name="loyalty-impressions", daemon=True)
            self._thread.start()
        atexit.register(self.flush)

    def _loop(self) -> None:
        while not self._wake.wait(self.flush_seconds):
            self.flush()

    def close(self, *_: Any) -> None:
        """Stop the writer and write what is left (tests, shutdown).

        The thread is joined so no flush of this app's counts lands after it returns: a test
        suite that reuses one database for the next app would otherwise receive them."""
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        self.flush()
