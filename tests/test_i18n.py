"""The plugin's translations: the zh catalog covers every string in the code and templates,
the compiled .mo matches it, and pages, forms and the JSON API follow the visitor's (or the
host's) locale, with numbers, money and dates formatted for it.

Expected Chinese text is read from the committed .po, never copied here by hand.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import cache
from gettext import GNUTranslations
from pathlib import Path
from typing import Any

import flask_babel
import pytest
from babel.dates import format_date
from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal
from flask import Flask, render_template_string
from flask_babel import Babel
from flask_login import LoginManager
from markupsafe import escape

import loyalty_plugin
from loyalty_plugin import Loyalty
from loyalty_plugin.models import Base

from .conftest import START, Clock, User, login, make_app

ROOT = Path(__file__).resolve().parents[1]
TRANSLATIONS = Path(loyalty_plugin.__file__).resolve().parent / "translations"
ZH_PO = TRANSLATIONS / "zh" / "LC_MESSAGES" / "loyalty.po"
ZH_MO = TRANSLATIONS / "zh" / "LC_MESSAGES" / "loyalty.mo"
#: The keywords `make translations` extracts with, on top of Babel's defaults (_, gettext, ngettext…).
KEYWORDS = {**DEFAULT_KEYWORDS, "N_": None, "_l": None, "lazy_gettext": None, "ngettext": (1, 2)}
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")
ZH_HEADERS = {"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"}


@cache
def zh_catalog() -> Catalog:
    with ZH_PO.open("rb") as f:
        return read_po(f)


def extracted_messages() -> dict[str, tuple[str, ...]]:
    """Every msgid in the code and templates as they are now, as `make translations` finds them."""
    with (ROOT / "babel.cfg").open() as f:
        method_map, options_map = parse_mapping_cfg(f, "babel.cfg")
    found: dict[str, tuple[str, ...]] = {}
    for _filename, _lineno, message, _comments, _context in extract_from_dir(
        ROOT, method_map, options_map, keywords=KEYWORDS
    ):
        ids = message if isinstance(message, tuple) else (message,)
        if ids[0]:
            found[ids[0]] = tuple(i for i in ids if i)
    return found


def shown(path: Path) -> Path:
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path


def placeholders(text: str) -> set[str]:
    return set(PLACEHOLDER.findall(text))


def untranslated(msgid: str, ids: tuple[str, ...]) -> str | None:
    """Why the zh catalog does not translate ``msgid`` properly, or None when it does."""
    message = zh_catalog().get(msgid)
    if message is None:
        return "not in the catalog"
    if message.fuzzy:
        return "fuzzy"
    strings = message.string if isinstance(message.string, tuple) else (message.string,)
    if not strings or not all(strings):
        return "empty"
    wanted = set().union(*(placeholders(i) for i in ids))
    for text in strings:
        if placeholders(text) != wanted:
            return f"placeholders {sorted(placeholders(text))} instead of {sorted(wanted)}"
        if wanted:
            try:
                text % dict.fromkeys(wanted, "x")
            except (ValueError, TypeError, KeyError) as exc:
                return f"not a valid format string ({exc})"
    return None


def test_every_string_in_the_code_and_templates_has_a_chinese_translation():
    found = extracted_messages()
    assert len(found) > 100, "the extraction found almost nothing: is babel.cfg right?"
    problems = {msgid: why for msgid, ids in sorted(found.items()) if (why := untranslated(msgid, ids))}
    assert not problems, (
        f"{len(problems)} message(s) lack a proper zh translation. Run `make translations`, then translate "
        f"them in {shown(ZH_PO)} (and run `make translations` again to compile):\n"
        + "\n".join(f"  {msgid!r}: {why}" for msgid, why in problems.items())
    )


def test_the_zh_catalog_is_for_one_plural_form_and_has_no_leftovers():
    catalog = zh_catalog()
    assert catalog.num_plurals == 1
    assert not catalog.fuzzy
    assert not catalog.obsolete, f"obsolete entries: {list(catalog.obsolete)}"
    stale = sorted(m.id if isinstance(m.id, str) else m.id[0] for m in catalog if m.id and m.fuzzy)
    assert not stale, f"fuzzy entries: {stale}"


def test_the_compiled_catalog_is_up_to_date_with_the_po():
    compiled = io.BytesIO()
    write_mo(compiled, zh_catalog())
    compiled.seek(0)
    expected = GNUTranslations(compiled)._catalog
    with ZH_MO.open("rb") as f:
        committed = GNUTranslations(f)._catalog
    missing = sorted(map(str, expected.keys() - committed.keys()))
    extra = sorted(map(str, committed.keys() - expected.keys()))
    changed = sorted(str(k) for k in expected.keys() & committed.keys() if k != "" and expected[k] != committed[k])
    assert not (missing or extra or changed), (
        f"{shown(ZH_MO)} is out of date with the .po (not compiled yet: {missing}; dropped from the .po: {extra}; "
        f"changed: {changed}): run `make translations`"
    )
    assert committed == expected, "the .mo differs from the .po: run `make translations`"


# Pages ---------------------------------------------------------------------------------------


@dataclass
class Lang:
    """What a visitor in one language should read: the plugin's strings and the locale's formats."""

    locale: str
    headers: dict[str, str]
    html_lang: str

    def t(self, msgid: str, **params: Any) -> str:
        text = msgid
        if self.locale == "zh":
            message = zh_catalog().get(msgid)
            assert message is not None and message.string, f"{msgid!r} is not translated"
            text = message.string
        return text % params if params else text

    def n(self, singular: str, plural: str, num: int) -> str:
        if self.locale == "zh":
            message = zh_catalog().get(singular)
            assert message is not None and message.string[0], f"{singular!r} is not translated"
            return message.string[0] % {"num": num}
        return (singular if num == 1 else plural) % {"num": num}

    def day(self, value: date) -> str:
        return format_date(value, "medium", locale=self.locale)

    def money(self, value: Decimal | str) -> str:
        return format_currency(Decimal(value), "USD", locale=self.locale)

    def num(self, value: int) -> str:
        return format_decimal(value, locale=self.locale)


ZH = Lang("zh", ZH_HEADERS, "zh-Hans")
EN = Lang("en", {"Accept-Language": "en-US,en;q=0.8"}, "en")
NO_HEADER = Lang("en", {}, "en")
LANGS = pytest.mark.parametrize("lang", [ZH, EN, NO_HEADER], ids=["zh-CN", "en-US", "no-header"])


@dataclass
class Shop:
    """One member, u1, with 1,234 points, pending points, a coupon and a referred friend."""

    coupon_valid_until: date
    silver_threshold: Decimal


def stock(app: Flask) -> Shop:
    with app.app_context():
        loyalty = Loyalty()
        member = loyalty.enroll("u1")
        loyalty.award("u1", 1234, "thanks", key="gift")
        five_off = loyalty.create_reward(name="Five off", kind="fixed_amount", cost_points=100, amount="5.00")
        coupon = loyalty.redeem("u1", five_off.id)
        loyalty.record_order("o1", "u1", "250.00")
        loyalty.enroll("u2", referral_code=member.referral_code)
        assert loyalty.balance("u1").available == 1234
        loyalty.state().store.commit()
        silver = loyalty.state().settings.tier("silver")
        return Shop(coupon_valid_until=coupon.valid_until.date(), silver_threshold=silver.threshold)


@pytest.fixture
def shop(app: Flask) -> Shop:
    return stock(app)


#: Per page, what it must say: built from the msgids and the member's figures for each language.
PAGES: dict[str, tuple[str, Callable[[Lang, Shop], list[str]]]] = {
    "dashboard": (
        "/loyalty/",
        lambda lang, shop: [
            lang.t("Your membership"),
            lang.t("Available points"),
            lang.t("Pending points"),
            f'data-testid="points-available">{lang.num(1234)}<',
            f'data-testid="points-pending">{lang.num(250)}<',
            lang.t("member since %(date)s", date=lang.day(START.date())),
            lang.t("You have spent %(amount)s in the last 12 months.", amount=lang.money("250.00")),
            lang.n("You have %(num)s coupon ready to use.", "You have %(num)s coupons ready to use.", 1),
            lang.t("Reward redeemed"),
        ],
    ),
    "points": (
        "/loyalty/points",
        lambda lang, shop: [
            lang.t("Points history"),
            lang.t("What happened"),
            lang.t("Points for an order"),
            lang.t("Welcome bonus"),
            f'<td class="num">{lang.num(1234)}</td>',
            f"<td>{lang.day(START.date())}</td>",
            lang.t("Page %(page)s of %(pages)s", page=1, pages=1),
        ],
    ),
    "rewards": (
        "/loyalty/rewards",
        lambda lang, shop: [
            lang.t("Rewards"),
            lang.t("You have %(points)s points to spend.", points=lang.num(1234)),
            lang.t("%(amount)s off", amount=lang.money("5.00")),
            lang.t("%(points)s points", points=lang.num(100)),
            lang.t("Redeem"),
        ],
    ),
    "coupons": (
        "/loyalty/coupons",
        lambda lang, shop: [
            lang.t("My coupons"),
            lang.t("Copy coupon code"),
            lang.t("Valid until %(date)s. One use, for your account only.", date=lang.day(shop.coupon_valid_until)),
            lang.t("%(amount)s off", amount=lang.money("5.00")),
            lang.t("Check what a coupon takes off an order"),
        ],
    ),
    "tiers": (
        "/loyalty/tiers",
        lambda lang, shop: [
            lang.t("Tiers"),
            lang.t("Member discount"),
            lang.t(
                "Your tier depends on what you spent in the last 12 months. You are %(tier)s, with %(amount)s spent.",
                tier="Bronze",
                amount=lang.money("250.00"),
            ),
            lang.money(shop.silver_threshold),
            lang.t(
                "Spend %(amount)s more to reach %(tier)s.",
                amount=lang.money(shop.silver_threshold - 250),
                tier="Silver",
            ),
        ],
    ),
    "referral": (
        "/loyalty/referral",
        lambda lang, shop: [
            lang.t("Invite friends"),
            lang.t(
                "When a friend joins with your link and places a first order, you both get %(points)s points.",
                points=lang.num(300),
            ),
            lang.n("%(num)s friend joined", "%(num)s friends joined", 1),
            lang.t("Joined on %(date)s", date=lang.day(START.date())),
            lang.t("waiting for a first order"),
        ],
    ),
    "privacy": (
        "/loyalty/privacy",
        lambda lang, shop: [
            lang.t("Your data"),
            lang.t("Download my data (JSON)"),
            lang.t("Leave the program"),
            lang.t("I understand that my points, coupons and tier will be gone for good"),
        ],
    ),
}


def page_text(client: Any, path: str, lang: Lang) -> str:
    response = client.get(path, headers=lang.headers)
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


def assert_says(page: str, expected: list[str], lang: Lang, english: list[str] = ()) -> None:
    """The page says ``expected`` and tags the plugin's content with its language; for zh, none
    of the ``english`` versions of those sentences is left."""
    missing = [text for text in expected if text not in page and str(escape(text)) not in page]
    assert not missing, f"the {lang.locale} page lacks {missing}"
    assert f'class="loyalty" lang="{lang.html_lang}"' in page, "the plugin's content is not tagged with its language"
    if lang.locale != "en":
        left = [text for text in english if " " in text and "<" not in text and text not in expected and text in page]
        assert not left, f"still in English: {left}"


@LANGS
@pytest.mark.parametrize("name", list(PAGES))
def test_member_pages_follow_accept_language(app, client, shop, name, lang):
    path, expected = PAGES[name]
    login(client, "u1")
    page = page_text(client, path, lang)
    assert_says(page, expected(lang, shop), lang, english=expected(EN, shop))
    if lang.locale == "zh":
        english = EN.t("Loyalty program")
        assert f'aria-label="{english}"' not in page, "the portal menu is still in English"


def join_page_says(lang: Lang) -> list[str]:
    return [
        lang.t("Join the loyalty program"),
        lang.t(
            "Earn points on every order, climb tiers and get %(points)s points as a welcome bonus.",
            points=lang.num(100),
        ),
        lang.t("Birthday (optional, for birthday points)"),
        lang.t("I accept the program terms"),
        lang.t("Join"),
    ]


@LANGS
def test_the_join_page_and_its_form_follow_accept_language(app, client, lang):
    login(client, "newcomer")
    page = page_text(client, "/loyalty/join", lang)
    assert_says(page, join_page_says(lang), lang, english=join_page_says(EN))
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    no_consent = client.post("/loyalty/join", data={"csrf_token": token}, headers=lang.headers)
    assert lang.t("Please accept the program terms.") in no_consent.get_data(as_text=True)


@pytest.mark.parametrize("lang", [ZH, EN], ids=["zh-CN", "en-US"])
def test_the_welcome_message_formats_the_points_for_the_locale(database_url, tmp_path, lang):
    app = make_app(database_url, str(tmp_path / "instance"), LOYALTY_SIGNUP_POINTS=1234, WTF_CSRF_ENABLED=False)
    try:
        client = app.test_client()
        login(client, "u1")
        response = client.post("/loyalty/join", data={"accept_terms": "y"}, headers=lang.headers)
        assert response.status_code == 302
        page = page_text(client, "/loyalty/", lang)
        assert f'data-testid="points-available">{lang.num(1234)}<' in page
        assert lang.t("Welcome! %(points)s points are yours.", points=lang.num(1234)) in page
    finally:
        app.extensions["loyalty"].close()


# JSON API ------------------------------------------------------------------------------------


def api_token(client: Any, lang: Lang) -> str:
    return client.get("/loyalty/api/v1/me", headers=lang.headers).get_json()["csrf_token"]


@LANGS
def test_api_error_messages_follow_accept_language_and_codes_stay_english(app, client, shop, lang):
    login(client, "u1")
    headers = {**lang.headers, "X-CSRFToken": api_token(client, lang)}

    no_such = client.post("/loyalty/api/v1/rewards/999/redeem", headers=headers)
    assert no_such.status_code in (404, 409)
    assert no_such.get_json()["error"] == {"code": "reward_not_found", "message": lang.t("There is no such reward.")}

    with app.app_context():
        dear = Loyalty().create_reward(name="Big one", kind="free_shipping", cost_points=5000)
        Loyalty().state().store.commit()
    short = client.post(f"/loyalty/api/v1/rewards/{dear.id}/redeem", headers=headers)
    assert short.status_code == 409
    assert short.get_json()["error"] == {
        "code": "insufficient_points",
        "message": lang.t(
            "This needs %(needed)s points and you have %(available)s available.",
            needed=lang.num(5000),
            available=lang.num(1234),
        ),
    }

    no_token = client.post("/loyalty/api/v1/rewards/999/redeem", headers=lang.headers)
    assert no_token.status_code == 400
    assert no_token.get_json()["error"]["code"] == "csrf_failed"
    assert no_token.get_json()["error"]["message"] == lang.t(
        "This request is missing its security token. Reload the page and try again."
    )

    bad_code = client.post("/loyalty/api/v1/coupons/check", json={"code": "NOPE", "order_total": "10"}, headers=headers)
    assert bad_code.get_json()["error"] == {
        "code": "coupon_not_found",
        "message": lang.t("This coupon code is not valid."),
    }

    login(client, "stranger")
    stranger = client.get("/loyalty/api/v1/me", headers=lang.headers)
    assert stranger.status_code == 404
    assert stranger.get_json()["error"] == {
        "code": "not_enrolled",
        "message": lang.t("You are not a member of the loyalty program yet."),
    }


@pytest.mark.parametrize("lang", [ZH, EN], ids=["zh-CN", "en-US"])
def test_the_rate_limit_message_follows_accept_language(app, client, shop, lang):
    login(client, "u1")
    headers = {**lang.headers, "X-CSRFToken": api_token(client, lang)}
    for _ in range(25):  # the limit is 10 a minute; a window may roll over once
        response = client.post(
            "/loyalty/api/v1/coupons/check", json={"code": "NOPE", "order_total": "1"}, headers=headers
        )
        if response.status_code == 429:
            break
    assert response.status_code == 429
    assert response.get_json()["error"] == {
        "code": "too_many_requests",
        "message": lang.t("Too many attempts. Please wait a minute and try again."),
    }


# A host with its own Flask-Babel ------------------------------------------------------------


def host_app(database_url: str, tmp_path: Path, locale: str, shop_catalog: dict[str, str]) -> tuple[Flask, Any, Shop]:
    """A shop that set up Flask-Babel itself (before the plugin) with its own "messages" catalog,
    and the same member u1 as in ``shop``."""
    root = tmp_path / "shop"
    catalog = Catalog(locale="zh", domain="messages")
    for msgid, msgstr in shop_catalog.items():
        catalog.add(msgid, msgstr)
    mo = root / "translations" / "zh" / "LC_MESSAGES" / "messages.mo"
    mo.parent.mkdir(parents=True)
    with mo.open("wb") as f:
        write_mo(f, catalog)

    app = Flask("host_shop", root_path=str(root), instance_path=str(tmp_path / "instance"))
    app.config.update(
        TESTING=True,
        SECRET_KEY="test-secret-key",
        LOYALTY_DATABASE_URI=database_url,
        WTF_CSRF_ENABLED=False,
    )
    manager = LoginManager(app)
    manager.user_loader(lambda uid: User(uid))

    @app.get("/shop")
    def shop_page() -> str:
        return "|".join(
            [
                flask_babel.gettext("Points"),
                flask_babel.gettext("Your membership"),
                render_template_string("{{ _('Available points') }}/{{ _('Points') }}"),
            ]
        )

    Babel(app, locale_selector=lambda: locale)
    hosts_babel = app.extensions["babel"]
    Loyalty(app)
    app.extensions["loyalty"].clock = Clock()
    Base.metadata.create_all(app.extensions["loyalty"].store.engine)
    return app, hosts_babel, stock(app)


def test_a_hosts_own_locale_selector_decides_and_its_catalog_stays_its_own(database_url, tmp_path):
    app, hosts_babel, host_shop = host_app(
        database_url, tmp_path, "zh", {"Points": "店铺积分", "Available points": "店铺可用积分"}
    )
    try:
        assert app.extensions["babel"] is hosts_babel, "the plugin replaced the host's Flask-Babel"
        assert app.extensions["babel"].default_domain == "messages"
        client = app.test_client()
        login(client, "u1")

        page = page_text(client, "/loyalty/", EN)
        assert_says(page, PAGES["dashboard"][1](ZH, host_shop), ZH, english=PAGES["dashboard"][1](EN, host_shop))
        assert "店铺可用积分" not in page, "the shop's catalog shadows the plugin's"
        assert '<html lang="zh-Hans">' in page

        shop = client.get("/shop", headers=EN.headers).get_data(as_text=True)
        assert shop == "店铺积分|Your membership|店铺可用积分/店铺积分"
    finally:
        app.extensions["loyalty"].close()


def test_a_host_locale_the_plugin_does_not_speak_falls_back_to_english_and_says_so(database_url, tmp_path):
    app, _, _ = host_app(database_url, tmp_path, "fr", {})
    try:
        client = app.test_client()
        login(client, "u1")
        page = page_text(client, "/loyalty/", EN)
        assert EN.t("Available points") in page
        assert 'class="loyalty" lang="en"' in page
    finally:
        app.extensions["loyalty"].close()
