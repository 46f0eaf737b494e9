"""Real concurrent connections against one member, one order, one coupon (SPEC §7, Reliability).

Every thread pushes its own app context, so it gets its own session and its own database
connection; a barrier releases them together. The same tests run on a SQLite file (the
plugin's own engine, ``BEGIN IMMEDIATE``) and on PostgreSQL (row locks, ``ON CONFLICT``), and
one more set runs with a host's Flask-SQLAlchemy ``db`` whose code commits after each call.

Each test asserts what the database holds afterwards, not only what the callers were told:
the count of coupons, ledger entries by cause, ``verify() == []``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import create_engine, func, select, text

from loyalty_plugin import BadInput, ConflictingDuplicate, InsufficientPoints, InvalidCoupon, Loyalty
from loyalty_plugin.jobs import expire_points, release_pending
from loyalty_plugin.models import Base, Coupon, LedgerEntry, Member, Order, ProcessedEvent
from loyalty_plugin.webhooks import HEADER, sign

from .conftest import Clock, make_app

JOIN_TIMEOUT = 90
SECRET = "whsec-test-0123456789abcdef"
LINES = [
    {"sku": "MUG-1", "qty": 2, "unit_price": "12.50", "category": "kitchen"},
    {"sku": "TEA-7", "qty": 1, "unit_price": "34.90", "category": "food"},
]
ORDER_TOTAL = "59.90"


@dataclass
class Outcome:
    value: Any = None
    error: BaseException | None = None


def run_together(app: Flask, n: int, call: Callable[[int], Any], *, push_context: bool = True) -> list[Outcome]:
    """Run ``call(i)`` in ``n`` threads released at once by a barrier; each in its own app context.

    Fails the test, naming the stuck threads, if any has not finished after ``JOIN_TIMEOUT``.
    """
    barrier = threading.Barrier(n, timeout=JOIN_TIMEOUT)
    outcomes = [Outcome() for _ in range(n)]

    def worker(i: int) -> None:
        try:
            if push_context:
                with app.app_context():
                    barrier.wait()
                    outcomes[i].value = call(i)
            else:
                barrier.wait()
                outcomes[i].value = call(i)
        except BaseException as exc:
            outcomes[i].error = exc

    threads = [threading.Thread(target=worker, args=(i,), name=f"racer-{i}", daemon=True) for i in range(n)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + JOIN_TIMEOUT
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    stuck = [thread.name for thread in threads if thread.is_alive()]
    assert not stuck, f"{len(stuck)} of {n} threads still running after {JOIN_TIMEOUT}s (a deadlock?): {stuck[:5]}"
    broken = [o.error for o in outcomes if isinstance(o.error, threading.BrokenBarrierError)]
    assert not broken, "the barrier broke: not every thread reached the start line"
    return outcomes


def successes(outcomes: list[Outcome]) -> list[Any]:
    return [o.value for o in outcomes if o.error is None]


def failures(outcomes: list[Outcome]) -> list[BaseException]:
    return [o.error for o in outcomes if o.error is not None]


def assert_only(errors: list[BaseException], kind: type[BaseException], **attrs: Any) -> None:
    """Every refusal is the expected, customer-fit error: no IntegrityError, deadlock or lock timeout."""
    unexpected = [e for e in errors if not isinstance(e, kind) or any(getattr(e, k) != v for k, v in attrs.items())]
    assert not unexpected, f"unexpected errors: {[repr(e) for e in unexpected[:5]]}"


def count(app: Flask, stmt: Any) -> Any:
    with app.app_context():
        store = app.extensions["loyalty"].store
        with store.work(write=False) as session:
            return session.scalar(stmt)


def member_state(app: Flask, user_id: str) -> tuple[int, int]:
    with app.app_context():
        store = app.extensions["loyalty"].store
        with store.work(write=False) as session:
            member = session.scalars(select(Member).where(Member.user_id == user_id)).one()
            return member.points_balance, member.points_pending


def entries(app: Flask, user_id: str) -> list[LedgerEntry]:
    with app.app_context():
        store = app.extensions["loyalty"].store
        with store.work(write=False) as session:
            return list(
                session.scalars(
                    select(LedgerEntry)
                    .join(Member, Member.id == LedgerEntry.member_id)
                    .where(Member.user_id == user_id)
                    .order_by(LedgerEntry.id)
                )
            )


def verify(app: Flask) -> list[Any]:
    with app.app_context():
        return Loyalty().verify()


def reward(loyalty: Loyalty, cost: int) -> int:
    return loyalty.create_reward(name=f"{cost} points off", kind="fixed_amount", cost_points=cost, amount="5.00").id


# (a) redemptions ---------------------------------------------------------------------------


def test_fifty_concurrent_redemptions_against_a_balance_for_one_issue_one_coupon(app, loyalty) -> None:
    loyalty.enroll("u1")  # 100 sign-up points, available at once
    reward_id = reward(loyalty, 100)

    outcomes = run_together(app, 50, lambda i: Loyalty().redeem("u1", reward_id))

    assert len(successes(outcomes)) == 1
    assert_only(failures(outcomes), InsufficientPoints)
    assert count(app, select(func.count()).select_from(Coupon)) == 1
    assert member_state(app, "u1") == (0, 0)
    redeemed = [e for e in entries(app, "u1") if e.kind == "redeem"]
    assert [e.points for e in redeemed] == [-100]
    assert min(e.balance_after for e in entries(app, "u1")) >= 0
    assert verify(app) == []


def test_concurrent_redemptions_of_a_cheap_reward_spend_exactly_the_balance(app, loyalty) -> None:
    loyalty.enroll("u1")
    loyalty.adjust("u1", 150, reason="goodwill", actor="admin")  # 250 in all
    reward_id = reward(loyalty, 60)

    outcomes = run_together(app, 50, lambda i: Loyalty().redeem("u1", reward_id))

    assert len(successes(outcomes)) == 4
    assert_only(failures(outcomes), InsufficientPoints)
    assert count(app, select(func.count()).select_from(Coupon)) == 4
    assert member_state(app, "u1") == (250 - 4 * 60, 0)
    assert min(e.balance_after for e in entries(app, "u1")) >= 0
    assert verify(app) == []


# (b) one order delivered twenty times -----------------------------------------------------


def deliver_webhook(app: Flask, body: bytes) -> tuple[int, dict[str, Any]]:
    """One delivery through its own test client, as a separate HTTP connection would be."""
    client = app.test_client()
    response = client.post(
        "/loyalty/api/v1/orders",
        data=body,
        headers={HEADER: sign(body, SECRET), "Content-Type": "application/json"},
    )
    return response.status_code, response.get_json()


def test_twenty_concurrent_deliveries_of_one_order_award_points_once(app, loyalty) -> None:
    loyalty.enroll("u1")
    body = json.dumps({"order_id": "o-1", "user_id": "u1", "total": ORDER_TOTAL, "lines": LINES}).encode()

    def deliver(i: int) -> tuple[str, Any]:
        if i % 2:
            return "webhook", deliver_webhook(app, body)
        with app.app_context():
            return "call", Loyalty().record_order("o-1", "u1", Decimal(ORDER_TOTAL), lines=LINES)

    outcomes = run_together(app, 20, deliver, push_context=False)

    assert failures(outcomes) == []
    calls = [value for how, value in successes(outcomes) if how == "call"]
    hooks = [value for how, value in successes(outcomes) if how == "webhook"]
    assert {status for status, _ in hooks} <= {200, 201}, hooks
    firsts = [r for r in calls if not r.repeat] + [body for status, body in hooks if status == 201]
    assert len(firsts) == 1
    assert {r.points_awarded for r in calls} == {59}
    assert {body["points_awarded"] for _, body in hooks} == {59}
    assert count(app, select(func.count()).select_from(Order)) == 1
    assert count(app, select(func.count()).where(LedgerEntry.cause == "order:o-1")) == 1
    assert member_state(app, "u1") == (100, 59)
    assert verify(app) == []


def test_twenty_concurrent_deliveries_with_conflicting_content_keep_the_first(app, loyalty) -> None:
    loyalty.enroll("u1")

    def deliver(i: int) -> Any:
        return Loyalty().record_order("o-1", "u1", f"{10 + i}.00")

    outcomes = run_together(app, 20, deliver)

    assert len(successes(outcomes)) == 1
    assert_only(failures(outcomes), ConflictingDuplicate)
    assert count(app, select(func.count()).where(LedgerEntry.cause == "order:o-1")) == 1
    assert member_state(app, "u1")[1] == successes(outcomes)[0].points_awarded
    assert verify(app) == []


# (c) one coupon used fifty times ----------------------------------------------------------


def test_fifty_concurrent_uses_of_one_coupon_let_exactly_one_order_through(app, loyalty) -> None:
    loyalty.enroll("u1")
    code = loyalty.redeem("u1", reward(loyalty, 100)).code

    outcomes = run_together(app, 50, lambda i: Loyalty().use_coupon(code, "u1", f"o-{i}"))

    won = successes(outcomes)
    assert len(won) == 1
    assert_only(failures(outcomes), InvalidCoupon, reason="used")
    with app.app_context():
        store = app.extensions["loyalty"].store
        with store.work(write=False) as session:
            coupon = session.scalars(select(Coupon).where(Coupon.code == code)).one()
            assert coupon.status == "used"
            assert coupon.order_id == won[0].order_id
    assert verify(app) == []


# (d) refunds racing past the paid total ---------------------------------------------------


def test_concurrent_refunds_never_refund_more_than_was_paid(app, loyalty) -> None:
    loyalty.enroll("u1")
    loyalty.record_order("o-1", "u1", "100.00")  # 100 points, pending

    outcomes = run_together(app, 10, lambda i: Loyalty().record_refund(f"r-{i}", "o-1", "30.00"))

    done = successes(outcomes)
    assert len(done) == 3
    assert_only(failures(outcomes), BadInput)
    with app.app_context():
        store = app.extensions["loyalty"].store
        with store.work(write=False) as session:
            order = session.scalars(select(Order).where(Order.order_id == "o-1")).one()
            assert order.refunded_total == Decimal("90.00")
            assert order.points_clawed_back == 90
    assert sum(r.points_clawed_back for r in done) == 90
    clawbacks = [e for e in entries(app, "u1") if e.kind == "clawback"]
    assert sum(e.pending + e.points for e in clawbacks) == -90
    assert member_state(app, "u1") == (100, 10)
    assert verify(app) == []


def test_concurrent_refunds_of_available_points_to_the_full_total_claw_back_all_and_give_the_coupon_back(
    app: Flask, loyalty: Loyalty, clock: Clock
) -> None:
    loyalty.enroll("u1")
    code = loyalty.redeem("u1", reward(loyalty, 100)).code
    loyalty.use_coupon(code, "u1", "o-1")
    loyalty.record_order("o-1", "u1", "80.00")  # paid after the coupon's 5.00
    clock.advance(days=15)
    release_pending(app.extensions["loyalty"].store, now=clock())
    assert member_state(app, "u1") == (80, 0)

    outcomes = run_together(app, 12, lambda i: Loyalty().record_refund(f"r-{i}", "o-1", "20.00"))

    done = successes(outcomes)
    assert len(done) == 4
    assert_only(failures(outcomes), BadInput)
    assert sum(r.points_clawed_back for r in done) == 80
    assert member_state(app, "u1") == (0, 0)
    with app.app_context():
        store = app.extensions["loyalty"].store
        with store.work(write=False) as session:
            coupon = session.scalars(select(Coupon).where(Coupon.code == code)).one()
            assert (coupon.status, coupon.order_id) == ("active", None)
    assert [e.kind for e in entries(app, "u1")].count("redeem") == 1
    assert verify(app) == []


def test_twenty_concurrent_deliveries_of_one_refund_claw_back_once(app, loyalty) -> None:
    loyalty.enroll("u1")
    loyalty.record_order("o-1", "u1", "100.00")

    outcomes = run_together(app, 20, lambda i: Loyalty().record_refund("r-1", "o-1", "25.00"))

    done = successes(outcomes)
    assert failures(outcomes) == []
    assert [r.repeat for r in done].count(False) == 1
    assert {r.points_clawed_back for r in done} == {25}
    assert count(app, select(func.count()).where(LedgerEntry.cause == "refund:r-1")) == 1
    assert count(app, select(func.count()).select_from(ProcessedEvent)) == 1
    assert member_state(app, "u1") == (100, 75)
    assert verify(app) == []


# (e) one activity award, twenty times -----------------------------------------------------


def test_twenty_concurrent_awards_with_one_key_count_once(app, loyalty) -> None:
    loyalty.enroll("u1")

    outcomes = run_together(app, 20, lambda i: Loyalty().award("u1", 20, "review", key="review:42"))

    done = successes(outcomes)
    assert failures(outcomes) == []
    assert [r.repeat for r in done].count(False) == 1
    assert count(app, select(func.count()).where(LedgerEntry.kind == "award")) == 1
    assert member_state(app, "u1") == (120, 0)
    assert verify(app) == []


# The host's own db and session ------------------------------------------------------------


@pytest.fixture
def host(database_url: str, tmp_path: Any, clock: Clock) -> Iterator[tuple[Flask, SQLAlchemy]]:
    """A shop with its own Flask-SQLAlchemy ``db``: the plugin never commits, the shop does."""
    db = SQLAlchemy()
    app = Flask("loyalty_host", instance_path=str(tmp_path / "host"))
    app.config.update(
        TESTING=True, SECRET_KEY="host-secret", SQLALCHEMY_DATABASE_URI=database_url, LOYALTY_WEBHOOK_SECRET=[SECRET]
    )
    db.init_app(app)
    Loyalty().init_app(app, db=db)
    app.extensions["loyalty"].clock = clock
    with app.app_context():
        Base.metadata.create_all(db.engine)
    yield app, db
    with app.app_context():
        app.extensions["loyalty"].close()
        db.engine.dispose()


def host_call(db: SQLAlchemy, call: Callable[[], Any]) -> Any:
    """What a shop's view does: the plugin's call and the shop's commit, one transaction."""
    try:
        result = call()
        db.session.commit()
        return result
    except BaseException:
        db.session.rollback()
        raise


def test_host_session_fifty_concurrent_redemptions_issue_one_coupon(host) -> None:
    app, db = host
    with app.app_context():
        host_call(db, lambda: Loyalty().enroll("u1"))
        reward_id = host_call(db, lambda: reward(Loyalty(), 100))

    outcomes = run_together(app, 50, lambda i: host_call(db, lambda: Loyalty().redeem("u1", reward_id)))

    assert len(successes(outcomes)) == 1
    assert_only(failures(outcomes), InsufficientPoints)
    assert count(app, select(func.count()).select_from(Coupon)) == 1
    assert member_state(app, "u1") == (0, 0)
    assert verify(app) == []


def test_host_session_concurrent_deliveries_and_coupon_uses_count_once(host) -> None:
    app, db = host
    with app.app_context():
        host_call(db, lambda: Loyalty().enroll("u1"))
        code = host_call(db, lambda: Loyalty().redeem("u1", reward(Loyalty(), 100)).code)

    def checkout(i: int) -> Any:
        def both() -> Any:
            coupon = Loyalty().use_coupon(code, "u1", "o-1")
            return coupon, Loyalty().record_order("o-1", "u1", "45.00", lines=LINES[:1])

        return host_call(db, both)

    outcomes = run_together(app, 20, checkout)

    assert failures(outcomes) == []
    assert [receipt.repeat for _, receipt in successes(outcomes)].count(False) == 1
    assert count(app, select(func.count()).where(LedgerEntry.cause == "order:o-1")) == 1
    assert member_state(app, "u1") == (0, 45)
    assert verify(app) == []


def test_host_session_concurrent_refunds_never_refund_more_than_was_paid(host) -> None:
    app, db = host
    with app.app_context():
        host_call(db, lambda: Loyalty().enroll("u1"))
        host_call(db, lambda: Loyalty().record_order("o-1", "u1", "100.00"))

    outcomes = run_together(app, 10, lambda i: host_call(db, lambda: Loyalty().record_refund(f"r-{i}", "o-1", "30.00")))

    assert len(successes(outcomes)) == 3
    assert_only(failures(outcomes), BadInput)
    with app.app_context():
        order = db.session.scalars(select(Order).where(Order.order_id == "o-1")).one()
        assert (order.refunded_total, order.points_clawed_back) == (Decimal("90.00"), 90)
    assert member_state(app, "u1") == (100, 10)
    assert verify(app) == []


# Lock order between the jobs and a referral credit ----------------------------------------


def wait_for_lock_waiters(engine: Any, n: int) -> None:
    """Until ``n`` sessions of this database wait on a lock: the threads are queued in a known order.

    Polls PostgreSQL's own view of the queue instead of sleeping for a guessed time.
    """
    deadline = time.monotonic() + JOIN_TIMEOUT
    query = text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            if conn.scalar(query) >= n:
                return
    pytest.fail(f"{n} sessions never queued on the member's row lock")


@pytest.mark.postgres_only
def test_first_order_of_a_referred_member_while_a_job_runs_does_not_deadlock(
    postgres_url: str, tmp_path: Any, clock: Clock
) -> None:
    """The expiry job locks members in id order; the referral credit must not lock them the other way.

    A referrer (lower id) and the member they referred both have points due to expire. The
    job takes the referrer, then the member; the member's first order takes the member, then
    the referrer for the referral bonus. Queued in that order behind a held lock, the two
    must both finish, not meet in a deadlock that PostgreSQL breaks by failing one of them.
    """
    app = make_app(postgres_url, str(tmp_path / "instance"))
    app.extensions["loyalty"].clock = clock
    store = app.extensions["loyalty"].store
    with app.app_context():
        referrer = Loyalty().enroll("referrer")
        Loyalty().enroll("friend", referral_code=referrer.referral_code)
    clock.advance(days=366)  # both sign-up lots are due to expire
    engine = create_engine(postgres_url)
    try:
        with engine.connect() as blocker:
            held = blocker.begin()
            blocker.execute(text("SELECT id FROM loyalty_members WHERE user_id = 'referrer' FOR UPDATE"))
            outcomes: dict[str, Outcome] = {"job": Outcome(), "order": Outcome()}

            def in_thread(name: str, call: Callable[[], Any]) -> threading.Thread:
                def target() -> None:
                    with app.app_context():
                        try:
                            outcomes[name].value = call()
                        except BaseException as exc:
                            outcomes[name].error = exc

                thread = threading.Thread(target=target, name=name, daemon=True)
                thread.start()
                return thread

            job = in_thread("job", lambda: expire_points(store, now=clock()))
            wait_for_lock_waiters(engine, 1)
            order = in_thread("order", lambda: Loyalty().record_order("o-1", "friend", "50.00"))
            wait_for_lock_waiters(engine, 2)
            held.rollback()
            for thread in (job, order):
                thread.join(JOIN_TIMEOUT)
                assert not thread.is_alive(), f"{thread.name} still running after {JOIN_TIMEOUT}s"
    finally:
        engine.dispose()
        app.extensions["loyalty"].close()

    assert outcomes["job"].error is None, repr(outcomes["job"].error)
    assert outcomes["order"].error is None, repr(outcomes["order"].error)
    assert outcomes["job"].value.done == 2
    assert outcomes["order"].value.points_awarded == 50
    assert member_state(app, "referrer") == (300, 0)
    assert member_state(app, "friend") == (300, 50)
    assert verify(app) == []
