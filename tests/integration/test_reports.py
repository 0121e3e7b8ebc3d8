"""Reports over a chosen period on both databases (a known dataset, figures checked one by one),
the page with its charts and tables, and the CSV export with the list's filters."""
from __future__ import annotations

import csv
import io
import re
import smtplib
from datetime import datetime, time, timedelta, timezone
from time import monotonic

import pytest

from core.accounts import add_user
from core.models import Ticket, utcnow
from core.reports import export
from core.reports.figures import period, report
from core.tickets import contact_for
from tests.integration.test_api_tickets import World, make_world

HTML = {"accept": "text/html"}


def _seed(desk) -> dict:
    today = utcnow().date()

    def at(days_ago: int, minutes: int = 0) -> datetime:
        return datetime.combine(today - timedelta(days=days_ago), time(10), tzinfo=timezone.utc) + timedelta(minutes=minutes)

    with desk.sessions() as s, s.begin():
        x, y = add_user(s, "xena@example.test", "agent"), add_user(s, "yann@example.test", "agent")
        ann = contact_for(s, "ann@example.org")
        s.flush()
        specs = [  # name, created (days ago), assignee, category, status, responded (min), resolved (min), due, breached
            ("t1", 5, x, "billing", "resolved", 30, 120, at(5, 240), False),
            ("t2", 4, x, "billing", "resolved", 90, 600, at(4, 240), True),
            ("t3", 4, x, "technical", "in_progress", 60, None, at(0, 60 * 24 * 5), False),
            ("t4", 2, y, "account", "new", None, None, at(2, 240), False),          # due passed: not met
            ("t5", 40, y, "general", "resolved", 10, 39 * 1440, at(40, 240), False),  # resolved yesterday
            ("t6", 40, None, "general", "waiting", None, None, None, False),
        ]
        for name, days, who, category, status, responded, resolved, due, breached in specs:
            created = at(days)
            s.add(Ticket(reference=f"PD-{name}", subject=name, status=status, priority="medium", category=category,
                         requester_id=ann.id, assignee_id=who.id if who else None, created_at=created,
                         updated_at=created, first_response_due_at=due, sla_breached=breached,
                         first_responded_at=created + timedelta(minutes=responded) if responded else None,
                         resolved_at=created + timedelta(minutes=resolved) if resolved else None,
                         sla_due_at=due if status in ("new", "in_progress") else None, sla_checked_at=utcnow()))
    return {"today": today}


def test_report_figures_over_a_period_match_a_known_dataset(desk):
    today = _seed(desk)["today"]
    with desk.sessions() as s:
        r = report(s, period(today - timedelta(days=9), today))
    assert (r.opened, r.resolved, r.period.days) == (4, 3, 10)
    assert r.per_day_average == 0.4                       # 4 tickets over the 10 days chosen
    assert (r.sla_tickets, r.sla_met, r.sla_compliance_percent) == (4, 2, 50.0)
    by_agent = {a.email: a for a in r.agents}
    xena, yann = by_agent["xena@example.test"], by_agent["yann@example.test"]
    assert (xena.assigned, xena.solved, xena.median_first_response_minutes, xena.median_resolution_minutes) == \
        (3, 2, 60.0, 360.0)
    assert (yann.assigned, yann.solved, yann.median_first_response_minutes) == (1, 1, None)
    assert yann.median_resolution_minutes == pytest.approx(39 * 1440, abs=0.5)
    assert r.by_category == {"billing": 2, "technical": 1, "account": 1}
    assert dict(r.backlog) == {"under 1 day": 0, "1–3 days": 1, "3–7 days": 1, "1–4 weeks": 0, "over 4 weeks": 1}
    assert len(r.per_day) == 10 and sum(n for _, n in r.per_day) == 4


@pytest.fixture
def world(desk) -> World:
    w = make_world(desk)
    with w.client:
        yield w


def test_the_reports_page_shows_the_period_charts_and_tables(world):
    _seed(world.desk)
    today = utcnow().date()
    page = world.call("agent", "GET", f"/agent/reports?from={today - timedelta(days=9)}&to={today}", headers=HTML)
    assert page.status_code == 200
    html = re.sub(r">\s+<", "><", page.text)
    assert f"Over the 10 days from {today - timedelta(days=9)} to {today} (UTC)." in html
    assert 'data-testid="per-day">0.6<' in html          # 4 seeded + the world's 2, over 10 days
    assert html.count('<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img"') == 3
    assert '<table data-testid="backlog-table">' in html and "<td>over 4 weeks</td><td>1</td>" in html
    assert "<td>xena@example.test</td><td>3</td><td>2</td><td>60 min</td><td>6.0 h</td>" in html
    assert world.call("agent", "GET", "/agent/reports?from=2026-02-01&to=2026-01-01", headers=HTML).status_code == 400
    assert world.call("agent", "GET", "/agent/reports?from=yesterday", headers=HTML).status_code == 400


def _csv(answer) -> list[dict]:
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(answer.text)))


def test_csv_export_has_every_matching_ticket_with_the_lists_filters(world):
    for i in range(30):                                   # more than a page of the list
        world.open_ticket("customer_b", f"Question {i}")
    world.open_ticket("customer_b", "=HYPERLINK(\"http://evil.example\")")
    rows = _csv(world.call("agent", "GET", "/api/tickets/export.csv"))
    assert len(rows) == 33 and list(rows[0])[:3] == ["id", "reference", "subject"]
    assert {"first_response_due_at", "resolution_due_at", "sla_breached"} <= set(rows[0])
    assert any(r["subject"] == "'=HYPERLINK(\"http://evil.example\")" for r in rows)   # stays text in a spreadsheet
    assert [int(r["id"]) for r in _csv(world.call("agent", "GET", "/api/tickets/export.csv?sort=id"))] == \
        sorted(int(r["id"]) for r in rows)
    assert {r["requester"] for r in _csv(world.call("customer_a", "GET", "/api/tickets/export.csv"))} == \
        {"ann@example.org"}
    high = _csv(world.call("agent", "GET", "/api/tickets/export.csv?priority=high"))
    assert [int(r["id"]) for r in high] == [world.ticket_b]
    bad = world.call("agent", "GET", "/api/tickets/export.csv?status=lost")
    assert bad.status_code == 422 and "status" in bad.json()["detail"]


def test_csv_export_streams_in_batches(world, monkeypatch):
    monkeypatch.setattr(export, "BATCH", 2)
    for i in range(5):
        world.open_ticket("customer_b", f"Batch {i}")
    from core.queries import TicketFilter
    chunks = list(export.csv_chunks(world.desk.sessions, TicketFilter()))
    assert len(chunks) >= 4 and sum(c.count("\n") for c in chunks) == 1 + 7


def test_a_mail_is_stored_while_an_export_is_mid_stream(world, monkeypatch):
    """The export's read transaction lives as long as the download: it must not hold the write lock
    SQLite's intake needs (the SMTP door answers only after storing the mail)."""
    from core.queries import TicketFilter
    from tests.integration.test_smtp_door import PLAIN, _wait_count
    from tests.support.server import SmtpDoor

    monkeypatch.setattr(export, "BATCH", 2)
    for i in range(5):
        world.open_ticket("customer_b", f"Batch {i}")
    chunks = export.csv_chunks(world.desk.sessions, TicketFilter())
    try:
        first = next(chunks)                                # header and two rows out; the cursor stays open
        assert first.count("\n") == 3
        with SmtpDoor(world.desk) as door, smtplib.SMTP("127.0.0.1", door.port, timeout=10) as smtp:
            started = monotonic()
            assert smtp.sendmail("ann@example.org", ["support@example.test"], PLAIN) == {}   # 250: stored
            assert monotonic() - started < 5                # not a wait on the lock (busy_timeout is 30 s)
            _wait_count(world.desk, Ticket, 8)              # the worker opened its ticket too
        rest = "".join(chunks)
    finally:
        chunks.close()
    assert first.count("\n") + rest.count("\n") == 1 + 7    # the export is the snapshot it began with
    assert "Hello" not in rest
