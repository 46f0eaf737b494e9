"""Admin pages for the reward catalog: list, create, edit and retire.

The checks of a reward's definition live in :func:`loyalty_plugin.rewards.reward_values`,
shared with the Python API; a refusal is shown beside the field it names, with status 422,
and nothing is written. Every change is recorded in the audit log by ``rewards``.
"""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, url_for
from sqlalchemy import select

from .. import rewards
from ..admin_forms import RewardForm, choice
from ..database import find
from ..errors import BadInput, LoyaltyError
from ..i18n import error_message, gettext
from ..models import Reward
from ..rewards import EDITABLE
from .admin import actor, admin, refuse, state, table_csv, wants_csv

LISTED = (
    Reward.id.label("id"),
    Reward.name.label("name"),
    Reward.kind.label("kind"),
    Reward.cost_points.label("cost_points"),
    Reward.amount.label("amount"),
    Reward.percent.label("percent"),
    Reward.max_discount.label("max_discount"),
    Reward.sku.label("sku"),
    Reward.min_order_total.label("min_order_total"),
    Reward.min_tier.label("min_tier"),
    Reward.stock.label("stock"),
    Reward.per_member_limit.label("per_member_limit"),
    Reward.active.label("active"),
    Reward.created_at.label("created_at"),
    Reward.retired_at.label("retired_at"),
)


def _form(reward: Reward | None = None) -> RewardForm:
    form = RewardForm(obj=reward)
    tiers = [choice(t.code, t.name) for t in state().settings.tiers]
    form.min_tier.choices = [choice("", gettext("Every tier")), *tiers]
    if reward is not None and not form.is_submitted():
        form.min_tier.data = reward.min_tier or ""
    return form


@admin.get("/rewards", endpoint="rewards")
def rewards_list() -> Any:
    s = state()
    stmt = select(*LISTED).order_by(Reward.active.desc(), Reward.cost_points, Reward.id)
    with s.store.work(write=False) as session:
        if wants_csv():
            return table_csv(session, "rewards", stmt)
        return render_template("loyalty/admin/rewards.html", rewards=session.execute(stmt).all())


@admin.route("/rewards/new", methods=["GET", "POST"])
def reward_new() -> Any:
    s = state()
    form = _form()
    if form.validate_on_submit():
        try:
            with s.store.work() as session:
                reward = rewards.create_reward(
                    session, form.definition(), actor=actor(), now=s.clock(), settings=s.settings
                )
                name = reward.name
            s.store.commit()
        except LoyaltyError as exc:
            return _refused(form, exc, None)
        flash(gettext("The reward %(name)s is in the catalog.", name=name), "success")
        return redirect(url_for("loyalty_admin.rewards"))
    return render_template("loyalty/admin/reward_form.html", form=form, reward=None), 400 if form.errors else 200


@admin.route("/rewards/<int:reward_id>", methods=["GET", "POST"])
def reward_edit(reward_id: int) -> Any:
    s = state()
    with s.store.work(write=False) as session:
        reward = find(session, Reward, reward_id)
        if reward is None:
            abort(404)
        form = _form(reward)
    if form.validate_on_submit():
        changes = {key: value for key, value in form.definition().items() if key in EDITABLE}
        try:
            with s.store.work() as session:
                rewards.update_reward(session, reward_id, changes, actor=actor(), now=s.clock(), settings=s.settings)
            s.store.commit()
        except LoyaltyError as exc:
            return _refused(form, exc, reward)
        flash(gettext("The reward %(name)s is saved.", name=form.name.data), "success")
        return redirect(url_for("loyalty_admin.rewards"))
    status = 400 if form.errors else 200
    return render_template("loyalty/admin/reward_form.html", form=form, reward=reward), status


@admin.post("/rewards/<int:reward_id>/retire")
def reward_retire(reward_id: int) -> Any:
    s = state()
    try:
        with s.store.work() as session:
            if find(session, Reward, reward_id) is None:
                abort(404)
            name = rewards.retire_reward(session, reward_id, actor=actor(), now=s.clock()).name
        s.store.commit()
    except LoyaltyError as exc:
        s.store.session.rollback()
        refuse(error_message(exc), exc.http_status)
    flash(gettext("The reward %(name)s is retired: members can no longer redeem it.", name=name), "success")
    return redirect(url_for("loyalty_admin.rewards"))


def _refused(form: RewardForm, exc: LoyaltyError, reward: Reward | None) -> Any:
    """Show the domain's refusal beside the field it names; nothing was written."""
    state().store.session.rollback()
    target = getattr(form, exc.field, None) if isinstance(exc, BadInput) and exc.field else None
    if target is not None and target.name != "csrf_token":
        target.errors = [*target.errors, error_message(exc)]
    else:
        form.form_errors.append(error_message(exc))
    return render_template("loyalty/admin/reward_form.html", form=form, reward=reward), exc.http_status
