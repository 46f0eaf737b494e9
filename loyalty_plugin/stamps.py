"""What a member's dashboard is keyed by (``pagecache``): the member's id, version, tier and
when it was reached. Read on every request by default, so a change made by any process shows
on the next one.

On PostgreSQL that one read is a round trip to the database, the largest part of a dashboard
served from the cache. With ``LOYALTY_PAGE_CACHE_NOTIFY`` each worker keeps the stamps it read
and a thread of its own listens on a connection of its own for the database's notification of
a changed member (a trigger on ``loyalty_members`` sends it when its transaction commits), then
forgets that member's stamp. A change made by another process then shows once the notification
has arrived, normally within milliseconds. A request that shows a flashed message (the member's
own redemption, joining, leaving) reads afresh, and while the listening connection is down
nothing is kept: every request reads, as by default. A kept stamp only decides whether a kept
page may be reused, and a page is rendered from the database again after
``LOYALTY_PAGE_CACHE_SECONDS`` in any case: that bounds what a listener that hangs without
failing could leave unseen.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from sqlalchemy import Engine, bindparam, select

from .database import QuickRead, Store
from .errors import ConfigError
from .models import MEMBER_CHANNEL, Member

log = logging.getLogger(__name__)

Stamp = tuple[Any, ...]

STAMP = QuickRead(
    select(Member.id, Member.version, Member.tier_code, Member.tier_reached_at).where(
        Member.user_id == bindparam("user_id"), Member.erased_at.is_(None)
    )
)

#: How long the listening thread waits for a notification before it looks whether it should
#: stop: the longest ``close`` waits for it.
LISTEN_POLL_SECONDS = 0.25
#: How long it waits before connecting again after losing its connection.
RECONNECT_SECONDS = 1.0


class Stamps:
    """Read on every request."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def get(self, user_id: str, *, fresh: bool = False) -> Stamp | None:
        """The member's stamp; None for a visitor who has not joined (or has left)."""
        return STAMP.first(self.store.engine, {"user_id": user_id})

    def close(self) -> None:
        """Nothing runs beside the app."""


class NotifiedStamps(Stamps):
    """Kept per worker until PostgreSQL notifies a change (at most ``size``, oldest out first)."""

    def __init__(self, store: Store, size: int) -> None:
        super().__init__(store)
        self.size = size
        self._kept: dict[str, Stamp] = {}
        #: Counts every notification and every loss or gain of the connection: a stamp read
        #: while it moved may already be stale, and is not kept.
        self.heard = 0
        self.listening = False
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: The process that started the listener: a forked worker starts its own.
        self._pid = 0
        if store.owns_session:  # a host's engine may not exist yet (its db.init_app can follow ours)
            _require_listenable(store.engine)

    def get(self, user_id: str, *, fresh: bool = False) -> Stamp | None:
        if self._pid != os.getpid():
            self._start()
        if not fresh:
            stamp = self._kept.get(user_id)
            if stamp is not None:
                return stamp
        heard = self.heard
        stamp = super().get(user_id)
        if stamp is not None and self.listening:
            with self._changed:
                if self.heard == heard and self.listening:
                    self._kept.pop(user_id, None)
                    self._kept[user_id] = stamp
                    if len(self._kept) > self.size:
                        del self._kept[next(iter(self._kept))]
        return stamp

    def wait_heard(self, past: int, timeout: float) -> bool:
        """Wait until ``heard`` has moved past ``past``: for a test or a script that changes a
        member and then looks at the page in this process."""
        with self._changed:
            return self._changed.wait_for(lambda: self.heard > past, timeout)

    def _start(self) -> None:
        _require_listenable(self.store.engine)
        with self._changed:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
            self._kept.clear()
            self.listening = False
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._listen, name="loyalty-stamps", daemon=True)
            self._thread.start()

    def _listen(self) -> None:
        while not self._stop.is_set():
            connection = None
            try:
                connection = self.store.engine.raw_connection()
                connection.detach()  # its own for as long as it lives, never back to the pool
                listener = connection.dbapi_connection
                listener.autocommit = True
                listener.execute(f"LISTEN {MEMBER_CHANNEL}")
                self._hear(listening=True)
                while not self._stop.is_set():
                    for notify in listener.notifies(timeout=LISTEN_POLL_SECONDS):
                        self._hear(forget=notify.payload)
            except Exception as error:  # any failure: stop trusting what is kept, connect again
                log.warning(
                    "member change notifications lost (%s); reading every stamp until back", type(error).__name__
                )
                self._hear(listening=False)
                self._stop.wait(RECONNECT_SECONDS)
            finally:
                if connection is not None:
                    connection.close()
        self._hear(listening=False)

    def _hear(self, *, forget: str | None = None, listening: bool | None = None) -> None:
        with self._changed:
            if listening is None:
                self._kept.pop(forget, None)
            else:
                self._kept.clear()  # what changed while nobody listened is unknown
                self.listening = listening
            self.heard += 1
            self._changed.notify_all()

    def close(self) -> None:
        """Stop listening (tests, shutdown)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()


def _require_listenable(engine: Engine) -> None:
    if engine.dialect.name != "postgresql" or engine.dialect.driver != "psycopg":
        raise ConfigError(
            "LOYALTY_PAGE_CACHE_NOTIFY needs PostgreSQL through psycopg 3 (postgresql+psycopg://); "
            f"this database is {engine.dialect.name}+{engine.dialect.driver}."
        )
