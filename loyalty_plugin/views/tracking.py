"""The click-tracking redirect behind every recommended item's link.

``/loyalty/r/<token>`` records the click for the member who made it and sends them to the
item's page. The token is signed and names only the item, so the target is always the shop's
own item page: a link that names another site, or one the shop did not sign, leads nowhere.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, redirect, request, url_for
from flask_login import current_user

from ..experiments import variant_of
from ..i18n import gettext
from ..popularity import Suggestion, products
from ..security import add_headers
from ..tracking import Click, click_token, own_url, read_click_token, record_click

tracking = Blueprint("loyalty_track", __name__)


def loyalty_click_url(item: Suggestion, position: int) -> str:
    """The widget's link for ``item`` shown at ``position`` (1 = first)."""
    click = Click(item.sku, position, item.reason, item.model_version)
    return url_for("loyalty_track.click", token=click_token(current_app.secret_key, click))


@tracking.get("/<token>")
def click(token: str) -> Any:
    state = current_app.extensions["loyalty"]
    found = read_click_token(current_app.secret_key, token)
    if found is None:
        abort(404, description=gettext("This link is not valid."))
    with state.store.work(write=False) as session:
        product = products(session, [found.sku], state.item_info)[found.sku]
    if not own_url(product.url, request.host):
        abort(404, description=gettext("This item is no longer available."))
    if current_user.is_authenticated:
        user_id = current_user.get_id()
        record_click(
            state.store,
            user_id=user_id,
            experiment=state.settings.ab_experiment,
            variant=variant_of(user_id, state.settings),
            click=found,
            now=state.clock(),
        )
    return redirect(product.url, code=303)


@tracking.after_request
def _headers(response: Any) -> Any:
    return add_headers(response, current_app.extensions["loyalty"].settings)
