"""Blinker signals a host subscribes to for emails, pushes or its own bookkeeping.

They are sent once the transaction that caused them has committed (and dropped if it rolled
back), so a listener never announces points that do not exist. Each is sent with the Flask
app as sender and everything a listener needs as keyword arguments: a listener must not use
the committing session, which is closing when it runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from blinker import Namespace, Signal
from flask import current_app
from sqlalchemy import event
from sqlalchemy.orm import Session

_signals = Namespace()

#: ``user_id``, ``member_id``, ``points`` (sign-up bonus), ``referred_by`` (user id or None)
member_enrolled = _signals.signal("loyalty.member-enrolled")
#: ``user_id``, ``delta``, ``pending_delta``, ``balance``, ``kind``, ``cause``
points_changed = _signals.signal("loyalty.points-changed")
#: ``user_id``, ``from_tier``, ``to_tier``, ``reason``
tier_changed = _signals.signal("loyalty.tier-changed")
#: ``user_id``, ``coupon_code``, ``reward_id``, ``points_spent``, ``valid_until``
coupon_issued = _signals.signal("loyalty.coupon-issued")
#: ``user_id``, ``coupon_code``, ``order_id``
coupon_used = _signals.signal("loyalty.coupon-used")
#: ``user_id``, ``points``, ``expires_at`` (the earliest of the lots warned about)
points_expiring = _signals.signal("loyalty.points-expiring")
#: ``user_id``, ``alert_id``, ``risk``, ``value``, ``coupon_code`` (win-back coupon or None)
churn_alert = _signals.signal("loyalty.churn-alert")

_OUTBOX = "loyalty_outbox"
_MUTED = "loyalty_muted"


@contextmanager
def muted(session: Session) -> Iterator[None]:
    """Back-filled history announces nothing: no email about points earned years ago."""
    session.info[_MUTED] = True
    try:
        yield
    finally:
        session.info.pop(_MUTED, None)


def defer(session: Session, signal: Signal, **payload: Any) -> None:
    """Queue ``signal`` until ``session`` commits."""
    if session.info.get(_MUTED):
        return
    sender = current_app._get_current_object()  # type: ignore[attr-defined]
    session.info.setdefault(_OUTBOX, []).append((signal, sender, payload))


@event.listens_for(Session, "after_commit")
def _dispatch(session: Session) -> None:
    for signal, sender, payload in session.info.pop(_OUTBOX, ()):
        signal.send(sender, **payload)


@event.listens_for(Session, "after_rollback")
def _discard(session: Session) -> None:
    session.info.pop(_OUTBOX, None)
