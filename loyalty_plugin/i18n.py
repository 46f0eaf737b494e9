"""The plugin's own translations: a Flask-Babel domain ("loyalty") apart from the shop's.

The locale is the host's: if the shop set up Flask-Babel, its locale selector decides; if not,
the plugin sets Flask-Babel up with the visitor's ``Accept-Language``. Either way the plugin's
pages look up their strings in ``loyalty_plugin/translations`` only, so a shop's own catalog
never shadows them and the plugin never adds strings to the shop's.
"""

from __future__ import annotations

import functools
from datetime import date, datetime
from decimal import Decimal
from importlib.resources import files
from typing import Any

from babel import Locale
from babel.dates import format_date
from babel.numbers import format_currency, format_decimal
from babel.support import NullTranslations
from flask import Flask, current_app, g, has_request_context, request
from flask_babel import Babel, Domain, get_locale
from werkzeug.datastructures import LanguageAccept
from werkzeug.http import parse_accept_header

from .errors import LoyaltyError

#: Languages the plugin's pages are written in; the first is the fallback.
LANGUAGES = ("en", "zh")

ENGLISH = Locale.parse(LANGUAGES[0])

domain = Domain(translation_directories=str(files("loyalty_plugin") / "translations"), domain="loyalty")


def translations() -> NullTranslations:
    """The plugin's catalog in the page's language, found once per request as ``locale`` is:
    Flask-Babel looks it up again for each string, and a page has dozens."""
    if not has_request_context():
        return domain.get_translations()
    found = g.get("loyalty_translations")
    if found is None:
        found = g.loyalty_translations = domain.get_translations()
    return found


def gettext(string: str, **variables: Any) -> str:
    """``Domain.gettext`` of the plugin's domain: ``string`` translated, then ``% variables``."""
    text = translations().gettext(string)
    return text % variables if variables else text


def ngettext(singular: str, plural: str, num: int, **variables: Any) -> str:
    """``Domain.ngettext`` of the plugin's domain: ``num`` is also ``%(num)s`` in the text."""
    variables.setdefault("num", num)
    return translations().ngettext(singular, plural, num) % variables


def select_locale() -> Locale:
    """Flask-Babel's locale selector when the shop has none: the visitor's ``Accept-Language``
    (a ``Locale``, which Flask-Babel takes as it is instead of parsing a name on every page)."""
    if not has_request_context():
        return ENGLISH
    return _best_locale(request.headers.get("Accept-Language", ""))


@functools.lru_cache(maxsize=256)
def _best_locale(accept_language: str) -> Locale:
    """The locale of ``LANGUAGES`` an ``Accept-Language`` header prefers. Browsers send a
    handful of distinct headers: each is parsed once, not on every page."""
    best = parse_accept_header(accept_language, LanguageAccept).best_match(LANGUAGES, default=LANGUAGES[0])
    return Locale.parse(best)


def init_app(app: Flask) -> None:
    if "babel" not in app.extensions:
        Babel(app, locale_selector=select_locale)


def locale() -> Locale:
    """The locale the plugin's pages are in: the host's, unless the plugin has no catalog for
    it; then English, so that numbers and dates match the words around them."""
    if not has_request_context():
        return ENGLISH
    chosen = g.get("loyalty_locale")  # asked dozens of times per page
    if chosen is None:
        host = get_locale()
        chosen = g.loyalty_locale = host if host is not None and host.language in LANGUAGES else ENGLISH
    return chosen


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
    code = locale().language
    return "zh-Hans" if code == "zh" else code


def points(value: int) -> str:
    return _number(value, locale())


def delta(value: int) -> str:
    """A change of points with its sign: +120, -500."""
    return ("+" if value > 0 else "-" if value < 0 else "") + _number(abs(value), locale())


def money(value: Decimal | int, currency: str) -> str:
    return _money(value, currency, locale())


def day(value: date | datetime | None) -> str:
    if value is None:
        return ""
    return _day(value.date() if isinstance(value, datetime) else value, locale())


# Formatting depends on the value and the locale only, and pages show the same prices, point
# counts and days to member after member: Babel works each out once.


@functools.lru_cache(maxsize=4096)
def _number(value: int | Decimal, where: Locale) -> str:
    return format_decimal(value, locale=where)


@functools.lru_cache(maxsize=4096)
def _money(value: Decimal | int, currency: str, where: Locale) -> str:
    return format_currency(value, currency, locale=where)


@functools.lru_cache(maxsize=4096)
def _day(value: date, where: Locale) -> str:
    return format_date(value, "medium", locale=where)


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
