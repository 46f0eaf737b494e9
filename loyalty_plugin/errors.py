"""The exceptions the plugin raises at its callers.

Every message is written for the customer or admin who will read it; ``code`` is the
stable identifier a program (or the JSON API) branches on. A message is an English template
with named ``params``, so the member pages can show it in the member's language
(``i18n.error_message``) while ``message`` stays English for logs, the CLI and programs.
"""

from __future__ import annotations

from typing import Any


def N_(message: str) -> str:
    """Marks a message for translation where it is defined; it is translated where shown."""
    return message


def _english(value: Any) -> Any:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else value


class LoyaltyError(Exception):
    """Base of every error the plugin raises on purpose."""

    code = "loyalty_error"
    http_status = 400

    def __init__(self, message: str, *, code: str | None = None, params: dict[str, Any] | None = None) -> None:
        self.template = message
        self.params = params or {}
        self.message = message % {k: _english(v) for k, v in self.params.items()} if self.params else message
        super().__init__(self.message)
        if code is not None:
            self.code = code

    def to_dict(self) -> dict[str, dict[str, str]]:
        return {"error": {"code": self.code, "message": self.message}}


class NotEnrolled(LoyaltyError):
    code = "not_enrolled"
    http_status = 404

    def __init__(self, message: str = N_("You are not a member of the loyalty program yet.")) -> None:
        super().__init__(message)


class LoginRequired(LoyaltyError):
    code = "login_required"
    http_status = 401

    def __init__(self, message: str = N_("Please log in first.")) -> None:
        super().__init__(message)


class CsrfFailed(LoyaltyError):
    """A cookie-authenticated write without the page's CSRF token: refused, nothing changed."""

    code = "csrf_failed"
    http_status = 400

    def __init__(
        self, message: str = N_("This request is missing its security token. Reload the page and try again.")
    ) -> None:
        super().__init__(message)


class AlreadyEnrolled(LoyaltyError):
    code = "already_enrolled"
    http_status = 409

    def __init__(self, message: str = N_("You are already a member of the loyalty program.")) -> None:
        super().__init__(message)


class InsufficientPoints(LoyaltyError):
    code = "insufficient_points"
    http_status = 409

    def __init__(self, needed: int, available: int) -> None:
        super().__init__(
            N_("This needs %(needed)s points and you have %(available)s available."),
            params={"needed": needed, "available": max(available, 0)},
        )
        self.needed = needed
        self.available = available


class RewardUnavailable(LoyaltyError):
    """The reward cannot be redeemed now: retired, out of stock, tier or per-member limit."""

    code = "reward_unavailable"
    http_status = 409

    def __init__(self, message: str, *, reason: str, params: dict[str, Any] | None = None) -> None:
        super().__init__(message, code=reason, params=params)
        self.reason = reason


class InvalidCoupon(LoyaltyError):
    """A coupon that cannot be applied; ``reason`` says why in a machine-readable way."""

    code = "invalid_coupon"
    http_status = 409

    MESSAGES = {
        "not_found": N_("This coupon code is not valid."),
        "used": N_("This coupon has already been used."),
        "expired": N_("This coupon has expired."),
        "void": N_("This coupon is no longer valid."),
        "min_order": N_("This coupon needs a larger order."),
    }

    def __init__(self, reason: str, message: str | None = None, *, params: dict[str, Any] | None = None) -> None:
        super().__init__(message or self.MESSAGES[reason], code=f"coupon_{reason}", params=params)
        self.reason = reason


class ConflictingDuplicate(LoyaltyError):
    """The same id arrived again with different content: one of the two is wrong."""

    code = "conflicting_duplicate"
    http_status = 409


class BadInput(LoyaltyError):
    """Input that can never be accepted; ``field`` names what to correct."""

    code = "bad_input"
    http_status = 422

    def __init__(self, message: str, *, field: str | None = None, params: dict[str, Any] | None = None) -> None:
        super().__init__(message, params=params)
        self.field = field


class ConfigError(LoyaltyError):
    """A ``LOYALTY_*`` setting is missing or wrong; raised at start-up."""

    code = "config_error"
    http_status = 500
