"""Rendered member-page fragments, reused while nothing they show has changed.

A fragment is keyed by the member's ``version`` (bumped by every ledger entry, order, refund
and coupon change), tier and the page's language and day, so a change is visible on the next
request; time passing (points nearing expiry, coupons running out, popular items moving) is
caught by a short time-to-live. Only the plugin's own part of a page is kept when the page
extends the shop's layout: that, with its CSRF tokens, cart and flashed messages, is rendered for
every request. When the page and its layout are the plugin's own files, the whole page is kept
too, and reused whenever no flashed message waits.

One cache per app and worker process, bounded (least recently used entries go first).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Generic, TypeVar

V = TypeVar("V")


@dataclass
class KeptPage(Generic[V]):
    """One member's page as kept: the plugin's part, what a hit still needs (for the dashboard,
    the recommendations it shows, so that a view served from here counts as one), and the
    whole page once rendered, when it may be reused as it is."""

    fragment: str
    extra: V
    whole: str | None = None


class FragmentCache(Generic[V]):
    """Kept pages by key (``KeptPage``), each for at most ``ttl``."""

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
