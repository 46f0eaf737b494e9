"""The plugin's own translations: a Flask-Babel domain ("loyalty") apart from the shop's.

The locale is the host's: if the shop set up Flask-Babel, its locale selector decides; if not,
the plugin sets Flask-Babel up with the visitor's ``Accept-Language``. Either way the plugin's
pages look up their strings in ``loyalty_plugin/translations`` only, so a shop's own catalog
never shadows them and the plugin never adds strings to the shop's.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from importlib.resources import files
from typing import Any

from babel import Locale
from babel.dates import format_date
from babel.numbers import format_currency, format_decimal
from flask import Flask, current_app, g, has_request_context, request
from flask_babel import Babel, Domain, get_locale

from .errors import LoyaltyError

#: Languages the plugin's pages are written in; the first is the fallback.
LANGUAGES = ("en", "zh")

ENGLISH = Locale.parse(LANGUAGES[0])

domain = Domain(translation_directories=str(files("loyalty_plugin") / "translations"), domain="loyalty")
gettext = domain.gettext
ngettext = domain.ngettext


def select_locale() -> str:
    if not has_request_context():
        return LANGUAGES[0]
    return request.accept_languages.best_match(LANGUAGES, default=LANGUAGES[0])


def init_app(app: Flask) -> None:
    if "babel" not in app.extensions:
        Babel(app, locale_selector=select_locale)


def locale() -> Locale:
    """The locale the plugin's pages are in: the host's, unless the plugin has no catalog for
    it; then English, so that numbers and dates match the words around them."""
    if not has_request_context():
        return ENGLISH
    if "loyalty_locale" not in g:  # asked several times per page
        chosen = get_locale()
        g.loyalty_locale = chosen if chosen is not None and chosen.language in LANGUAGES else ENGLISH
    return g.loyalty_locale


def error_message(exc: LoyaltyError) -> str:
    """The error in the visitor's language, numbers and money formatted for it (``exc.message``
    stays English for logs and programs)."""
    if not exc.params:
        return gettext(exc.template)
    currency = current_app.extensions["loyalty"].settings.currency
    shown = {
        key: money(value, currency)
        if isinstance(value, Decimal)
        else points(value)
        if isinstance(value, int) and not isinstance(value, bool)
        else value
        for key, value in exc.params.items()
    }
    return gettext(exc.template, **shown)


def language() -> str:
    """The BCP 47 tag for ``lang``: zh-Hans for Simplified Chinese."""
    return "zh-Hans" if locale().language == "zh" else locale().language


def points(value: int) -> str:
    return format_decimal(value, locale=locale())


def delta(value: int) -> str:
    """A change of points with its sign: +120, -500."""
    return ("+" if value > 0 else "-" if value < 0 else "") + format_decimal(abs(value), locale=locale())


def money(value: Decimal | int, currency: str) -> str:
    return format_currency(value, currency, locale=locale())


def day(value: date | datetime | None) -> str:
    if value is None:
        return ""
    return format_date(value.date() if isinstance(value, datetime) else value, "medium", locale=locale())


def template_helpers(currency: str) -> dict[str, Any]:
    """What the plugin's templates call: ``_`` and friends from this domain, and formatters."""
    return {
        "_": gettext,
        "gettext": gettext,
        "ngettext": ngettext,
        "fmt_points": points,
        "fmt_delta": delta,
        "fmt_money": lambda value: money(value, currency),
        "fmt_day": day,
        "html_lang": language,
    }
