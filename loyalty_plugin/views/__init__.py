"""HTTP: parse, call the domain, render. No business rule lives here."""

from __future__ import annotations

from importlib.resources import files

from flask import Flask

from ..config import Settings
from ..i18n import init_app as init_i18n
from ..security import install_rate_limits
from .tracking import loyalty_click_url, tracking
from .widgets import loyalty_badge, loyalty_recommendations, recommendation_reason


def register_views(app: Flask, settings: Settings) -> None:
    # Imported for their routes, which join the admin and portal blueprints.
    from . import admin_insights, admin_members, admin_ops, admin_rewards, portal_privacy, portal_rewards  # noqa: F401
    from .admin import admin
    from .api import api
    from .portal import portal

    init_i18n(app)
    portal.template_folder = str(files("loyalty_plugin.templates"))
    portal.static_folder = str(files("loyalty_plugin.static") / "loyalty")
    app.register_blueprint(portal, url_prefix=settings.url_prefix)
    app.register_blueprint(api, url_prefix=f"{settings.url_prefix}/api/v1")
    app.register_blueprint(admin, url_prefix=f"{settings.url_prefix}/admin")
    app.register_blueprint(tracking, url_prefix=f"{settings.url_prefix}/r")
    for helper in (loyalty_badge, loyalty_recommendations, loyalty_click_url, recommendation_reason):
        app.add_template_global(helper)
    app.extensions["loyalty"].limiter = install_rate_limits(app, settings)
    _exempt_webhooks_from_csrf(app)
    app.before_request(lambda: _exempt_webhooks_from_csrf(app))


def _exempt_webhooks_from_csrf(app: Flask) -> None:
    """Webhooks are signed, not cookie-authenticated: a host's CSRFProtect must let them in.

    Run now and before each request, so it works whether the host sets up CSRFProtect
    before or after the plugin (ours runs before CSRFProtect's check in the second case).
    """
    csrf = app.extensions.get("csrf")
    if csrf is not None:
        from .api import order_webhook, refund_webhook

        csrf.exempt(order_webhook)
        csrf.exempt(refund_webhook)
