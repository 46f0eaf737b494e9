"""Property-based fuzzing of the JSON API v1 against its own OpenAPI document.

Schemathesis generates requests (valid and invalid) for every operation in
``/loyalty/api/v1/openapi.json`` and sends them through the real Flask app (WSGI), on SQLite and
on PostgreSQL. Whoever sends them — a visitor, a logged-in member, a member without the CSRF
token, the shop's server with a valid webhook signature — the API must:

* never answer 5xx (an exception escaping a view fails the test with its traceback),
* answer only statuses the document lists for the operation,
* give every 4xx the shape ``{"error": {"code": str, "message": str}}``, both non-empty,
* leave the ledger consistent afterwards (``Loyalty().verify() == []``).

One app per test, reused by every example (no database per example). Every fuzz run has a fixed
seed (from its label), so CI sends the same requests each time. Every failure of every operation
is collected and reported together, each with the request that triggers it; inputs the fuzzer
found hard are also kept as fixed cases (``HARD_INPUTS``) so they are checked whatever it draws.
"""

from __future__ import annotations

import json
import time
import traceback
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, Phase, given, note, seed, settings
from hypothesis import strategies as st
from schemathesis.core import NotSet
from schemathesis.core.transport import Response
from schemathesis.generation import GenerationMode

from loyalty_plugin import Loyalty, sign_webhook

from .conftest import Clock, login, make_app

PREFIX = "/loyalty/api/v1"
SECRET = "whsec-test-0123456789abcdef"
MEMBER = "u1"
OTHER = "u2"
#: Examples per operation and sender (positive and negative cases mixed).
EXAMPLES = 40
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=False,  # each run gets its own fixed seed instead (Run.fuzz), so CI is reproducible
    database=None,
    print_blob=False,
    phases=(Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink),  # no slow "explain"
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)


def cases(operation: Any) -> st.SearchStrategy[Any]:
    """Schemathesis' cases for the operation: valid ones and ones that break the document."""
    return st.one_of(
        operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
        operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
    )


# The app and its data -----------------------------------------------------------------------


@pytest.fixture
def fuzz_app(database_url: str, tmp_path: Any, clock: Clock) -> Iterator[Flask]:
    """The test app with rate limits out of the way, so 429s hide nothing."""
    app = make_app(
        database_url,
        str(tmp_path / "instance"),
        LOYALTY_RATE_LIMIT_COUPONS="100000 per minute",
        LOYALTY_RATE_LIMIT_REDEEM="100000 per minute",
    )
    app.extensions["loyalty"].clock = clock
    yield app
    app.extensions["loyalty"].close()


class Seeded:
    """What the fuzzer can aim at: real reward ids, coupon codes and order ids."""

    def __init__(self, reward_ids: list[int], coupon_ids: list[int], codes: list[str], order_ids: list[str]) -> None:
        self.reward_ids = reward_ids
        self.coupon_ids = coupon_ids
        self.codes = codes
        self.order_ids = order_ids


def seed_data(app: Flask) -> Seeded:
    """A member with points, orders, rewards of every kind and coupons in several states."""
    with app.app_context():
        loyalty = Loyalty()
        loyalty.enroll(MEMBER)
        loyalty.enroll(OTHER)
        loyalty.award(MEMBER, 900, "review", key="k")
        loyalty.award(OTHER, 300, "review", key="k2")
        rewards = [
            loyalty.create_reward(name="5 off", kind="fixed_amount", cost_points=100, amount="5.00"),
            loyalty.create_reward(
                name="10% off", kind="percent", cost_points=100, percent="10", max_discount="15", min_order_total="20"
            ),
            loyalty.create_reward(name="Free shipping", kind="free_shipping", cost_points=50, per_member_limit=2),
            loyalty.create_reward(name="Mug", kind="free_item", sku="MUG", cost_points=10, stock=1),
            loyalty.create_reward(name="Gold gift", kind="fixed_amount", amount="20", cost_points=10, min_tier="gold"),
        ]
        retired = loyalty.create_reward(name="Old", kind="fixed_amount", amount="1", cost_points=10)
        loyalty.retire_reward(retired.id)
        five = loyalty.redeem(MEMBER, rewards[0].id)
        percent = loyalty.redeem(MEMBER, rewards[1].id)
        used = loyalty.redeem(MEMBER, rewards[2].id)
        theirs = loyalty.redeem(OTHER, rewards[0].id)
        loyalty.record_order("o1", MEMBER, "120.00", [{"sku": "SKU-1", "qty": 2, "unit_price": "60.00"}])
        loyalty.record_order("o2", OTHER, "70.00", shipping="5.00")
        loyalty.use_coupon(used.code, MEMBER, "o1")
        loyalty.record_refund("r1", "o1", "10.00")
        too_big = [0, 10**6, 2**31, 2**63]  # past PostgreSQL's integer, past SQLite's
        reward_ids = [r.id for r in rewards] + [retired.id, *too_big]
        coupon_ids = [five.id, percent.id, used.id, theirs.id, *too_big]
        codes = [five.code, percent.code, used.code, theirs.code]
        codes += [five.code.lower(), "-".join(five.code[i : i + 4] for i in range(0, len(five.code), 4)), "NOPE"]
        assert loyalty.verify() == []
        return Seeded(reward_ids, coupon_ids, codes, ["o1", "o2", "o3", "w1"])


def load_schema(app: Flask) -> tuple[Any, dict[str, Any]]:
    """The schemathesis schema, and the raw document to read documented statuses from."""
    schema = schemathesis.openapi.from_wsgi(f"{PREFIX}/openapi.json", app)
    served = app.test_client().get(f"{PREFIX}/openapi.json")
    assert served.status_code == 200 and served.get_json()["openapi"].startswith("3.1")
    return schema, served.get_json()


def operations(schema: Any) -> list[Any]:
    return [result.ok() for result in schema.get_all_operations()]


def definition(document: dict[str, Any], operation: Any) -> dict[str, Any]:
    return document["paths"][operation.path][operation.method.lower()]


def documented_statuses(document: dict[str, Any], operation: Any) -> set[int]:
    return {int(code) for code in definition(document, operation)["responses"]}


def is_member_operation(document: dict[str, Any], operation: Any) -> bool:
    return bool(definition(document, operation).get("security"))


def is_webhook(operation: Any) -> bool:
    return operation.path in ("/orders", "/refunds")


# Checking one exchange -----------------------------------------------------------------------


def describe(case: Any, *, headers: dict[str, str] | None = None, body: bytes | None = None) -> str:
    """The request as sent, for the failure report."""
    lines = [f"{case.method.upper()} {PREFIX}{case.formatted_path}"]
    if case.query:
        lines.append(f"  query: {case.query!r}")
    sent_headers = {**(case.headers or {}), **(headers or {})}
    if sent_headers:
        lines.append(f"  headers: {sent_headers!r}")
    if case.cookies:
        lines.append(f"  cookies: {case.cookies!r}")
    if body is not None:
        lines.append(f"  body (raw): {body[:2000]!r}")
    elif isinstance(case.body, bytes | str):
        lines.append(f"  body ({case.media_type}, raw): {case.body[:2000]!r}")
    elif not isinstance(case.body, NotSet):
        lines.append(f"  body ({case.media_type}): {json.dumps(case.body)[:2000]}")
    return "\n".join(lines)


def send(case: Any, client: Any, *, headers: dict[str, str] | None = None, body: bytes | None = None) -> Any:
    """Send the case through the WSGI app; an exception escaping a view is a 500 in production.

    With ``body``, the exact bytes are sent with ``headers`` on top of the generated ones, past
    schemathesis' transport (which drops a header a negative case left out, e.g. a signature
    computed for the body).
    """
    request = describe(case, headers=headers, body=body)
    note(request)
    try:
        if body is None:
            return case.call(session=client, headers=headers)
        sent = client.open(
            PREFIX + case.formatted_path,
            method=case.method.upper(),
            query_string=case.query or None,
            headers={**(case.headers or {}), **(headers or {})},
            data=body,
        )
        return Response.from_any(sent)
    except Exception as exc:
        raise AssertionError(f"Server error (500 in production) for:\n{request}") from exc


def check(case: Any, response: Any, documented: set[int]) -> dict[str, Any] | None:
    """The contract every answer keeps; returns the JSON error body for 4xx."""
    content_type = (response.headers.get("content-type") or [""])[0]
    found = check_contract(response.status_code, content_type, response.content, documented)
    # Schemathesis' own view of the same contract (documented status, content type, schema).
    case.validate_response(
        response,
        checks=[
            schemathesis.checks.not_a_server_error,
            schemathesis.checks.status_code_conformance,
            schemathesis.checks.content_type_conformance,
            schemathesis.checks.response_schema_conformance,
        ],
    )
    return found


def check_contract(status: int, content_type: str, content: bytes, documented: set[int]) -> dict[str, Any] | None:
    text = content[:500]
    assert status < 500, f"{status} server error: {text!r}"
    assert status in documented, f"status {status} is not documented (documented: {sorted(documented)}): {text!r}"
    assert content_type.startswith("application/json"), f"{status} with content type {content_type!r}: {text!r}"
    payload = json.loads(content)
    found = None
    if 400 <= status < 500:
        assert isinstance(payload, dict) and set(payload) == {"error"}, f"{status} without the error shape: {text!r}"
        found = payload["error"]
        assert isinstance(found, dict) and set(found) == {"code", "message"}, f"bad error object: {text!r}"
        for key in ("code", "message"):
            assert isinstance(found[key], str) and found[key].strip(), f"error.{key} empty or not text: {text!r}"
    return found


# Running every operation --------------------------------------------------------------------


class Run:
    """Fuzzes several operations, keeping every operation's failure and the statuses seen."""

    def __init__(self) -> None:
        self.failures: list[str] = []
        self.statuses: dict[str, set[int]] = defaultdict(set)

    def fuzz(
        self, label: str, strategy: st.SearchStrategy[Any], exchange: Callable[[Any], int], examples: int = EXAMPLES
    ) -> None:
        @seed(zlib.crc32(label.encode()))
        @settings(FUZZ, max_examples=examples)
        @given(strategy)
        def run(example: Any) -> None:
            self.statuses[label].add(exchange(example))

        started = time.perf_counter()
        try:
            run()
        except Exception as exc:  # collect, so one bug does not hide the others
            self.failures.append(f"=== {label}\n" + "".join(traceback.format_exception(exc)))
        print(f"{label}: {time.perf_counter() - started:.2f}s {sorted(self.statuses[label])}")

    def assert_no_failures(self, app: Flask) -> None:
        """Every operation's failures, and whether the ledger still adds up (checked either way)."""
        with app.app_context():
            discrepancies = Loyalty().verify()
        if discrepancies:
            self.failures.append(f"=== ledger after the run\n{discrepancies!r}")
        if self.failures:
            pytest.fail(f"{len(self.failures)} failure(s):\n\n" + "\n\n".join(self.failures), pytrace=False)

    def assert_reached(self, label: str, statuses: set[int]) -> None:
        """The fuzzer got past the gates (login, CSRF, signature) and into the code."""
        assert self.statuses[label] & statuses, f"{label}: only saw {sorted(self.statuses[label])}"


def aimed(case_strategy: st.SearchStrategy[Any], seeded: Seeded) -> st.SearchStrategy[Any]:
    """Half of the cases with real reward ids, coupon codes and order ids, to get past 404s."""

    @st.composite
    def build(draw: st.DrawFn) -> Any:
        case = draw(case_strategy)
        if not draw(st.booleans()):
            return case
        params = case.path_parameters
        if isinstance(params, dict) and "reward_id" in params:
            params["reward_id"] = draw(st.sampled_from(seeded.reward_ids))
        if isinstance(params, dict) and "coupon_id" in params:
            params["coupon_id"] = draw(st.sampled_from(seeded.coupon_ids))
        if isinstance(case.body, dict):
            if "code" in case.body:
                case.body["code"] = draw(st.sampled_from(seeded.codes))
            if "order_total" in case.body:
                case.body["order_total"] = draw(st.sampled_from(["0", "4.99", "20", "100.00", 100, 250]))
            if "order_id" in case.body:
                case.body["order_id"] = draw(st.sampled_from(seeded.order_ids))
            if "user_id" in case.body:
                case.body["user_id"] = draw(st.sampled_from([MEMBER, OTHER, "stranger", None]))
        return case

    return build()


# 1. Visitors ---------------------------------------------------------------------------------


def test_a_visitor_gets_documented_json_errors_and_never_a_5xx(fuzz_app: Flask) -> None:
    """No login; the generated (random or missing) session cookie and webhook signature are sent.
    CSRF stays on: it is only asked of logged-in users, so visitors get their 401s."""
    seeded = seed_data(fuzz_app)
    schema, document = load_schema(fuzz_app)
    client = fuzz_app.test_client()
    run = Run()
    for operation in operations(schema):
        documented = documented_statuses(document, operation)

        def exchange(case: Any, documented: set[int] = documented) -> int:
            response = send(case, client)
            error = check(case, response, documented)
            if is_member_operation(document, case.operation) and response.status_code < 300:
                raise AssertionError(f"a visitor got {response.status_code} from a member-only operation")
            if is_webhook(case.operation) and error is not None:
                assert error["code"] == "bad_signature", error  # a made-up signature is refused first
            return response.status_code

        run.fuzz(f"visitor {operation.label}", aimed(cases(operation), seeded), exchange, examples=30)
    run.assert_no_failures(fuzz_app)
    fuzzed = {label.removeprefix("visitor ") for label in run.statuses}
    described = {f"{m.upper()} {path}" for path, ops in document["paths"].items() for m in ops}
    assert described - fuzzed == {"GET /openapi.json"}  # schemathesis leaves out the document itself


# 2. A logged-in member -----------------------------------------------------------------------


def member_client(app: Flask) -> Any:
    client = app.test_client()
    login(client, MEMBER)
    return client


def without_session_cookie(case: Any) -> Any:
    """The member's own cookie comes from the client; drop the generated ``session`` cookie."""
    if case.cookies and "session" in case.cookies:
        case.cookies = {k: v for k, v in case.cookies.items() if k != "session"} or None
    return case


def test_a_member_never_gets_a_5xx_and_the_ledger_stays_consistent(fuzz_app: Flask) -> None:
    fuzz_app.config["WTF_CSRF_ENABLED"] = False  # so generated bodies reach the code
    seeded = seed_data(fuzz_app)
    schema, document = load_schema(fuzz_app)
    client = member_client(fuzz_app)
    run = Run()
    for operation in operations(schema):
        if not is_member_operation(document, operation):
            continue
        documented = documented_statuses(document, operation)

        def exchange(case: Any, documented: set[int] = documented) -> int:
            response = send(without_session_cookie(case), client)
            error = check(case, response, documented)
            if error is not None:
                assert error["code"] not in ("login_required", "not_enrolled", "csrf_failed"), error
            return response.status_code

        run.fuzz(f"member {operation.label}", aimed(cases(operation), seeded), exchange)
    run.assert_no_failures(fuzz_app)
    for operation in operations(schema):
        if is_member_operation(document, operation):
            run.assert_reached(f"member {operation.label}", {200, 201})


# 3. CSRF on: writes without the token are refused, with it they go through ------------------------


def test_with_csrf_on_member_writes_need_the_token(fuzz_app: Flask) -> None:
    fuzz_app.config["WTF_CSRF_ENABLED"] = True
    seeded = seed_data(fuzz_app)
    schema, document = load_schema(fuzz_app)
    client = member_client(fuzz_app)
    token = client.get(f"{PREFIX}/me").get_json()["csrf_token"]  # also stores it in the session cookie
    with fuzz_app.app_context():
        before = Loyalty().balance(MEMBER)
    writes = [op for op in operations(schema) if is_member_operation(document, op) and op.method.lower() == "post"]
    assert writes

    without_token = Run()
    for operation in writes:
        documented = documented_statuses(document, operation)

        def refused(case: Any, documented: set[int] = documented) -> int:
            response = send(without_session_cookie(case), client)
            error = check(case, response, documented)
            assert error is not None, f"a write without the CSRF token got {response.status_code}"
            if response.status_code == 404:  # a path no route matches: the API's catch-all
                assert error["code"] == "not_found", error
            else:
                assert (response.status_code, error["code"]) == (400, "csrf_failed"), error
            return response.status_code

        without_token.fuzz(f"no CSRF token {operation.label}", aimed(cases(operation), seeded), refused, examples=25)
    without_token.assert_no_failures(fuzz_app)
    with fuzz_app.app_context():
        assert Loyalty().balance(MEMBER) == before  # every refused write changed nothing

    with_token = Run()
    for operation in writes:
        documented = documented_statuses(document, operation)

        def accepted(case: Any, documented: set[int] = documented) -> int:
            response = send(without_session_cookie(case), client, headers={"X-CSRFToken": token})
            error = check(case, response, documented)
            assert error is None or error["code"] != "csrf_failed", error
            return response.status_code

        with_token.fuzz(f"CSRF token {operation.label}", aimed(cases(operation), seeded), accepted, examples=25)
    with_token.assert_no_failures(fuzz_app)
    for operation in writes:
        with_token.assert_reached(f"CSRF token {operation.label}", {200, 201})


# 4. Validly signed webhooks: the payload validation is what gets fuzzed ---------------------------

#: JSON number and string texts that are hard on money parsing: exponents, too many decimals,
#: negative zero, non-finite values Python's json accepts, huge and tiny magnitudes.
MONEY_TEXTS = st.sampled_from(
    [
        "0",
        "0.00",
        "-0",
        "-0.00",
        "1",
        "10.5",
        "42.50",
        "120.00",
        "9999999999.99",
        "10000000000",
        "12.345",
        "-1",
        "1e2",
        "1E+2",
        "1e-2",
        "1e30",
        "1e400",
        "-1e30",
        "1e-400",
        "123456789012345678901234567890.12",
        "NaN",
        "Infinity",
        "-Infinity",
        "true",
        "null",
        "[]",
        "{}",
        '"5"',
        '"5.00"',
        '" 7.25 "',
        '"1e30"',
        '"1E+30"',
        '"1e-30"',
        '"0x10"',
        '"NaN"',
        '"sNaN"',
        '"-Infinity"',
        '"1_000"',
        '"\\u0663\\u066b\\u0665"',  # Arabic-Indic digits and decimal separator
        '"\\u0663.\\u0665"',
        '""',
        '"abc"',
        "9" * 60,
    ]
)


def offsets() -> st.SearchStrategy[timezone]:
    return st.builds(
        timezone, st.timedeltas(min_value=timedelta(hours=-23, minutes=-59), max_value=timedelta(hours=23, minutes=59))
    )


def moments() -> st.SearchStrategy[str]:
    """placed_at: ISO texts, some at the ends of the calendar with far-out offsets."""
    near = st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2026, 3, 1))
    extreme = st.sampled_from([datetime(1, 1, 1), datetime(9999, 12, 31, 23, 59, 59)])
    aware = st.builds(lambda d, tz: d.replace(tzinfo=tz), st.one_of(near, extreme), offsets())
    texts = st.one_of(
        near.map(datetime.isoformat),
        aware.map(datetime.isoformat),
        st.sampled_from(["2026-01-05", "2026-01-05T12:00:00Z", "2026-13-01", "yesterday", "", "2026-01-05T12:00Z"]),
        st.text(max_size=30),
    )
    return texts.map(json.dumps)


def json_texts(values: st.SearchStrategy[Any]) -> st.SearchStrategy[str]:
    return values.map(lambda v: json.dumps(v, ensure_ascii=False))


ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


def ids(pool: list[str]) -> st.SearchStrategy[str]:
    """Ids from a small pool (repeats and conflicts) or made up, as JSON texts."""
    return st.one_of(
        json_texts(st.sampled_from(pool)),
        json_texts(st.text(max_size=300)),
        st.sampled_from(["1", "-5", str(10**30), "null", "true", "[]", "{}", '"  "']),
    )


def raw_object(
    required: dict[str, st.SearchStrategy[str]], optional: dict[str, st.SearchStrategy[str]], extra: bool = True
) -> st.SearchStrategy[bytes]:
    """A JSON object written by hand from raw value texts (so ``1e400`` or ``NaN`` go through as-is).

    The required fields are there nine times out of ten; an unknown field now and then."""
    fields = st.one_of(
        *[st.fixed_dictionaries(required, optional=optional)] * 9,
        st.fixed_dictionaries({}, optional={**required, **optional}),
    )
    chosen = fields
    if extra:
        unknown = st.dictionaries(st.text(max_size=10), json_texts(ANY_JSON), max_size=1)
        chosen = st.one_of(fields, fields, fields, st.builds(lambda a, b: {**b, **a}, fields, unknown))

    def write(obj: dict[str, str]) -> bytes:
        return ("{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in obj.items()) + "}").encode()

    return chosen.map(write)


def line_texts() -> st.SearchStrategy[str]:
    one = raw_object(
        {"sku": json_texts(st.text(max_size=120)) | st.just('"SKU-1"'), "unit_price": MONEY_TEXTS},
        {
            "qty": st.sampled_from(["1", "2", "0", "-1", "1.5", "1e3", '"3"', '"x"', "1000001", "true", "null"]),
            "category": json_texts(st.none() | st.text(max_size=120)),
        },
        extra=False,
    ).map(bytes.decode)
    return st.one_of(
        st.lists(one, max_size=4).map(lambda items: "[" + ",".join(items) + "]"),
        st.sampled_from(['"SKU-1"', "{}", "[1]", "null", "[[]]"]),
    )


def order_bodies(seeded: Seeded) -> st.SearchStrategy[bytes]:
    order = raw_object(
        {"order_id": ids(seeded.order_ids), "total": MONEY_TEXTS},
        {
            "user_id": ids([MEMBER, OTHER, "stranger"]),
            "shipping": MONEY_TEXTS,
            "tax": MONEY_TEXTS,
            "placed_at": moments(),
            "lines": line_texts(),
        },
    )
    return st.one_of(order, order, order, odd_bodies())


def refund_bodies(seeded: Seeded) -> st.SearchStrategy[bytes]:
    refund = raw_object(
        {"refund_id": ids(["r1", "r2", "r3"]), "order_id": ids(seeded.order_ids), "amount": MONEY_TEXTS},
        {},
    )
    return st.one_of(refund, refund, refund, odd_bodies())


def odd_bodies() -> st.SearchStrategy[bytes]:
    """Bodies that are not a JSON object at all."""
    return st.one_of(
        json_texts(ANY_JSON).map(str.encode),
        st.binary(max_size=40),
        st.sampled_from([b"", b"{", b"\xff\xfe{}", b'{"order_id": "\xed\xa0\x80"}', b"[" * 5000, b"1" * 5000]),
    )


def test_validly_signed_webhooks_never_get_a_5xx_and_write_whole_events_only(fuzz_app: Flask) -> None:
    seeded = seed_data(fuzz_app)
    schema, document = load_schema(fuzz_app)
    client = fuzz_app.test_client()
    run = Run()
    for operation in operations(schema):
        if not is_webhook(operation):
            continue
        documented = documented_statuses(document, operation)

        def signed(case: Any, body: bytes, documented: set[int] = documented) -> int:
            headers = {"Content-Type": "application/json", "X-Loyalty-Signature": sign_webhook(body, SECRET)}
            response = send(case, client, headers=headers, body=body)
            error = check(case, response, documented)
            assert error is None or error["code"] != "bad_signature", error
            return response.status_code

        def generated(case: Any, signed: Callable[..., int] = signed) -> int:
            if isinstance(case.body, NotSet):
                body = b""
            elif isinstance(case.body, bytes | str):
                body = case.body if isinstance(case.body, bytes) else case.body.encode(errors="surrogatepass")
            else:
                body = json.dumps(case.body).encode()
            return signed(case, body)

        def handmade(example: tuple[Any, bytes], signed: Callable[..., int] = signed) -> int:
            case, body = example
            return signed(case, body)

        run.fuzz(f"signed {operation.label}", aimed(cases(operation), seeded), generated)
        bodies = order_bodies(seeded) if operation.path == "/orders" else refund_bodies(seeded)
        run.fuzz(f"signed handmade {operation.label}", st.tuples(operation.as_strategy(), bodies), handmade)
    run.assert_no_failures(fuzz_app)
    for path in ("/orders", "/refunds"):
        run.assert_reached(f"signed POST {path}", {200, 201})
        run.assert_reached(f"signed handmade POST {path}", {422})


# 5. Inputs the fuzzer has found hard, every run ----------------------------------------------------

HARD_INPUTS = [
    # Amounts whose two-decimal form has more digits than the decimal context's 28.
    ("signed", "/orders", "/orders", b'{"order_id": "h1", "total": 1e30}'),
    ("signed", "/orders", "/orders", b'{"order_id": "h2", "total": "123456789012345678901234567890.12"}'),
    ("signed", "/orders", "/orders", b'{"order_id": "h3", "total": "10", "shipping": 1e30}'),
    ("signed", "/orders", "/orders", b'{"order_id": "h4", "total": "10", "lines": [{"sku": "A", "unit_price": 1e30}]}'),
    ("signed", "/refunds", "/refunds", b'{"refund_id": "h5", "order_id": "o1", "amount": 1e30}'),
    ("member", "/coupons/check", "/coupons/check", b'{"code": "NOPE", "order_total": 1e26}'),
    # A time at the ends of the calendar with an offset that moves it past them.
    ("signed", "/orders", "/orders", b'{"order_id": "h6", "total": "10", "placed_at": "0001-01-01T00:00:00+01:00"}'),
    ("signed", "/orders", "/orders", b'{"order_id": "h7", "total": "10", "placed_at": "9999-12-31T23:59:59-01:00"}'),
    # JSON nested deeper than the parser's recursion limit.
    ("signed", "/orders", "/orders", b"[" * 5000),
    ("signed", "/refunds", "/refunds", b"[" * 5000),
    ("member", "/coupons/check", "/coupons/check", b"[" * 5000),
    ("visitor", "/coupons/check", "/coupons/check", b"[" * 5000),  # parsed before the login check
    # Ids past the integer columns (PostgreSQL: 2**31, SQLite: 2**63).
    ("member", "/rewards/{reward_id}/redeem", f"/rewards/{2**31}/redeem", None),
    ("member", "/rewards/{reward_id}/redeem", f"/rewards/{2**63}/redeem", None),
    ("member", "/coupons/{coupon_id}", f"/coupons/{2**31}", None),
    ("member", "/coupons/{coupon_id}", f"/coupons/{2**63}", None),
]


def test_inputs_the_fuzzer_found_hard_get_a_documented_4xx(fuzz_app: Flask) -> None:
    """The fuzzer's finds as fixed cases, so they are checked every run whatever the seeds draw."""
    fuzz_app.config["WTF_CSRF_ENABLED"] = False
    seed_data(fuzz_app)
    document = fuzz_app.test_client().get(f"{PREFIX}/openapi.json").get_json()
    clients = {"member": member_client(fuzz_app), "signed": fuzz_app.test_client(), "visitor": fuzz_app.test_client()}
    failures = []
    for sender, template, path, body in HARD_INPUTS:
        method = "post" if body is not None or path.endswith("/redeem") else "get"
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if sender == "signed":
            headers["X-Loyalty-Signature"] = sign_webhook(body, SECRET)
        request = f"{method.upper()} {PREFIX}{path} body={(body or b'')[:60]!r}"
        try:
            response = clients[sender].open(PREFIX + path, method=method.upper(), headers=headers, data=body)
            documented = {int(code) for code in document["paths"][template][method]["responses"]}
            check_contract(response.status_code, response.content_type or "", response.get_data(), documented)
        except Exception as exc:
            failures.append(f"=== {request}\n{where(exc)}")
    with fuzz_app.app_context():
        assert Loyalty().verify() == []
    if failures:
        summary = f"{len(failures)} of {len(HARD_INPUTS)} hard inputs failed:\n\n"
        pytest.fail(summary + "\n".join(failures), pytrace=False)


def where(exc: BaseException) -> str:
    """The plugin's frames of the traceback and the exception: enough to find the bug."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "/loyalty_plugin/" in f.filename]
    return "".join(traceback.format_list(frames)) + "".join(traceback.format_exception_only(exc))
