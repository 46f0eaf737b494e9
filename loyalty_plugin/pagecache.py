"""Rendered member-page fragments, reused while nothing they show has changed.

A fragment is keyed by the member's ``version`` (bumped by every ledger entry, order, refund
and coupon change), tier and the page's language and day, so a change is visible on the next
request; time passing (points nearing expiry, coupons running out, popular items moving) is
caught by a short time-to-live. Only the plugin's own part of a page is kept: the shop's layout
around it, with its CSRF tokens and flashed messages, is rendered for every request.

One cache per app and worker process, bounded (least recently used entries go first).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from datetime import datetime, timedelta
from typing import Generic, TypeVar

V = TypeVar("V")


class FragmentCache(Generic[V]):
    """A fragment is whatever the page needs again on a hit: its HTML, and for the dashboard
    the recommendations it shows, so that a view served from here still counts as one."""

    def __init__(self, size: int, ttl: timedelta) -> None:
        self.size = size
        self.ttl = ttl
        self._entries: OrderedDict[Hashable, tuple[datetime, V]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, now: datetime) -> V | None:
        if not self.size:
            return None
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                return None
            made, value = found
            if not made <= now < made + self.ttl:
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return value

    def put(self, key: Hashable, value: V, now: datetime) -> None:
        if not self.size:
            return
        with self._lock:
            self._entries[key] = (now, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
