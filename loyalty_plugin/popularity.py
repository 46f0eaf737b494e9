"""Popular items: what the "recommended for you" slot shows a member the recommender knows
nothing about yet, and every member until a model has been fitted."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .models import Item, Order, OrderLine

#: Purchases this recent count towards popularity.
WINDOW = timedelta(days=90)
#: How long a popularity ranking is reused: it aggregates 90 days of order lines, too much to
#: redo on every dashboard view, and it moves slowly.
REFRESH = timedelta(minutes=10)


@dataclass(frozen=True)
class Suggestion:
    sku: str
    name: str
    url: str | None
    image_url: str | None
    price: Decimal | None
    reason: str
    buyers: int


def popular(session: Session, *, now: datetime, limit: int) -> list[tuple[str, int]]:
    """(sku, distinct buyers) over the last 90 days, most bought first."""
    buyers = func.count(func.distinct(Order.user_id))
    return [
        (sku, int(n))
        for sku, n in session.execute(
            select(OrderLine.sku, buyers)
            .join(Order, Order.id == OrderLine.order_pk)
            .where(Order.placed_at > now - WINDOW, Order.placed_at <= now, Order.user_id.is_not(None))
            .group_by(OrderLine.sku)
            .order_by(buyers.desc(), OrderLine.sku)
            .limit(limit)
        ).all()
    ]


ItemInfo = Callable[[list[str]], dict[str, dict[str, Any]]]


def suggest(
    session: Session, ranked: list[tuple[str, int]], item_info: ItemInfo | None, limit: int
) -> list[Suggestion]:
    """Ranked items in stock, with the shop's own product data where its ``item_info`` hook has it."""
    skus = [sku for sku, _ in ranked]
    known = {i.sku: i for i in session.scalars(select(Item).where(Item.sku.in_(skus)))} if skus else {}
    hosted = item_info(skus) if item_info and skus else {}
    out = []
    for sku, n in ranked:
        info = dict(hosted.get(sku) or {})
        item = known.get(sku)
        in_stock = info.get("in_stock", item.in_stock if item else True)
        if not in_stock:
            continue
        out.append(
            Suggestion(
                sku=sku,
                name=info.get("name") or (item.name if item else sku),
                url=info.get("url") or (item.url if item else None),
                image_url=info.get("image") or (item.image_url if item else None),
                price=info.get("price") if info.get("price") is not None else (item.price if item else None),
                reason="popular",
                buyers=n,
            )
        )
        if len(out) == limit:
            break
    return out


class PopularCache:
    """Popular items with their product data, per app and worker, rebuilt at most every
    ``REFRESH``: the same for every member, so no page view should pay for them."""

    def __init__(self) -> None:
        self._items: list[Suggestion] = []
        self._until: datetime | None = None
        self._lock = threading.Lock()

    def suggestions(self, session: Session, *, now: datetime, item_info: ItemInfo | None) -> list[Suggestion]:
        with self._lock:
            if self._until is None or not (self._until - REFRESH <= now < self._until):
                self._items = suggest(session, popular(session, now=now, limit=CANDIDATES), item_info, CANDIDATES)
                self._until = now + REFRESH
            return self._items


#: How many popular items are kept: enough to fill a widget after filtering out of stock.
CANDIDATES = 60


def recommendations_for(
    session: Session,
    user_id: str | None,
    *,
    limit: int,
    now: datetime,
    item_info: ItemInfo | None,
    cache: PopularCache | None = None,
) -> list[Suggestion]:
    """What the "recommended for you" slot shows: popular items in stock (until the recommender
    issue lands)."""
    if cache is not None:
        return cache.suggestions(session, now=now, item_info=item_info)[:limit]
    return suggest(session, popular(session, now=now, limit=limit * 3), item_info, limit)
