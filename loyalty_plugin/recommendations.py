"""What the "recommended for you" slot shows one member now.

The member's A/B variant decides: the fitted model's picks (buy it again, bought together
with) for ``model``, popular items for ``popular``, nothing for the holdout. Popular items,
first in the categories the member buys from, fill what the model leaves open and serve
members it does not know yet. Everything shown is in stock by the shop's ``item_info`` hook or
catalog, and nothing the member already owns is shown unless it is a consumable they re-buy.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from .config import Settings
from .experiments import HOLDOUT, variant_of
from .models import Order, OrderLine
from .popularity import ItemInfo, PopularCache, Suggestion, products, suggestion
from .recommender_store import ModelHolder


@dataclass(frozen=True)
class Shown:
    variant: str
    #: The fitted version behind the model's picks; None when none was used.
    model_version: int | None
    items: list[Suggestion]


def _purchased(session: Session, user_id: str) -> tuple[set[str], list[str]]:
    """The member's items and their categories, most bought from first."""
    rows = session.execute(
        select(OrderLine.sku, OrderLine.category)
        .join(Order, Order.id == OrderLine.order_pk)
        .where(Order.user_id == user_id)
    ).all()
    categories = Counter(category for _, category in rows if category)
    return {sku for sku, _ in rows}, [category for category, _ in categories.most_common()]


def recommend(
    session: Session,
    user_id: str,
    *,
    limit: int,
    now: datetime,
    settings: Settings,
    item_info: ItemInfo | None,
    popular: PopularCache,
    models: ModelHolder,
) -> Shown:
    variant = variant_of(user_id, settings)
    if variant == HOLDOUT:
        return Shown(variant, None, [])
    owned, categories = _purchased(session, user_id)
    items: list[Suggestion] = []
    version = None
    if variant == "model":
        version, model = models.current(session, now)
        if model is not None and model.known(user_id):
            picks = [p for p in model.recommend(user_id, limit * 3, now=now) if p.reason != "popular"]
            skus = {p.item for p in picks} | {p.because for p in picks if p.because}
            found = products(session, sorted(skus), item_info)
            for pick in picks:
                product = found[pick.item]
                if not product.in_stock or (pick.item in owned and not product.consumable):
                    continue
                items.append(
                    suggestion(
                        product,
                        pick.reason,
                        because=found[pick.because].name if pick.because else None,
                        cycle_days=round(pick.cycle_days) if pick.cycle_days else None,
                        model_version=version,
                    )
                )
                if len(items) == limit:
                    break
    if len(items) < limit:
        ranked = popular.get(session, now=now, item_info=item_info)
        taken = {item.sku for item in items} | owned
        for candidate in [*(c for cat in categories for c in ranked.by_category.get(cat, [])), *ranked.overall]:
            if candidate.sku not in taken:
                items.append(candidate)
                taken.add(candidate.sku)
                if len(items) == limit:
                    break
    return Shown(variant, version if any(i.model_version for i in items) else None, items)
