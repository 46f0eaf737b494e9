"""Protection of the plugin's routes: security headers and rate limits (Flask-Limiter).

The limiter is the plugin's own instance per app, keyed by member (or address when nobody is
logged in) and prefixed ``loyalty``, so it neither counts the shop's traffic nor shares
counters with a limiter the shop runs itself. Its storage is memory by default; give
``LOYALTY_RATE_LIMIT_STORAGE_URI`` a ``redis://`` address when several worker processes
must share the counts.
"""

from __future__ import annotations

import functools

from flask import Flask, Response, current_app, request
from flask_limiter import Limiter
from flask_login import current_user
from flask_wtf.csrf import validate_csrf
from wtforms import ValidationError

from .config import Settings
from .i18n import gettext

#: Endpoints whose calls spend a rate-limit token, with the methods that do: guessing coupon
#: codes and hammering redemption are what the limits are for.
LIMITED: dict[str, tuple[str, list[str] | None]] = {
    "loyalty.coupon_check": ("coupons", None),
    "loyalty_api.check_coupon": ("coupons", None),
    "loyalty.redeem": ("redeem", ["POST"]),
    "loyalty_api.redeem": ("redeem", None),
}


def _who() -> str:
    if current_user and current_user.is_authenticated:
        return f"member:{current_user.get_id()}"
    return f"address:{request.remote_addr}"


def _too_many() -> str:
    return gettext("Too many attempts. Please wait a minute and try again.")


def install_rate_limits(app: Flask, settings: Settings) -> Limiter:
    limiter = Limiter(
        _who,
        app=app,
        storage_uri=settings.rate_limit_storage_uri,
        key_prefix="loyalty",
        headers_enabled=True,
    )
    # Only the views below are limited, each by its own decorator; Flask-Limiter's app-wide
    # check would cost every page of the shop a lookup (~0.2 ms) for limits it does not have.
    app.before_request_funcs[None].remove(limiter._check_request_limit)
    rates = {"coupons": settings.rate_limit_coupons, "redeem": settings.rate_limit_redeem}
    for endpoint, (kind, methods) in LIMITED.items():
        limit = limiter.limit(rates[kind], scope=f"loyalty-{kind}", methods=methods, error_message=_too_many)
        app.view_functions[endpoint] = limit(app.view_functions[endpoint])
    return limiter


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def csrf_ok() -> bool:
    """Whether a state-changing request carries the session's CSRF token (form field or
    ``X-CSRFToken`` header). Checked for whole blueprints, so a route added later is covered
    without anyone remembering to."""
    if request.method in SAFE_METHODS or not current_app.config.get("WTF_CSRF_ENABLED", True):
        return True
    token = request.form.get("csrf_token") or request.headers.get("X-CSRFToken") or request.headers.get("X-CSRF-Token")
    try:
        validate_csrf(token)
    except ValidationError:
        return False
    return True


def add_headers(response: Response, settings: Settings) -> Response:
    """Headers for pages that show one member's data: not framed, not cached, not sniffed;
    each only where the shop has not set its own."""
    headers = response.headers
    present = {name.lower() for name, _ in headers.items()}  # one pass, not one per header
    for lowered, name, value in _headers(settings.content_security_policy):
        if lowered not in present:
            headers.add(name, value)
    return response


@functools.cache
def _headers(policy: str | None) -> tuple[tuple[str, str, str], ...]:
    """(lower-cased name, name, value) of each header, for ``add_headers``."""
    fixed = (
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "same-origin"),
        ("X-Frame-Options", "DENY"),
        ("Cache-Control", "no-store"),
    )
    chosen = (*fixed, ("Content-Security-Policy", policy)) if policy else fixed
    return tuple((name.lower(), name, value) for name, value in chosen)
