"""Jinja globals for the shop's own templates: ``loyalty_badge()`` for a page header and
``loyalty_recommendations(limit=4)``, the "recommended for you" widget.

Both render the plugin's small templates (overridable like its pages) and render nothing for
visitors who are not logged in, so a shop can put them in its layout unconditionally.
"""

from __future__ import annotations

from flask import current_app, render_template
from flask_login import current_user
from markupsafe import Markup

from .. import members
from ..i18n import gettext, ngettext, template_helpers
from ..popularity import Suggestion


def _logged_in() -> bool:
    return bool(current_user) and current_user.is_authenticated


def loyalty_badge() -> Markup:
    if not _logged_in():
        return Markup("")
    state = current_app.extensions["loyalty"]
    with state.store.work(write=False) as session:
        member = members.get_member(session, current_user.get_id())
        tier = state.settings.tier(member.tier_code) if member else None
        html = render_template(
            "loyalty/_badge.html",
            member=member,
            tier=tier,
            **template_helpers(state.settings.currency),
        )
    return Markup(html)  # our template, autoescaped  # noqa: S704  # nosec B704


def recommendation_reason(item: Suggestion) -> str:
    """Why an item is shown, in the member's language: the reason is part of the widget."""
    if item.reason == "similar" and item.because:
        return gettext("Often bought with %(item)s", item=item.because)
    if item.reason == "buy_again":
        if item.cycle_days:
            return ngettext(
                "You buy this about every %(num)s day", "You buy this about every %(num)s days", item.cycle_days
            )
        return gettext("You bought this before")
    if item.category:
        return gettext("Popular in %(category)s", category=item.category)
    return gettext("Popular with other shoppers")


def loyalty_recommendations(limit: int = 4) -> Markup:
    if not _logged_in():
        return Markup("")
    state = current_app.extensions["loyalty"]
    with state.store.work(write=False) as session:
        items = state.suggestions(session, current_user.get_id(), limit=max(1, min(int(limit), 20)))
        html = render_template(
            "loyalty/_recommendations.html", items=items, **template_helpers(state.settings.currency)
        )
    return Markup(html)  # our template, autoescaped  # noqa: S704  # nosec B704
