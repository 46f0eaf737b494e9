"""loyalty_plugin: a membership program for Flask shops.

The public API is what this module exports; everything else may change between releases.
"""

from __future__ import annotations

from .alembic_filter import include_name, include_object
from .errors import (
    AlreadyEnrolled,
    BadInput,
    ConfigError,
    ConflictingDuplicate,
    InsufficientPoints,
    InvalidCoupon,
    LoyaltyError,
    NotEnrolled,
    RewardUnavailable,
)
from .extension import Loyalty
from .ledger import Balance
from .models import Coupon, Member, Reward
from .orders import OrderReceipt, RefundReceipt
from .popularity import Suggestion
from .rewards import Discount
from .signals import (
    churn_alert,
    coupon_issued,
    coupon_used,
    member_enrolled,
    points_changed,
    points_expiring,
    tier_changed,
)
from .webhooks import sign as sign_webhook

__all__ = [
    "AlreadyEnrolled",
    "BadInput",
    "Balance",
    "ConfigError",
    "ConflictingDuplicate",
    "Coupon",
    "Discount",
    "InsufficientPoints",
    "InvalidCoupon",
    "Loyalty",
    "LoyaltyError",
    "Member",
    "NotEnrolled",
    "OrderReceipt",
    "RefundReceipt",
    "Reward",
    "RewardUnavailable",
    "Suggestion",
    "churn_alert",
    "coupon_issued",
    "coupon_used",
    "include_name",
    "include_object",
    "member_enrolled",
    "points_changed",
    "points_expiring",
    "sign_webhook",
    "tier_changed",
]
