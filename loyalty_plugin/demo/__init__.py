"""Demo data: a shop's catalog, its customers and a year of their orders, run through the
program's own rules.

The orders carry the patterns the program's analytics look for, so a demo shows them
working on something that behaves like a shop:

* purchase rates differ widely between customers (gamma-distributed): a few buy often, most
  rarely — what RFM segments and BG/NBD models expect; a few business customers buy in bulk,
  the spend that reaches the upper tiers;
* after every order a customer may drop out for good (a beta-distributed chance of their
  own), so members lapse and churn models have something to find;
* each customer prefers a few categories (Dirichlet), items have a complement that joins the
  basket ("bought together"), and consumables are re-bought on their own cycle ("buy it
  again" every few weeks).

Everything random comes from numpy's Generator seeded with ``seed`` — demo data, never
secrets — so the same ``seed`` and ``now`` give the same orders. Coupon and referral codes
still come from ``secrets``, as in production. Enrolments, orders, redemptions, coupon uses
and refunds go through the domain functions in one transaction per simulated week, and the
release, expiry, birthday and tier jobs run between weeks: balances, lots and tiers are what
the live program would hold.
"""

from __future__ import annotations

from .catalog import CatalogItem, demo_catalog
from .customers import DEMO_PASSWORD
from .seeder import Progress, SeedReport, UserFactory, seed_demo

__all__ = ["DEMO_PASSWORD", "CatalogItem", "Progress", "SeedReport", "UserFactory", "demo_catalog", "seed_demo"]
