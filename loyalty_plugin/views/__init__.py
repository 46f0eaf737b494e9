"""HTTP: parse, call the domain, render. No business rule lives here."""

from __future__ import annotations

from importlib.resources import files

from flask import Flask

from ..config import Settings


def register_views(app: Flask, settings: Settings) -> None:
    from .api import api
    from .portal import portal

    portal.template_folder = str(files("loyalty_plugin.templates"))
    portal.static_folder = str(files("loyalty_plugin.static") / "loyalty")
    app.register_blueprint(portal, url_prefix=settings.url_prefix)
    app.register_blueprint(api, url_prefix=f"{settings.url_prefix}/api/v1")
    csrf = app.extensions.get("csrf")
    if csrf is not None:
        from .api import order_webhook, refund_webhook

        csrf.exempt(order_webhook)
        csrf.exempt(refund_webhook)
