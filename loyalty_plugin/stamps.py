"""What a member's dashboard is keyed by (``pagecache``): the member's id, version, tier and
when it was reached. Read on every request by default, so a change made by any process shows
on the next one.

On PostgreSQL that one read is a round trip to the database, the largest part of a dashboard
served from the cache. With ``LOYALTY_PAGE_CACHE_NOTIFY`` each worker keeps the stamps it read
and a thread of its own listens, on a connection of its own, for the database's notification of
a changed member (a trigger on ``loyalty_members`` sends it when its transaction commits), then
forgets that member's stamp. Any change, made by this worker or another, then shows once the
notification has arrived, normally within milliseconds. A request that shows a flashed message
(the member's own redemption, joining, leaving) reads afresh.

Nothing kept is trusted while the listening connection is down, nor until a notification has
come through it, nor when none has for ``TRUST_SECONDS``: every request reads then, as by
default. A quiet listener sends itself one (``_probe``), which proves the connection alive (one
cut without a reset notices nothing) and the notifications delivered (a pooler between may take
the ``LISTEN`` and deliver nothing). A page is also rendered from the database again after
``LOYALTY_PAGE_CACHE_SECONDS`` whatever its stamp.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from itertools import islice
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

#: The listening connection's ``application_name``, as ``pg_stat_activity`` shows it.
LISTENER_NAME = "loyalty-stamps"
#: How long the listening thread waits for a notification before it looks whether it should
#: stop: the longest ``close`` waits for it.
LISTEN_POLL_SECONDS = 0.25
#: After this long without a notification the listener sends one to itself (``_probe``).
PING_SECONDS = 10.0
#: Kept stamps are used only while a notification arrived this recently.
TRUST_SECONDS = 30.0
#: How long it waits before connecting again after losing its connection.
RECONNECT_SECONDS = 1.0
#: The latest notifications remembered, so that a read which overlapped a few of them, none for
#: its member, may still be kept.
RECENT = 64


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
        #: Counts every notification and every loss or gain of the connection.
        self.heard = 0
        #: What the latest of those were about: a member's user id, or None for the connection.
        self._recent: deque[str | None] = deque(maxlen=RECENT)
        self.listening = False
        #: When the last notification arrived (``time.monotonic()``); 0 before the first.
        self.alive_at = 0.0
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: The process that started the listener: a forked worker starts its own.
        self._pid = 0
        try:
            engine = store.engine
        except RuntimeError:  # a host whose db.init_app follows ours: checked on first use
            return
        _require_listenable(engine)

    def get(self, user_id: str, *, fresh: bool = False) -> Stamp | None:
        if self._pid != os.getpid():
            self._start()
        if not fresh and self.trusted():
            stamp = self._kept.get(user_id)
            if stamp is not None:
                return stamp
        heard = self.heard
        stamp = super().get(user_id)
        if stamp is not None:
            with self._changed:
                if self.trusted() and self._unchanged_since(heard, user_id):
                    self._kept.pop(user_id, None)
                    self._kept[user_id] = stamp
                    if len(self._kept) > self.size:
                        del self._kept[next(iter(self._kept))]
        return stamp

    def wait(self, condition: Callable[[], bool], timeout: float) -> bool:
        """Wait until ``condition()`` holds, looked at whenever the listener hears something:
        for a test or a script that changes a member and then looks at the page in this process."""
        with self._changed:
            return self._changed.wait_for(condition, timeout)

    def trusted(self) -> bool:
        """Whether kept stamps may be used: listening, and a notification (a probe at least)
        arrived within ``TRUST_SECONDS``."""
        return self.listening and time.monotonic() - self.alive_at < TRUST_SECONDS

    def _unchanged_since(self, heard: int, user_id: str) -> bool:
        """Whether nothing heard since ``heard`` was counted concerns ``user_id`` (a stamp read
        meanwhile may predate that member's change). Called with the lock held."""
        missed = self.heard - heard
        if missed > len(self._recent):
            return False
        since = set(islice(self._recent, len(self._recent) - missed, None))
        return user_id not in since and None not in since

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
            listener = None
            try:
                pooled = self.store.engine.raw_connection()
                pooled.detach()  # its own for as long as it lives, never back to the pool
                listener = pooled.dbapi_connection
                listener.autocommit = True
                listener.execute(f"SET application_name = '{LISTENER_NAME}'")
                listener.execute(f"LISTEN {MEMBER_CHANNEL}")
                self._hear(listening=True)
                self._probe(listener)
                self._serve(listener)
            except Exception as error:  # any failure: stop trusting what is kept, connect again
                log.warning("member change notifications lost (%s); reading stamps until back", type(error).__name__)
                self._hear(listening=False)
                self._stop.wait(RECONNECT_SECONDS)
            finally:
                if listener is not None:
                    listener.close()  # the driver's own: SQLAlchemy's would roll a lost one back first
        self._hear(listening=False)

    def _serve(self, listener: Any) -> None:
        quiet_since = time.monotonic()
        while not self._stop.is_set():
            for notify in listener.notifies(timeout=LISTEN_POLL_SECONDS):
                self._hear(forget=notify.payload)
                quiet_since = time.monotonic()
            if time.monotonic() - quiet_since >= PING_SECONDS:
                self._probe(listener)
                quiet_since = time.monotonic()

    def _probe(self, listener: Any) -> None:
        """Send a notification of nobody to every listener, this one included: its arrival
        proves both the connection and the way notifications come (a pooler in between may
        pass the ``LISTEN`` and never deliver)."""
        listener.execute("SELECT pg_notify(%s, '')", [MEMBER_CHANNEL])
        with self._changed:
            self._changed.notify_all()  # waiters look at the time again

    def _hear(self, *, forget: str | None = None, listening: bool | None = None) -> None:
        """One notification (``forget``; a probe's is empty), or the connection gained or lost
        (``listening``). What was kept goes when the connection changes or trust had lapsed:
        what happened meanwhile is unknown. A new connection is trusted once a notification
        has come through it."""
        with self._changed:
            if listening is None:
                if not self.trusted():
                    self._kept.clear()
                self._kept.pop(forget, None)
                self.alive_at = time.monotonic()
            else:
                self._kept.clear()
                self.listening = listening
                self.alive_at = 0.0
            self._recent.append(forget)
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
