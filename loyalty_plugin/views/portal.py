"""Member pages: the blueprint, its guard, and the summary pages (dashboard, join, points,
tiers). Rewards and coupons are in ``portal_rewards``, referral and privacy in
``portal_privacy``. Anonymous visitors are sent to the host's login view and back.
"""

from __future__ import annotations

import functools
from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask import session as web_session
from flask_login import current_user
from markupsafe import Markup
from werkzeug.exceptions import TooManyRequests

from .. import account, ledger, members
from ..errors import N_, ConfigError, LoyaltyError
from ..forms import JoinForm
from ..i18n import error_message, gettext, locale, template_helpers
from ..i18n import points as format_points
from ..models import Member
from ..pagecache import KeptPage
from ..rewards import display_code
from ..security import add_headers, csrf_ok

portal = Blueprint("loyalty", __name__, static_url_path="/static")

#: How each ledger kind is named to the member (translated where shown).
KIND_LABELS = {
    "earn": N_("Points for an order"),
    "release": N_("Points now available"),
    "signup": N_("Welcome bonus"),
    "birthday": N_("Birthday points"),
    "referral": N_("Referral bonus"),
    "award": N_("Activity points"),
    "redeem": N_("Reward redeemed"),
    "clawback": N_("Refund"),
    "expire": N_("Points expired"),
    "adjust": N_("Adjustment"),
}


def state():
    return current_app.extensions["loyalty"]


@portal.before_request
def _require_login() -> Any:
    if request.endpoint == "loyalty.static":
        return None
    if not hasattr(current_app, "login_manager"):
        raise ConfigError("The loyalty pages need Flask-Login: call LoginManager().init_app(app) in the shop.")
    if not current_user.is_authenticated:
        return current_app.login_manager.unauthorized()
    if not csrf_ok():
        message = gettext("This form expired. Please go back, reload the page and try again.")
        return render_template("loyalty/refused.html", message=message), 400
    return None


@portal.after_request
def _headers(response: Any) -> Any:
    return add_headers(response, state().settings)


@portal.context_processor
def _layout() -> dict[str, Any]:
    settings = state().settings
    return _layout_values(settings.base_template, settings.currency)


@functools.cache
def _layout_values(base_template: str, currency: str) -> dict[str, Any]:
    """What every portal template sees: the same for every request of an app, so built once
    (Flask copies it into each template's context)."""
    return {
        "loyalty_base": base_template,
        "currency": currency,
        "display_code": display_code,
        "kind_labels": KIND_LABELS,
        **template_helpers(currency),
    }


@portal.errorhandler(TooManyRequests)
def _too_many(exc: TooManyRequests) -> Any:
    return render_template("loyalty/refused.html", message=exc.description), 429


def current_member(session: Any) -> Member:
    """The logged-in user's membership; visitors who have not joined are sent to the join page."""
    member = members.get_member(session, current_user.get_id())
    if member is None or member.erased_at is not None:
        abort(redirect(url_for("loyalty.join")))
    return member


def refuse(exc: LoyaltyError) -> None:
    state().store.session.rollback()
    flash(error_message(exc), "error")


@portal.get("/")
def dashboard() -> Any:
    s = state()
    now = s.clock()
    user_id = current_user.get_id()
    stamp = s.stamps.get(user_id, fresh="_flashes" in web_session)
    if stamp is None:
        return redirect(url_for("loyalty.join"))
    key = ("dashboard", *stamp, str(locale()), now.date())
    kept = s.pages.get(key, now)
    if kept is None:
        with s.store.work(write=False) as session:
            member = session.get(Member, stamp[0])
            shown = s.recommend(session, user_id, limit=4)
            body = render_template(
                "loyalty/_dashboard.html",
                member=member,
                balance=ledger.balance_of(session, member, now=now, settings=s.settings),
                progress=account.tier_progress(session, member, now=now, settings=s.settings),
                activity=account.recent_activity(session, member),
                active_coupons=account.active_coupon_count(session, member, now=now),
                items=shown.items,
            )
        kept = KeptPage(body, shown)
        s.pages.put(key, kept, now)
    s.count_view(user_id, kept.extra)
    if "_flashes" in web_session:
        return _dashboard_page(kept.fragment)
    if kept.whole is None:
        page = _dashboard_page(kept.fragment)
        if _whole_page_kept(s.settings.base_template):
            kept.whole = page
        return page
    return kept.whole


def _dashboard_page(fragment: str) -> str:
    return render_template("loyalty/dashboard.html", body=Markup(fragment))  # our template, autoescaped  # noqa: S704  # nosec B704


def _whole_page_kept(base_template: str) -> bool:
    """Whether the dashboard may be kept whole, layout included: only when the page and its
    layout are the plugin's own files (``LOYALTY_BASE_TEMPLATE`` not set to the shop's layout,
    neither overridden at its path). Around the fragment they show only the language, which is
    in the key, and flashed messages, which are looked for on every request."""
    own = str(portal.template_folder)
    names = ("loyalty/dashboard.html", base_template)
    return all((current_app.jinja_env.get_template(name).filename or "").startswith(own) for name in names)


@portal.route("/join", methods=["GET", "POST"])
def join() -> Any:
    s = state()
    with s.store.work(write=False) as session:
        existing = members.get_member(session, current_user.get_id())
    if existing is not None and existing.erased_at is None:
        return redirect(url_for("loyalty.dashboard"))
    form = JoinForm()
    if request.method == "GET" and request.args.get("ref"):
        form.referral_code.data = request.args["ref"][:32]
    if form.validate_on_submit():
        try:
            with s.store.work() as session:
                members.enroll(
                    session,
                    current_user.get_id(),
                    now=s.clock(),
                    settings=s.settings,
                    email=s.user_email(current_user),
                    birthday=form.birthday.data,
                    marketing_opt_in=form.marketing_opt_in.data,
                    referral_code=form.referral_code.data or None,
                )
            s.store.commit()
        except LoyaltyError as exc:
            refuse(exc)
        else:
            flash(
                gettext("Welcome! %(points)s points are yours.", points=format_points(s.settings.signup_points)),
                "success",
            )
            return redirect(url_for("loyalty.dashboard"))
    return render_template("loyalty/join.html", form=form, signup_points=s.settings.signup_points)


@portal.get("/points")
def points() -> Any:
    s = state()
    kind = request.args.get("kind") or None
    page = request.args.get("page", default=1, type=int) or 1
    with s.store.work(write=False) as session:
        member = current_member(session)
        entries = account.history(session, member, kind=kind, page=page, per_page=s.settings.page_size)
        return render_template(
            "loyalty/points.html",
            member=member,
            entries=entries,
            kind=kind if kind in account.LEDGER_KINDS else None,
            kinds=account.LEDGER_KINDS,
        )


@portal.get("/tiers")
def tiers() -> Any:
    s = state()
    with s.store.work(write=False) as session:
        member = current_member(session)
        progress = account.tier_progress(session, member, now=s.clock(), settings=s.settings)
        return render_template("loyalty/tiers.html", member=member, progress=progress, tiers=s.settings.tiers)
