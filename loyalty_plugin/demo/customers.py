"""The demo shop's customers: who they are, the names they are drawn from, and the
parameters of how they save and spend points."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

#: Every seeded customer logs in with this password: the accounts are public demo data.
DEMO_PASSWORD = "demo-customer"  # noqa: S105  # nosec B105
# fmt: off
FIRST_NAMES = ("Ada", "Ben", "Chloe", "Daniel", "Elena", "Farid", "Grace", "Hugo", "Ines", "Jonas", "Kira", "Liam",
               "Maya", "Noah", "Olga", "Pavel", "Quinn", "Rosa", "Samir", "Tara", "Umar", "Vera", "Wen", "Zoe")
LAST_NAMES = ("Adams", "Berg", "Costa", "Dubois", "Eriksen", "Fischer", "Garcia", "Haddad", "Ivanova", "Jensen",
              "Kowalski", "Lopez", "Moreau", "Nakamura", "Okafor", "Petrov", "Rossi", "Schmidt", "Tanaka", "Novak")
# fmt: on
#: Most members save for the cheapest rewards; some hold out for the big ones.
SAVING_TARGETS = (300, 500, 500, 500, 1200, 1500)


@dataclass
class Customer:
    user_id: str
    email: str
    name: str
    member: bool
    joined_at: datetime
    birthday: date | None
    marketing_opt_in: bool
    #: Points they save up before spending them, and their chance of doing so at an order once there.
    saving_for: int
    redeem_chance: float
    referrer: str | None = None
    bought: set[str] = field(default_factory=set)
