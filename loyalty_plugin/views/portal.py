"""Member pages. Anonymous visitors are sent to the host's login view and back."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user

from .. import ledger, members
from ..errors import ConfigError, LoyaltyError
from ..forms import JoinForm
from ..rewards import display_code, member_coupons

portal = Blueprint("loyalty", __name__, static_url_path="/static")


def _state():
    return current_app.extensions["loyalty"]


@portal.before_request
def _require_login() -> Any:
    if request.endpoint == "loyalty.static":
        return None
    if not hasattr(current_app, "login_manager"):
        raise ConfigError("The loyalty pages need Flask-Login: call LoginManager().init_app(app) in the shop.")
    if not current_user.is_authenticated:
        return current_app.login_manager.unauthorized()
    return None


@portal.context_processor
def _layout() -> dict[str, Any]:
    state = _state()
    return {
        "loyalty_base": state.settings.base_template,
        "currency": state.settings.currency,
        "display_code": display_code,
    }


@portal.get("/")
def dashboard() -> Any:
    state = _state()
    with state.store.work(write=False) as session:
        member = members.get_member(session, current_user.get_id())
        if member is None:
            return redirect(url_for("loyalty.join"))
        balance = ledger.balance_of(session, member, now=state.clock(), settings=state.settings)
        coupons = [c for c in member_coupons(session, member) if c.status == "active"]
        return render_template(
            "loyalty/dashboard.html",
            member=member,
            balance=balance,
            tier=state.settings.tier(member.tier_code),
            coupons=coupons,
        )


@portal.route("/join", methods=["GET", "POST"])
def join() -> Any:
    state = _state()
    form = JoinForm()
    if form.validate_on_submit():
        email = state.user_email(current_user)
        try:
            with state.store.work() as session:
                members.enroll(
                    session,
                    current_user.get_id(),
                    now=state.clock(),
                    settings=state.settings,
                    email=email,
                    birthday=form.birthday.data,
                    marketing_opt_in=form.marketing_opt_in.data,
                    referral_code=form.referral_code.data or None,
                )
            state.store.commit()
        except LoyaltyError as exc:
            state.store.session.rollback()
            flash(exc.message, "error")
        else:
            flash(f"Welcome! {state.settings.signup_points} points are yours.", "success")
            return redirect(url_for("loyalty.dashboard"))
    return render_template("loyalty/join.html", form=form, signup_points=state.settings.signup_points)
