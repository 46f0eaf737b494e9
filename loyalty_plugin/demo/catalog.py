"""The demo shop's fixed catalog: 200 items in ten categories, what goes with what, and the
rewards on offer. Fixed, so the host shop's products and ``loyalty_items`` agree."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from ..money import CENT

ITEM_URL = "/items/{sku}"

# code, category, share of orders, variants (label, price factor) most popular first,
# products (noun, base price, re-buy cycle in days or None for durables) most popular first.
Category = tuple[str, str, float, tuple[tuple[str, str], ...], tuple[tuple[str, str, int | None], ...]]
# fmt: off
CATEGORIES: tuple[Category, ...] = (
    ("COF", "Coffee & Tea", 0.16,
     (("Classic", "1"), ("Organic", "1.25"), ("Single-origin", "1.5"), ("Decaf", "1.05")),
     (("espresso beans 1 kg", "18.90", 28), ("coffee capsules, 30", "9.90", 14),
      ("ground filter coffee 500 g", "8.90", 21), ("green tea, 50 bags", "5.50", 35),
      ("chai spice blend", "7.20", 40))),
    ("PAN", "Pantry", 0.15,
     (("Everyday", "0.85"), ("Organic", "1.3"), ("Italian", "1.15"), ("Family-size", "1.8")),
     (("durum wheat pasta 1 kg", "3.20", 14), ("tomato pasta sauce", "3.90", 14), ("olive oil 1 l", "12.50", 30),
      ("basmati rice 2 kg", "6.80", 30), ("dark chocolate bar", "2.90", 10))),
    ("CAR", "Personal Care", 0.12,
     (("Fresh", "1"), ("Sensitive", "1.1"), ("Natural", "1.3"), ("Travel-size", "0.55")),
     (("shampoo 400 ml", "6.50", 35), ("toothpaste", "3.20", 30), ("conditioner 400 ml", "6.90", 40),
      ("razor blades, 8", "14.90", 45), ("safety razor", "29.00", None))),
    ("CLN", "Home Cleaning", 0.11,
     (("Original", "1"), ("Eco", "1.2"), ("Fresh-scent", "1.05"), ("Bulk", "1.9")),
     (("laundry detergent 2 l", "12.90", 40), ("dishwasher tabs, 60", "11.50", 35), ("sponges, 10", "3.50", 30),
      ("fabric softener", "5.90", 45), ("microfibre cloths", "8.90", None))),
    ("PET", "Pet Supplies", 0.09,
     (("Adult", "1"), ("Value", "0.8"), ("Senior", "1.1"), ("Grain-free", "1.4")),
     (("cat food, 24 cans", "21.90", 21), ("dry dog food 12 kg", "49.90", 30), ("cat litter 10 l", "11.90", 21),
      ("dog treats", "5.90", 14), ("dog leash", "17.90", None))),
    ("KIT", "Kitchen", 0.09,
     (("Classic", "1"), ("Essential", "0.8"), ("Compact", "0.9"), ("Pro", "1.45")),
     (("french press", "29.00", None), ("mug set", "24.00", None), ("burr grinder", "79.00", None),
      ("chef's knife", "59.00", None), ("espresso machine", "189.00", None))),
    ("ELE", "Electronics", 0.08,
     (("Standard", "1"), ("Value", "0.7"), ("Premium", "1.3"), ("Eco", "1.1")),
     (("AA batteries, 12", "9.90", 60), ("USB-C cable 2 m", "12.90", None), ("phone charger 30 W", "24.90", None),
      ("screen cleaner", "6.90", 90), ("wireless earbuds", "59.00", None))),
    ("STA", "Stationery", 0.07,
     (("Classic", "1"), ("Recycled", "1.15"), ("Value", "0.8"), ("Premium", "1.6")),
     (("gel pens, 10", "8.50", 90), ("A5 notebook", "6.90", None), ("sticky notes", "3.90", 60),
      ("ink cartridges, 6", "5.50", 45), ("fountain pen", "34.00", None))),
    ("GAR", "Garden", 0.07,
     (("Classic", "1"), ("Organic", "1.25"), ("Starter", "0.75"), ("Professional", "1.5")),
     (("potting soil 40 l", "9.90", 60), ("tomato seeds", "2.90", None), ("plant food 1 l", "7.90", 45),
      ("watering can", "19.90", None), ("pruning shears", "24.90", None))),
    ("BAB", "Baby", 0.06,
     (("Gentle", "1"), ("Value", "0.8"), ("Eco", "1.3"), ("Premium", "1.5")),
     (("diapers, 60", "24.90", 14), ("baby wipes, 3x64", "3.90", 14), ("baby lotion", "6.50", 45),
      ("baby bottle", "9.90", None), ("teething toy", "8.50", None))),
)
# fmt: on
PRODUCT_POPULARITY = (0.34, 0.24, 0.18, 0.14, 0.10)
VARIANT_POPULARITY = (0.45, 0.25, 0.18, 0.12)
#: What goes into the same basket; the complement has the same variant (organic pasta, organic sauce).
COMPLEMENTS = {
    "espresso machine": "espresso beans 1 kg",
    "burr grinder": "espresso beans 1 kg",
    "french press": "ground filter coffee 500 g",
    "durum wheat pasta 1 kg": "tomato pasta sauce",
    "tomato pasta sauce": "durum wheat pasta 1 kg",
    "shampoo 400 ml": "conditioner 400 ml",
    "safety razor": "razor blades, 8",
    "laundry detergent 2 l": "fabric softener",
    "dry dog food 12 kg": "dog treats",
    "cat food, 24 cans": "cat litter 10 l",
    "fountain pen": "ink cartridges, 6",
    "A5 notebook": "gel pens, 10",
    "tomato seeds": "potting soil 40 l",
    "phone charger 30 W": "USB-C cable 2 m",
    "diapers, 60": "baby wipes, 3x64",
}
REWARDS: tuple[dict[str, Any], ...] = (
    {"name": "5.00 off your order", "kind": "fixed_amount", "cost_points": 500, "amount": "5.00"},
    {
        "name": "10% off, up to 25.00",
        "kind": "percent",
        "cost_points": 1500,
        "percent": "10",
        "max_discount": "25.00",
        "min_order_total": "30.00",
    },
    {"name": "Free shipping", "kind": "free_shipping", "cost_points": 300},
    {
        "name": "Gold members: 20.00 off",
        "kind": "fixed_amount",
        "cost_points": 1500,
        "amount": "20.00",
        "min_tier": "gold",
        "min_order_total": "60.00",
    },
    {
        "name": "A free Classic french press, while stocks last",
        "kind": "free_item",
        "cost_points": 1200,
        "sku": "KIT-001",
        "stock": 25,
        "per_member_limit": 1,
    },
)


@dataclass(frozen=True)
class CatalogItem:
    sku: str
    name: str
    category: str
    price: Decimal
    #: Days between re-buys for a consumable, None for a durable.
    cycle_days: int | None
    #: Share of its category's sales.
    popularity: float
    #: The item bought with this one ("espresso machine" -> "espresso beans"), if any.
    goes_with: str | None

    @property
    def consumable(self) -> bool:
        return self.cycle_days is not None


def _price(base: str, factor: str) -> Decimal:
    """Shop prices end in .99 (or are 0.99 at least)."""
    whole = (Decimal(base) * Decimal(factor)).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return max(whole - CENT, Decimal("0.99"))


def demo_catalog() -> list[CatalogItem]:
    """The demo shop's 200 items; fixed, so the shop's products and ``loyalty_items`` agree."""
    items = []
    for code, category, _share, variants, products in CATEGORIES:
        nouns = [noun for noun, _base, _cycle in products]
        for p, (noun, base, cycle) in enumerate(products):
            for v, (label, factor) in enumerate(variants):
                partner = COMPLEMENTS.get(noun)
                goes_with = f"{code}-{nouns.index(partner) * 4 + v + 1:03d}" if partner in nouns else None
                items.append(
                    CatalogItem(
                        sku=f"{code}-{p * 4 + v + 1:03d}",
                        name=f"{label} {noun}",
                        category=category,
                        price=_price(base, factor),
                        cycle_days=cycle,
                        popularity=PRODUCT_POPULARITY[p] * VARIANT_POPULARITY[v],
                        goes_with=goes_with,
                    )
                )
    return items
