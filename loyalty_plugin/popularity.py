"""Popular items: what the "recommended for you" slot shows a member the recommender knows
nothing about yet, members of the A/B test's popularity variant, and every member until a
model has been fitted. Recent buyers count, overall and per category."""

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
    #: buy_again | similar | popular
    reason: str
    category: str | None = None
    #: Distinct recent buyers, for popular items.
    buyers: int = 0
    #: The member's purchase that a "similar" item goes with (its name).
    because: str | None = None
    #: The member's re-buy cycle in days, for "buy_again" items that have one.
    cycle_days: int | None = None
    #: The fitted recommender version behind the item; None for popular items.
    model_version: int | None = None


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


@dataclass(frozen=True)
class Product:
    """An item as the shop describes it now: its ``item_info`` hook first, then the imported catalog."""

    sku: str
    name: str
    url: str | None
    image_url: str | None
    price: Decimal | None
    category: str | None
    in_stock: bool
    consumable: bool


def products(session: Session, skus: list[str], item_info: ItemInfo | None) -> dict[str, Product]:
    if not skus:
        return {}
    known = {i.sku: i for i in session.scalars(select(Item).where(Item.sku.in_(skus)))}
    hosted = item_info(skus) if item_info else {}
    out = {}
    for sku in skus:
        info = dict(hosted.get(sku) or {})
        item = known.get(sku)
        out[sku] = Product(
            sku=sku,
            name=info.get("name") or (item.name if item else sku),
            url=info.get("url") or (item.url if item else None),
            image_url=info.get("image") or (item.image_url if item else None),
            price=info.get("price") if info.get("price") is not None else (item.price if item else None),
            category=info.get("category") or (item.category if item else None),
            in_stock=bool(info.get("in_stock", item.in_stock if item else True)),
            consumable=bool(info.get("consumable", item.consumable if item else True)),
        )
    return out


def suggestion(product: Product, reason: str, **details: Any) -> Suggestion:
    return Suggestion(
        sku=product.sku,
        name=product.name,
        url=product.url,
        image_url=product.image_url,
        price=product.price,
        reason=reason,
        category=product.category,
        **details,
    )


@dataclass(frozen=True)
class Popular:
    overall: list[Suggestion]
    by_category: dict[str, list[Suggestion]]


class PopularCache:
    """Popular items in stock with their product data, overall and per category, per app and
    worker, rebuilt at most every ``REFRESH``: the same for every member, so no page view
    should pay for them."""

    def __init__(self) -> None:
        self._popular = Popular([], {})
        self._until: datetime | None = None
        self._lock = threading.Lock()

    def get(self, session: Session, *, now: datetime, item_info: ItemInfo | None) -> Popular:
        with self._lock:
            if self._until is None or not (self._until - REFRESH <= now < self._until):
                self._popular = _count(session, now=now, item_info=item_info)
                self._until = now + REFRESH
            return self._popular


#: How many popular items are kept overall and per category: enough to fill a widget after
#: leaving out what a member already owns.
CANDIDATES = 60
#: How many of the most bought items are looked at to find each category's popular ones.
POOL = 2000


def _count(session: Session, *, now: datetime, item_info: ItemInfo | None) -> Popular:
    ranked = popular(session, now=now, limit=POOL)
    found = products(session, [sku for sku, _ in ranked], item_info)
    overall: list[Suggestion] = []
    by_category: dict[str, list[Suggestion]] = {}
    for sku, buyers in ranked:
        product = found[sku]
        if not product.in_stock:
            continue
        item = suggestion(product, "popular", buyers=buyers)
        if len(overall) < CANDIDATES:
            overall.append(item)
        if product.category:
            same = by_category.setdefault(product.category, [])
            if len(same) < CANDIDATES:
                same.append(item)
    return Popular(overall, by_category)
