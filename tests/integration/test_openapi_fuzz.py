"""Schemathesis over the app's own OpenAPI schema (/openapi.json), on both databases: inputs that
fit the schema and inputs that do not, as an admin and as a customer (bearer tokens). Whatever
comes in, the answer is never a 5xx and never an exception escaping the app; the tickets and
users routes also answer with the bodies and statuses their schema declares.

Bounded on purpose (a few examples per operation, no shrinking database) so that it runs in
well under a minute; raise POSTDESK_FUZZ_EXAMPLES locally to dig deeper.
"""
from __future__ import annotations

import json
import os
import traceback

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance
from sqlalchemy import update

from core.models import Contact
from core.sessions import start_session
from tests.integration.test_api_tickets import PEOPLE, make_world

FUZZ_EXAMPLES = int(os.environ.get("POSTDESK_FUZZ_EXAMPLES", "6"))
FUZZ_ROLES = ("admin", "customer_a")
# Operations that hash a password on purpose (argon2, ~0.1 s each) get fewer examples.
SLOW_BY_DESIGN = {"POST /api/auth/login": 2, "POST /api/auth/register": 2}
# The tickets and users API also answer exactly what their schema promises (bodies and statuses).
CONTRACT_PATHS = ("/api/tickets", "/api/users")


def _restore(world) -> None:
    """Undo what an earlier operation's examples did to the people (an admin may deactivate them)."""
    with world.desk.sessions() as s, s.begin():
        for role, (_, kind) in PEOPLE.items():
            s.execute(update(Contact).where(Contact.id == world.user_ids[role]).values(role=kind, active=True))


def _token(world, role: str) -> str:
    with world.desk.sessions() as s, s.begin():
        return start_session(s, s.get(Contact, world.user_ids[role]), kind="bearer")


def _fuzz(world, operation, role: str, mode: schemathesis.GenerationMode) -> str | None:
    """Run the examples of one operation; the failure found, described, or None."""
    ends_session = operation.path.endswith("/logout")
    checks = [not_a_server_error]
    if operation.path.startswith(CONTRACT_PATHS):
        checks += [response_schema_conformance, status_code_conformance]

    examples = min(FUZZ_EXAMPLES, SLOW_BY_DESIGN.get(operation.label, FUZZ_EXAMPLES))

    @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case) -> None:
        token = _token(world, role) if ends_session or run.token is None else run.token
        run.token = None if ends_session else token
        response = case.call(headers={"authorization": f"Bearer {token}"})
        case.validate_response(response, checks=checks)

    run.token = None
    try:
        run()
    except Unsatisfiable:  # nothing to get wrong: an operation without parameters or body
        assert mode == schemathesis.GenerationMode.NEGATIVE, operation.label
        return None
    except Exception as exc:  # noqa: BLE001 - collected, so one run reports every failing operation
        return f"{operation.label} as {role}, {mode.value} inputs:\n{_short(exc)}"
    return None


def _short(exc: BaseException) -> str:
    """The failure's first lines and its curl reproduction, without the schema dump."""
    text = "".join(traceback.format_exception_only(exc)).strip()
    notes = "\n".join(getattr(exc, "__notes__", []))
    curl = next((line.strip() for line in f"{text}\n{notes}".splitlines() if line.strip().startswith("curl ")), "")
    return "\n".join([*text.splitlines()[:6], curl])


@pytest.fixture
def world(desk):
    w = make_world(desk)
    with w.client:
        yield w


def test_no_input_makes_the_api_fail_with_a_server_error(world):
    schema = schemathesis.openapi.from_asgi("/openapi.json", world.client.app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {"POST /api/tickets", "GET /api/tickets", "PATCH /api/tickets/{ticket_id}",
            "PATCH /api/users/{user_id}"} <= {f"{op.method.upper()} {op.path}" for op in operations}
    failures = []
    for operation in operations:
        for role in FUZZ_ROLES:
            _restore(world)
            for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
                failures.append(_fuzz(world, operation, role, mode))
    found = [f for f in failures if f]
    assert not found, f"{len(found)} failing operation(s):\n\n" + "\n\n".join(found)


HOSTILE = ("lone \ud800 surrogate", "nul\x00inside")


def _poisoned(value, bad: str):
    """The same structure with every string replaced by `bad` (keys kept, so the request still fits)."""
    if isinstance(value, str):
        return bad
    if isinstance(value, dict):
        return {k: _poisoned(v, bad) for k, v in value.items()}
    if isinstance(value, list):
        return [_poisoned(v, bad) for v in value]
    return value


def test_nul_and_unpaired_surrogates_in_any_string_are_refused_not_a_crash(world):
    """Both databases refuse these characters: every route must answer 4xx before the database sees them.

    Schemathesis draws a request that fits; every string in its JSON body (escaped as JSON allows:
    \\u0000, \\ud800) and its query (NUL only: a URL carries UTF-8) is then replaced."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", world.client.app)
    bearer = {"authorization": f"Bearer {_token(world, 'admin')}"}
    failures = []
    for operation in (result.ok() for result in schema.get_all_operations()):
        if operation.path.endswith("/logout"):
            continue

        @settings(max_examples=1, deadline=None, database=None, derandomize=True, phases=[Phase.generate],
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def run(case) -> None:
            for bad in HOSTILE:
                body = case.body if isinstance(case.body, (dict, list)) else None
                query = _poisoned(dict(case.query or {}), bad) if "\x00" in bad else case.query
                answer = world.client.request(
                    operation.method.upper(), case.formatted_path, params=query,
                    content=json.dumps(_poisoned(body, bad)) if body is not None else None,
                    headers={**bearer, **({"content-type": "application/json"} if body is not None else {})})
                assert answer.status_code < 500, f"{answer.status_code} for {bad!r}"

        try:
            run()
        except Exception as exc:  # noqa: BLE001 - collected, so one run reports every failing operation
            failures.append(f"{operation.label}:\n{_short(exc)}")
    assert not failures, "\n\n".join(failures)
