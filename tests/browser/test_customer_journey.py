"""A new customer's journey through the demo shop and its loyalty pages, in a real browser.

The same journey runs in English (``en-US``) and Simplified Chinese (``zh-CN``), set through the
browser context's locale (and so its Accept-Language header). Elements are found by role,
``data-testid``, ``data-sku``, ``data-reward-id``, ``href`` or form-field ``name``, never by
English text, so the Chinese run needs no change when the pages are translated.

The shop starts with three rewards, made through ``Loyalty.create_reward`` in the shop's own app
(the ``rewards`` fixture): one the new member can afford (100 points for 5.00 off), one far too
dear (its card says how many points are missing) and one for Gold members only (no Redeem link).

The journey:

1. Sign up without ticking the loyalty box, open "My rewards" and be sent to the join page, join
   (accepting the terms) and see the welcome bonus the join page promised as available points.
2. Put the first catalogue item in the cart and check out, see the order's points pending on the
   dashboard, move time 15 days ahead through the CLI (``flask loyalty run-job release --now
   ...``) and see them available.
3. On the rewards page the affordable reward has a Redeem link, the dear one shows the points
   short, the Gold one neither (its confirmation page, opened directly, says why and offers no
   confirm button). Redeem the affordable one: confirmation page, confirm, and My coupons lists one
   active coupon. Its Copy button puts the code on the clipboard (read back with
   ``navigator.clipboard.readText()``) and says so in the page's live region. The coupon checker
   shows what the coupon takes off. Keyboard: from the top of the rewards page (before redeeming)
   and of My coupons (while the coupon is active), Tab, a bounded number of times, reaches the
   Redeem link and the Copy button.
4. Buy the item again, choose the coupon from the member's coupon list at checkout: the total to
   pay drops by the reward's amount, and the order shows the coupon used. My coupons no longer
   lists it as active; under "used" it is there with ``data-status="used"``.
5. Every member page once, screenshotted and checked with axe (the points history filtered by a
   kind, the coupon checker refusing the used coupon with an error message), then every one again
   375 px wide: axe again, screenshots under ``screenshots/<locale>/narrow/``, and no sideways
   scrolling of the document.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from typing import Any

import pytest

from loyalty_plugin.demo import demo_catalog

from .conftest import DemoShop, Journey

pytestmark = pytest.mark.browser

LOCALES = ["en-US", "zh-CN"]
PRICES = {item.sku: item.price for item in demo_catalog()}
RETURN_WINDOW_PASSED = timedelta(days=15)
NARROW = {"width": 375, "height": 812}
#: Enough Tab presses to cross the shop's header and the loyalty menu to the page's content.
MAX_TABS = 60

#: The rewards on offer, by the role they play in the journey.
REWARDS: dict[str, dict[str, Any]] = {
    "affordable": {"name": "5.00 off your order", "kind": "fixed_amount", "cost_points": 100, "amount": "5.00"},
    "dear": {"name": "250.00 off your order", "kind": "fixed_amount", "cost_points": 50_000, "amount": "250.00"},
    "gold_only": {"name": "Free shipping for Gold", "kind": "free_shipping", "cost_points": 50, "min_tier": "gold"},
}

CREATE_REWARDS = """
    import json, sys
    from wsgi import app, db, loyalty
    with app.app_context():
        definitions = json.loads(sys.argv[1])
        made = {role: loyalty.create_reward(actor="browser-tests", **d).id for role, d in definitions.items()}
        db.session.commit()
    print(json.dumps(made))
"""


@pytest.fixture
def rewards(demo_shop: DemoShop) -> dict[str, int]:
    """The ``REWARDS`` in the shop's catalog: their ids by role."""
    output = demo_shop.python(CREATE_REWARDS, json.dumps(REWARDS))
    return json.loads(output.strip().splitlines()[-1])


def number(locator) -> int:
    """The integer shown by an element, whatever the thousands separator."""
    text = locator.inner_text()
    digits = re.sub(r"\D", "", text)
    assert digits, f"no number in {text!r}"
    return int(digits)


def money(locator) -> Decimal:
    """The amount shown by an element such as ``$1,234.50``."""
    text = locator.inner_text()
    found = re.search(r"\d[\d,]*(?:\.\d+)?", text)
    assert found, f"no amount in {text!r}"
    return Decimal(found.group().replace(",", ""))


def normalised_code(text: str) -> str:
    """A coupon code as the shop stores it: the grouped ``ABCD-EFGH`` form without separators."""
    return re.sub(r"[^0-9A-Za-z]", "", text).upper()


def promised_bonus(page) -> int:
    """The welcome bonus the join page announces: the only number in its introduction."""
    intro = page.locator("main h1 ~ p").first.inner_text()
    numbers = re.findall(r"\d[\d,.\s]*\d|\d", intro)
    assert len(numbers) == 1, f"expected one number (the welcome bonus) in {intro!r}"
    return int(re.sub(r"\D", "", numbers[0]))


def form_with(page, field_name: str):
    """The form in the page's main content that has a field of that name."""
    return page.locator("main form").filter(has=page.locator(f"[name='{field_name}']"))


def nav_link(page, path: str):
    return page.locator(f"header nav a[href='{path}']")


def loyalty_link(page, path: str):
    """A link of the loyalty pages' own menu."""
    return page.locator(f"main nav a[href='{path}']").first


def live_region(page):
    """The polite live region the copy buttons speak through."""
    return page.locator("main [role='status'][aria-live='polite']")


def coupon_card(page, coupon_id: str):
    return page.locator(f"[data-testid='coupon'][data-coupon-id='{coupon_id}']")


def tab_until_focused(page, selector: str, limit: int = MAX_TABS) -> int:
    """Press Tab from the top of the page until the focused element matches ``selector``; the
    number of presses. Fails, listing what got focus, if ``limit`` presses do not reach it."""
    page.evaluate("document.activeElement && document.activeElement.blur()")
    page.evaluate("window.scrollTo(0, 0)")
    seen = []
    for presses in range(1, limit + 1):
        page.keyboard.press("Tab")
        focused = page.evaluate(
            """selector => {
                const el = document.activeElement;
                if (!el || el === document.body) return {matches: false, what: "body"};
                const what = el.localName + (el.getAttribute("href") ? `[href=${el.getAttribute("href")}]` : "")
                    + (el.className ? "." + String(el.className).split(" ").join(".") : "");
                return {matches: el.matches(selector), what};
            }""",
            selector,
        )
        if focused["matches"]:
            return presses
        seen.append(focused["what"])
    pytest.fail(f"{limit} Tab presses on {page.url} never focused {selector!r}; focus went to:\n" + "\n".join(seen))


def join_buy_and_release(journey: Journey, locale: str) -> tuple[str, int]:
    """Sign up, join, buy the first item, release its points: the item's SKU and the points available."""
    from playwright.sync_api import expect

    page = journey.page
    response = page.goto("/signup")
    assert response is not None and response.ok
    assert response.request.header_value("accept-language").startswith(locale)
    journey.checkpoint("signup")

    signup = form_with(page, "email")
    signup.locator("[name='name']").fill("Mei Lin")
    signup.locator("[name='email']").fill(f"mei.{locale.lower()}@example.com")
    signup.locator("[name='password']").fill("a-long-password")
    signup.locator("[name='confirm']").fill("a-long-password")
    signup.locator("[name='join']").uncheck()
    signup.get_by_role("button").click()
    expect(page).to_have_url(journey.url("/"))
    journey.checkpoint("catalog")

    nav_link(page, "/loyalty/").click()
    expect(page).to_have_url(journey.url("/loyalty/join"))
    journey.checkpoint("join")
    bonus = promised_bonus(page)
    assert bonus > 0

    join = form_with(page, "accept_terms")
    join.locator("[name='accept_terms']").check()
    join.get_by_role("button").click()
    expect(page).to_have_url(journey.url("/loyalty/"))
    journey.checkpoint("dashboard")
    assert number(page.get_by_test_id("points-available")) == bonus
    assert number(page.get_by_test_id("points-pending")) == 0

    nav_link(page, "/").click()
    expect(page).to_have_url(journey.url("/"))
    card = page.locator("main [data-sku]").first
    sku = card.get_attribute("data-sku")
    card.get_by_role("button").click()
    expect(page.get_by_role("status")).to_be_visible()
    journey.checkpoint("added-to-cart")

    nav_link(page, "/cart").click()
    expect(page).to_have_url(journey.url("/cart"))
    expect(page.locator(f"main a[href='/items/{sku}']")).to_be_visible()
    journey.checkpoint("cart")

    page.locator("main a[href='/checkout']").click()
    expect(page).to_have_url(journey.url("/checkout"))
    journey.checkpoint("checkout")

    page.locator("main button[name='place']").click()
    expect(page).to_have_url(journey.url("/orders"))
    expect(page.get_by_role("status")).to_be_visible()
    journey.checkpoint("orders")

    earned = int(PRICES[sku].to_integral_value(rounding=ROUND_DOWN))  # Bronze: a point per whole dollar
    nav_link(page, "/loyalty/").click()
    expect(page).to_have_url(journey.url("/loyalty/"))
    journey.checkpoint("dashboard-pending")
    assert number(page.get_by_test_id("points-pending")) == earned > 0
    assert number(page.get_by_test_id("points-available")) == bonus

    later = datetime.now(UTC).replace(tzinfo=None) + RETURN_WINDOW_PASSED
    journey.shop.flask("loyalty", "run-job", "release", "--now", later.isoformat(timespec="seconds"))
    page.reload()
    journey.checkpoint("dashboard-released")
    assert number(page.get_by_test_id("points-pending")) == 0
    assert number(page.get_by_test_id("points-available")) == bonus + earned
    return sku, bonus + earned


def redeem_and_copy(journey: Journey, rewards: dict[str, int], available: int) -> tuple[str, str]:
    """Redeem the affordable reward and copy its coupon's code: the coupon's id and the code copied.

    While the reward is affordable and the coupon active, Tab from the top of the rewards page
    reaches the Redeem link, and from the top of My coupons the Copy button."""
    from playwright.sync_api import expect

    page = journey.page
    affordable, dear, gold_only = (rewards[role] for role in ("affordable", "dear", "gold_only"))
    assert REWARDS["affordable"]["cost_points"] <= available < REWARDS["dear"]["cost_points"]

    loyalty_link(page, "/loyalty/rewards").click()
    expect(page).to_have_url(journey.url("/loyalty/rewards"))
    journey.checkpoint("rewards")
    redeem_path = f"/loyalty/rewards/{affordable}/redeem"
    offers = {role: page.locator(f"[data-testid='reward'][data-reward-id='{rid}']") for role, rid in rewards.items()}
    for offer in offers.values():
        expect(offer).to_have_count(1)
    expect(offers["affordable"].locator(f"a[href='{redeem_path}']")).to_be_visible()
    expect(offers["affordable"].get_by_test_id("points-short")).to_have_count(0)
    expect(offers["dear"].locator("a")).to_have_count(0)
    short = offers["dear"].get_by_test_id("points-short")
    expect(short).to_be_visible()
    assert number(short) == REWARDS["dear"]["cost_points"] - available
    expect(offers["gold_only"].locator("a")).to_have_count(0)  # Bronze: refused for the tier, not the points
    expect(offers["gold_only"].get_by_test_id("points-short")).to_have_count(0)
    tab_until_focused(page, f"[data-reward-id='{affordable}'] a[href='{redeem_path}']")

    # Straight to the Gold reward's confirmation page: it says why not, and confirming is refused.
    visit(journey, f"/loyalty/rewards/{gold_only}/redeem")
    expect(page.locator("main [role='alert']")).to_have_text(re.compile(r"\S"))
    journey.checkpoint("redeem-gold-only")
    expect(page.get_by_test_id("confirm-redeem")).to_have_count(0)  # nothing to confirm
    visit(journey, "/loyalty/rewards")
    expect(page.get_by_test_id("reward")).to_have_count(len(REWARDS))
    assert dear != gold_only

    offers["affordable"].locator(f"a[href='{redeem_path}']").click()
    expect(page).to_have_url(journey.url(redeem_path))
    journey.checkpoint("redeem-confirm")
    expect(page.locator("main [role='alert']")).to_have_count(0)
    page.get_by_test_id("confirm-redeem").click()

    expect(page).to_have_url(journey.url("/loyalty/coupons"))
    expect(page.locator("main p[role='status']").first).to_be_visible()  # "Your coupon ... is ready."
    coupons = page.get_by_test_id("coupon")
    expect(coupons).to_have_count(1)
    expect(coupons).to_have_attribute("data-status", "active")
    journey.checkpoint("coupons-active")
    coupon_id = coupons.get_attribute("data-coupon-id")
    shown_code = coupons.get_by_test_id("coupon-code").inner_text().strip()
    assert normalised_code(shown_code)

    page.evaluate("navigator.clipboard.writeText('')")
    coupons.locator("button.loyalty-copy").click()
    expect(coupons.locator("button.loyalty-copy")).to_have_attribute("data-state", "copied")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == shown_code, f"the clipboard holds {copied!r}, the page shows {shown_code!r}"
    expect(live_region(page)).to_have_text(re.compile(r"\S"))
    journey.checkpoint("coupon-copied")
    page.reload()
    tab_until_focused(page, f"[data-coupon-id='{coupon_id}'] button.loyalty-copy")

    loyalty_link(page, "/loyalty/").click()
    expect(page).to_have_url(journey.url("/loyalty/"))
    assert number(page.get_by_test_id("points-available")) == available - REWARDS["affordable"]["cost_points"]

    page.goto("/loyalty/coupons/check")
    check = form_with(page, "code")
    check.locator("[name='code']").fill(copied)
    check.locator("[name='order_total']").fill("30.00")
    check.get_by_role("button").click()
    discount = page.get_by_test_id("discount")
    expect(discount).to_be_visible()
    assert money(discount) == Decimal(REWARDS["affordable"]["amount"])
    journey.checkpoint("coupon-check-active")
    return coupon_id, copied


def pay_with_coupon(journey: Journey, sku: str, coupon_id: str, code: str) -> None:
    """Buy the item again with the coupon chosen at checkout; the coupon is then used."""
    from playwright.sync_api import expect

    page = journey.page
    page.goto("/")
    page.locator(f"main [data-sku='{sku}']").get_by_role("button").click()
    expect(page.get_by_role("status")).to_be_visible()
    nav_link(page, "/cart").click()
    expect(page).to_have_url(journey.url("/cart"))
    page.locator("main a[href='/checkout']").click()
    expect(page).to_have_url(journey.url("/checkout"))

    total = page.get_by_test_id("total")
    full_price = money(total)
    assert full_price >= PRICES[sku]
    choice = page.locator(f"main input[type='radio'][name='coupon'][value='{normalised_code(code)}']")
    expect(choice).to_have_count(1)  # the member's coupon list offers the coupon just copied
    choice.check()
    page.locator("main button[name='preview']").click()
    expect(page).to_have_url(journey.url("/checkout"))
    expect(choice).to_be_checked()
    journey.checkpoint("checkout-coupon")
    discounted = money(total)
    assert discounted == full_price - Decimal(REWARDS["affordable"]["amount"]), (full_price, discounted)

    page.locator("main button[name='place']").click()
    expect(page).to_have_url(journey.url("/orders"))
    expect(page.get_by_role("status")).to_be_visible()
    journey.checkpoint("orders-coupon")
    latest = page.locator("main section").first
    expect(latest.locator("code")).to_have_text(code)  # the coupon used on the order, as the member copied it
    paid = [money(dd) for dd in latest.locator("dd").all()]
    assert discounted in paid, f"the order does not show the {discounted} paid: {paid}"

    page.goto("/loyalty/coupons")
    expect(page.get_by_test_id("coupon")).to_have_count(0)
    expect(coupon_card(page, coupon_id)).to_have_count(0)
    page.goto("/loyalty/coupons?status=used")
    used = coupon_card(page, coupon_id)
    expect(used).to_have_count(1)
    expect(used).to_have_attribute("data-status", "used")
    expect(used.locator("button.loyalty-copy")).to_have_count(0)


def member_pages(rewards: dict[str, int], coupon_id: str) -> list[tuple[str, str]]:
    """Every member page, as (name, path)."""
    return [
        ("dashboard", "/loyalty/"),
        ("points", "/loyalty/points"),
        ("tiers", "/loyalty/tiers"),
        ("rewards", "/loyalty/rewards"),
        ("redeem", f"/loyalty/rewards/{rewards['affordable']}/redeem"),
        ("coupons-active", "/loyalty/coupons?status=active"),
        ("coupons-used", "/loyalty/coupons?status=used"),
        ("coupons-expired", "/loyalty/coupons?status=expired"),
        ("coupon", f"/loyalty/coupons/{coupon_id}"),
        ("coupon-check", "/loyalty/coupons/check"),
        ("referral", "/loyalty/referral"),
        ("privacy", "/loyalty/privacy"),
    ]


def visit(journey: Journey, path: str) -> None:
    response = journey.page.goto(path)
    assert response is not None and response.ok, f"{path}: {response and response.status}"


def tour_member_pages(journey: Journey, rewards: dict[str, int], coupon_id: str, code: str) -> None:
    """Each member page once at desktop width, with the interactions that only make sense there."""
    from playwright.sync_api import expect

    page = journey.page
    for name, path in member_pages(rewards, coupon_id):
        visit(journey, path)
        journey.checkpoint(f"tour-{name}")
        if name == "dashboard":
            expect(page.get_by_test_id("tier-name")).to_be_visible()
            expect(page.get_by_test_id("tier-progress")).to_be_visible()
        elif name == "points":
            expect(page.get_by_test_id("ledger")).to_be_visible()
            page.locator("main select[name='kind']").select_option("redeem")
            form_with(page, "kind").get_by_role("button").click()
            expect(page).to_have_url(re.compile(r"/loyalty/points\?kind=redeem$"))
            rows = page.locator("[data-testid='ledger'] tbody tr")
            expect(rows).to_have_count(1)
            expect(rows).to_have_attribute("data-kind", "redeem")
            journey.checkpoint("tour-points-redeem")
        elif name == "tiers":
            expect(page.get_by_test_id("tiers")).to_be_visible()
        elif name == "coupon":
            expect(page.get_by_test_id("coupon")).to_have_attribute("data-status", "used")
        elif name == "coupon-check":
            check = form_with(page, "code")
            check.locator("[name='code']").fill(code)
            check.locator("[name='order_total']").fill("30.00")
            check.get_by_role("button").click()
            refusal = page.locator("main [role='alert']")
            expect(refusal).to_have_count(1)
            expect(refusal).to_have_text(re.compile(r"\S"))
            expect(page.get_by_test_id("discount")).to_have_count(0)
            journey.checkpoint("tour-coupon-check-used")
        elif name == "referral":
            expect(page.get_by_test_id("referral-link")).to_have_value(re.compile(r"/loyalty/join\?ref=\w+"))
        elif name == "privacy":
            expect(page.get_by_test_id("export")).to_be_visible()


def tour_narrow(journey: Journey, rewards: dict[str, int], coupon_id: str) -> None:
    """Each member page again at a phone's width: axe, a screenshot, and no sideways scrolling."""
    journey.page.set_viewport_size(NARROW)
    for name, path in member_pages(rewards, coupon_id):
        visit(journey, path)
        journey.checkpoint(name, subfolder="narrow")
        journey.check_no_horizontal_scroll()


@pytest.mark.parametrize("locale", LOCALES)
def test_new_customer_earns_redeems_and_pays_with_a_coupon(
    journey: Journey, rewards: dict[str, int], locale: str
) -> None:
    sku, available = join_buy_and_release(journey, locale)
    coupon_id, code = redeem_and_copy(journey, rewards, available)
    pay_with_coupon(journey, sku, coupon_id, code)
    tour_member_pages(journey, rewards, coupon_id, code)
    tour_narrow(journey, rewards, coupon_id)
    journey.assert_clean()
