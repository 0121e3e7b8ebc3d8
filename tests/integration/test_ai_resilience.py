"""Triage against a hanging or failing Mistral (the fake server, real SDK): jobs run side by side, a
circuit breaker goes offline at once after failures in a row and probes later, warnings stay few."""
from __future__ import annotations

import dataclasses
import logging
import threading
import time

from sqlalchemy import select

from core import jobs
from core.ai.breaker import CircuitBreaker
from core.ai.triage import make_triage_handler
from core.models import Ticket
from tests.fakes.mistral_server import FakeMistral, hang, ok, status
from tests.integration.test_receive_mail import mail, receive
from tests.integration.test_triage_job import KEY, mistral_for, triage_answer


def _tickets(desk, n: int) -> list[int]:
    return [receive(desk, mail(f"Printer {i}", f"Printer {i} is broken.", msgid=f"<ai{i}@x>")).ticket_id
            for i in range(n)]


def _summaries(desk, ids: list[int]) -> list[str]:
    with desk.sessions() as s:
        return [s.get(Ticket, i).summary for i in ids]


def _breaker_desk(desk, **ai):
    return dataclasses.replace(desk, settings=dataclasses.replace(
        desk.settings, ai=dataclasses.replace(desk.settings.ai, **ai)))


def test_after_failures_in_a_row_triage_goes_offline_at_once_and_warns_once(desk, caplog):
    desk = _breaker_desk(desk, breaker_failures=2, breaker_seconds=3600)
    ids = _tickets(desk, 6)
    with FakeMistral(api_key=KEY, default=status(503)) as fake, caplog.at_level(logging.WARNING):
        handler = make_triage_handler(desk.sessions, desk.settings, primary=mistral_for(desk, fake, retries=2))
        assert jobs.run_due(desk.sessions, {"triage": handler}, limit=10) == 6
        asked = len(fake.requests)
    assert asked == 2 * 3                     # two calls of three attempts, then the circuit is open
    assert all(_summaries(desk, ids))         # every ticket got its offline summary
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith("core.ai")]
    assert len(warnings) <= 2, [r.getMessage() for r in warnings]


def test_an_open_circuit_probes_again_later_and_closes_on_success(desk):
    now = [0.0]
    with FakeMistral(api_key=KEY, default=status(503)) as fake:
        breaker = CircuitBreaker(mistral_for(desk, fake), failures=1, seconds=60, clock=lambda: now[0])
        for _ in range(3):
            try:
                breaker.triage("Printer", "It smokes.")
            except Exception:
                pass
        assert len(fake.requests) == 1 and breaker.is_open
        now[0] = 61.0
        fake.script(ok(triage_answer()))
        assert breaker.triage("Printer", "It smokes.").category == "technical"   # the probe
        assert len(fake.requests) == 2 and not breaker.is_open


def test_triage_jobs_run_side_by_side_against_a_hanging_provider(desk):
    desk = _breaker_desk(desk, breaker_failures=10)
    ids = _tickets(desk, 4)
    with FakeMistral(api_key=KEY, default=hang(8)) as fake:
        handler = make_triage_handler(desk.sessions, desk.settings, primary=mistral_for(desk, fake, timeout=10))
        runner = threading.Thread(target=jobs.run_due, args=(desk.sessions, {"triage": handler}),
                                  kwargs={"limit": 10, "concurrency": 4})
        runner.start()
        deadline = time.monotonic() + 6       # one at a time, a second request comes only after 8 s
        while len(fake.requests) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        in_flight = len(fake.requests)
        fake.stop()                           # answers the hanging requests: they fail, offline fills in
        runner.join(30)
    assert in_flight == 4
    assert all(_summaries(desk, ids))
