"""The exceptions the plugin raises at its callers.

Every message is written for the customer or admin who will read it; ``code`` is the
stable identifier a program (or the JSON API) branches on.
"""

from __future__ import annotations


class LoyaltyError(Exception):
    """Base of every error the plugin raises on purpose."""

    code = "loyalty_error"
    http_status = 400

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def to_dict(self) -> dict[str, dict[str, str]]:
        return {"error": {"code": self.code, "message": self.message}}


class NotEnrolled(LoyaltyError):
    code = "not_enrolled"
    http_status = 404

    def __init__(self, message: str = "You are not a member of the loyalty program yet.") -> None:
        super().__init__(message)


class AlreadyEnrolled(LoyaltyError):
    code = "already_enrolled"
    http_status = 409

    def __init__(self, message: str = "You are already a member of the loyalty program.") -> None:
        super().__init__(message)


class InsufficientPoints(LoyaltyError):
    code = "insufficient_points"
    http_status = 409

    def __init__(self, needed: int, available: int) -> None:
        super().__init__(f"This needs {needed:,} points and you have {max(available, 0):,} available.")
        self.needed = needed
        self.available = available


class RewardUnavailable(LoyaltyError):
    """The reward cannot be redeemed now: retired, out of stock, tier or per-member limit."""

    code = "reward_unavailable"
    http_status = 409

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message, code=reason)
        self.reason = reason


class InvalidCoupon(LoyaltyError):
    """A coupon that cannot be applied; ``reason`` says why in a machine-readable way."""

    code = "invalid_coupon"
    http_status = 409

    MESSAGES = {
        "not_found": "This coupon code is not valid.",
        "used": "This coupon has already been used.",
        "expired": "This coupon has expired.",
        "void": "This coupon is no longer valid.",
        "min_order": "This coupon needs a larger order.",
    }

    def __init__(self, reason: str, message: str | None = None) -> None:
        super().__init__(message or self.MESSAGES[reason], code=f"coupon_{reason}")
        self.reason = reason


class ConflictingDuplicate(LoyaltyError):
    """The same id arrived again with different content: one of the two is wrong."""

    code = "conflicting_duplicate"
    http_status = 409


class BadInput(LoyaltyError):
    """Input that can never be accepted; ``field`` names what to correct."""

    code = "bad_input"
    http_status = 422

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class ConfigError(LoyaltyError):
    """A ``LOYALTY_*`` setting is missing or wrong; raised at start-up."""

    code = "config_error"
    http_status = 500
