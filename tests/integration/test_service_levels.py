"""Service levels end to end on both databases: due times in the ticket JSON, the waiting pause,
escalations mailed once per stage (also after a restart), and pending reminders (to the assignee;
unassigned, to the skilled agents, else the admins); mails go through
the outbox to a real SMTP sink."""
from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from core import workflow
from core.models import Contact, Outbox, SlaEscalation, Ticket, aware
from core.outbound import deliver_due
from core.sla.scheduler import run_service_levels
from portal.app import create_app
from postdesk.bootstrap import bootstrap
from tests.integration.test_api_tickets import World, aware_iso, make_world

ROUND_THE_CLOCK = {"business_hours": "00:00-24:00", "timezone": "UTC",
                   "business_days": ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


@pytest.fixture
def world(desk, sink) -> World:
    desk.settings = dataclasses.replace(
        desk.settings, sla=dataclasses.replace(desk.settings.sla, **ROUND_THE_CLOCK),
        outbound=dataclasses.replace(desk.settings.outbound, host="127.0.0.1", port=sink.port))
    w = make_world(desk)
    w.client = TestClient(create_app(desk.settings, desk.sessions))
    with w.client:
        yield w


def _ticket(world: World, ticket_id: int) -> Ticket:
    with world.desk.sessions() as s:
        return s.get(Ticket, ticket_id)


def _outbox(world: World, purpose: str) -> list[tuple[int, str]]:
    with world.desk.sessions() as s:
        return [tuple(r) for r in s.execute(select(Outbox.ticket_id, Outbox.rcpt_to)
                                            .where(Outbox.purpose == purpose).order_by(Outbox.id))]


def test_ticket_json_carries_due_times_in_business_hours(world):
    t = world.call("agent", "GET", f"/api/tickets/{world.ticket_b}").json()    # priority high: 4 h and 24 h
    created = aware_iso(t["created_at"])
    assert aware_iso(t["first_response_due_at"]) - created == pytest.approx(timedelta(hours=4), abs=timedelta(seconds=2))
    assert aware_iso(t["resolution_due_at"]) - created == pytest.approx(timedelta(hours=24), abs=timedelta(seconds=2))
    assert t["sla_breached"] is False
    fields = ["first_response_due_at", "resolution_due_at", "sla_breached"]
    assert [k for k in t if k in fields] == fields and list(t).index(fields[0]) > list(t).index("messages")


def test_waiting_pauses_the_resolution_clock_and_a_reopen_restarts_it(world):
    path = f"/api/tickets/{world.ticket_b}"
    waiting = world.call("agent", "PATCH", path, json={"status": "waiting"}).json()
    assert waiting["resolution_due_at"] is None and waiting["first_response_due_at"]
    running = world.call("agent", "PATCH", path, json={"status": "in_progress"}).json()
    assert aware_iso(running["resolution_due_at"]) >= aware_iso(running["created_at"]) + timedelta(hours=24)
    world.call("agent", "PATCH", path, json={"status": "resolved"})
    reopened = world.call("agent", "PATCH", path, json={"status": "in_progress"}).json()
    assert aware_iso(reopened["resolution_due_at"]) == pytest.approx(
        aware_iso(reopened["updated_at"]) + timedelta(hours=24), abs=timedelta(seconds=2))


def test_a_customer_reply_by_mail_restarts_the_clock_of_a_resolved_ticket(world):
    with world.desk.sessions() as s, s.begin():
        ticket = s.get(Ticket, world.ticket_b)
        workflow.change_fields(s, world.desk.settings, ticket, s.get(Contact, world.user_ids["agent"]),
                               status="resolved")
    assert _ticket(world, world.ticket_b).resolved_at is not None
    with world.desk.sessions() as s, s.begin():
        ticket = s.get(Ticket, world.ticket_b)
        workflow.reply_as_customer(s, world.desk.settings, ticket, ticket.requester, "Still broken.")
    again = _ticket(world, world.ticket_b)
    assert again.status == "in_progress" and again.resolved_at is None
    assert aware(again.resolution_due_at) > aware(again.created_at) + timedelta(hours=24)


def test_escalations_are_mailed_once_per_stage_even_after_a_restart(world, sink):
    with world.desk.sessions() as s, s.begin():
        ticket = s.get(Ticket, world.ticket_b)
        workflow.change_fields(s, world.desk.settings, ticket, s.get(Contact, world.user_ids["agent"]),
                               assignee=s.get(Contact, world.user_ids["agent"]))
        created = aware(ticket.created_at)
        s.scalar(select(Contact).where(Contact.email == "admin@example.test")).language = "de"  # reads German
    warned_at = created + timedelta(hours=3, minutes=30)       # past 80 % of the 4 h first response
    run_service_levels(world.desk.sessions, world.desk.settings, now=warned_at)
    assert _outbox(world, "sla-warning") == [(world.ticket_b, "agent@example.test"),
                                             (world.ticket_b, "admin@example.test")]
    run_service_levels(world.desk.sessions, world.desk.settings, now=warned_at + timedelta(minutes=1))

    restarted = bootstrap(settings=world.desk.settings)        # a new process: new engine, nothing in memory
    try:
        run_service_levels(restarted.sessions, restarted.settings, now=warned_at + timedelta(minutes=2))
        assert len(_outbox(world, "sla-warning")) == 2
        breached_at = created + timedelta(hours=4, minutes=1)
        run_service_levels(restarted.sessions, restarted.settings, now=breached_at)
        run_service_levels(world.desk.sessions, world.desk.settings, now=breached_at + timedelta(minutes=5))
    finally:
        restarted.engine.dispose()
    assert len(_outbox(world, "sla-breach")) == 2
    with world.desk.sessions() as s:
        assert {(e.target, e.stage) for e in s.scalars(select(SlaEscalation))} == {
            ("first_response", "warning"), ("first_response", "breach")}
    deliver_due(world.desk.sessions, world.desk.settings)
    subjects = sorted(m["Subject"] for m in sink.wait_for(len(_outbox(world, "")) or 4) if "SLA" in m["Subject"])
    assert len(subjects) == 4 and all(f"[#{world.ticket_b}]" in s for s in subjects)
    assert sum("SLA breach: first response is overdue" in s for s in subjects) == 1      # the agent
    assert sum("SLA verletzt: erste Antwort überfällig" in s for s in subjects) == 1     # the German admin
    assert sum("SLA-Warnung: erste Antwort bald fällig" in s for s in subjects) == 1


def test_an_answered_ticket_gets_no_first_response_escalation(world):
    created = aware(_ticket(world, world.ticket_a).created_at)      # ticket A has the agent's reply
    run_service_levels(world.desk.sessions, world.desk.settings, now=created + timedelta(hours=7, minutes=59))
    with world.desk.sessions() as s:
        sent = {(e.ticket_id, e.target, e.stage) for e in s.scalars(select(SlaEscalation))}
    assert (world.ticket_b, "first_response", "breach") in sent          # B (high) was not answered
    assert not [e for e in sent if e[0] == world.ticket_a]
    assert world.ticket_a not in {t for t, _ in _outbox(world, "sla-breach") + _outbox(world, "sla-warning")}


def test_a_pending_reminder_returns_the_ticket_to_in_progress_and_tells_the_assignee(world, sink):
    path = f"/api/tickets/{world.ticket_b}"
    world.call("agent", "PATCH", path, json={"assignee": "agent@example.test"})
    later = aware(_ticket(world, world.ticket_b).created_at) + timedelta(days=3)
    answer = world.call("agent", "PATCH", path, json={"status": "waiting", "waiting_until": later.isoformat()})
    assert answer.status_code == 200, answer.text
    run_service_levels(world.desk.sessions, world.desk.settings, now=later - timedelta(minutes=1))
    assert _ticket(world, world.ticket_b).status == "waiting"
    run_service_levels(world.desk.sessions, world.desk.settings, now=later)
    woken = _ticket(world, world.ticket_b)
    assert woken.status == "in_progress" and woken.waiting_until is None
    assert _outbox(world, "reminder") == [(world.ticket_b, "agent@example.test")]
    deliver_due(world.desk.sessions, world.desk.settings)
    assert any(m["Subject"].startswith(f"[#{world.ticket_b}] Reminder:") for m in sink.wait_for(1))
    history = world.call("agent", "GET", path).json()
    assert history["status"] == "in_progress" and history["resolution_due_at"] is not None


def _wake_unassigned(world: World, ticket_id: int) -> None:
    later = aware(_ticket(world, ticket_id).created_at) + timedelta(days=3)
    answer = world.call("agent", "PATCH", f"/api/tickets/{ticket_id}",
                        json={"status": "waiting", "waiting_until": later.isoformat()})
    assert answer.status_code == 200 and answer.json()["assignee"] is None, answer.text
    run_service_levels(world.desk.sessions, world.desk.settings, now=later)
    assert _ticket(world, ticket_id).status == "in_progress"
    deliver_due(world.desk.sessions, world.desk.settings)


def _reminded(sink, ticket_id: int) -> list[str]:
    mails = [m for m in sink.wait_for(1) if m["Subject"].startswith(f"[#{ticket_id}] Reminder:")]
    assert all("Nobody is assigned to it." in m.get_body(("plain",)).get_content() for m in mails)
    return sorted(m["To"].addresses[0].addr_spec for m in mails)


def test_a_pending_reminder_on_an_unassigned_ticket_tells_the_agents_with_its_skills(world, sink):
    from core.accounts import add_user
    from core.models import AgentSkill, TicketSkill

    with world.desk.sessions() as s, s.begin():
        for email in ("net@example.test", "wifi@example.test"):
            s.add(AgentSkill(contact_id=add_user(s, email, "agent").id, skill="networking"))
        s.add(AgentSkill(contact_id=add_user(s, "tax@example.test", "agent").id, skill="billing"))
        s.add(TicketSkill(ticket_id=world.ticket_b, skill="networking"))
    _wake_unassigned(world, world.ticket_b)
    assert _outbox(world, "reminder") == [(world.ticket_b, "net@example.test"),
                                          (world.ticket_b, "wifi@example.test")]
    assert _reminded(sink, world.ticket_b) == ["net@example.test", "wifi@example.test"]


def test_a_pending_reminder_on_an_unassigned_ticket_nobody_is_skilled_for_tells_the_admins(world, sink):
    _wake_unassigned(world, world.ticket_b)
    assert _outbox(world, "reminder") == [(world.ticket_b, "admin@example.test")]
    assert _reminded(sink, world.ticket_b) == ["admin@example.test"]


@pytest.mark.parametrize("body, status", [
    ({"status": "waiting", "waiting_until": "2001-01-01"}, 422),               # in the past
    ({"status": "in_progress", "waiting_until": "2099-01-01"}, 422),           # not waiting
    ({"status": "waiting", "waiting_until": "next week"}, 422),                # not a date
])
def test_a_bad_reminder_is_refused_with_a_reason(world, body, status):
    answer = world.call("agent", "PATCH", f"/api/tickets/{world.ticket_b}", json=body)
    assert answer.status_code == status and answer.json()["detail"]
    assert _ticket(world, world.ticket_b).waiting_until is None


def test_a_customer_cannot_set_a_reminder(world):
    answer = world.call("customer_b", "PATCH", f"/api/tickets/{world.ticket_b}", json={"waiting_until": "2099-01-01"})
    assert answer.status_code == 403


# ---- the admin's page ------------------------------------------------------------------------------

HTML = {"accept": "text/html"}
SLA_FORM = {"enabled": "yes", "timezone": "UTC", "business_hours": "00:00-24:00",
            "business_days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "warn_percent": "80",
            **{f"{p}_{t}_hours": "10" for p in ("low", "medium", "critical") for t in ("first_response", "resolution")},
            "high_first_response_hours": "2", "high_resolution_hours": "12", "holidays_country": "fr"}


def test_an_admin_changes_the_service_levels_in_the_browser_and_open_tickets_follow(world):
    page = world.call("admin", "GET", "/admin/sla", headers=HTML)
    assert page.status_code == 200 and 'name="high_first_response_hours" ' in page.text and 'value="4.0"' in page.text
    saved = world.call("admin", "POST", "/admin/sla", data=SLA_FORM, follow_redirects=False)
    assert saved.status_code == 303 and saved.headers["location"] == "/admin/sla?done=saved"
    shown = world.call("admin", "GET", "/admin/sla?done=saved", headers=HTML).text
    assert 'value="FR"' in shown and 'value="2.0"' in shown and "Saved." in shown
    run_service_levels(world.desk.sessions, world.desk.settings)      # the sweep recomputes open tickets
    t = world.call("agent", "GET", f"/api/tickets/{world.ticket_b}").json()
    assert aware_iso(t["first_response_due_at"]) - aware_iso(t["created_at"]) == pytest.approx(
        timedelta(hours=2), abs=timedelta(seconds=2))


@pytest.mark.parametrize("field, value, words", [
    ("timezone", "Mars/Olympus", "unknown time zone"),
    ("business_hours", "18:00-08:00", "opening before closing"),
    ("holidays_country", "XX", "XX"),
    ("high_resolution_hours", "soon", "expected a number"),
    ("high_resolution_hours", "0", "above 0"),
])
def test_a_bad_service_level_is_refused_with_its_reason_and_nothing_changes(world, field, value, words):
    answer = world.call("admin", "POST", "/admin/sla", data={**SLA_FORM, field: value}, headers=HTML)
    assert answer.status_code == 400 and words in answer.text and 'role="alert"' in answer.text
    assert 'value="4.0"' in world.call("admin", "GET", "/admin/sla", headers=HTML).text   # still the config's


# ---- the queue -------------------------------------------------------------------------------------

def _age(world: World, ticket_id: int, hours: float) -> None:
    """Move a ticket's history back in time, then recompute its due times."""
    from core.models import Event, Message, utcnow
    from core.sla.tracking import refresh
    shift = timedelta(hours=hours)
    with world.desk.sessions() as s, s.begin():
        ticket = s.get(Ticket, ticket_id)
        ticket.created_at = utcnow() - shift
        for row in [*s.scalars(select(Event).where(Event.ticket_id == ticket_id)),
                    *s.scalars(select(Message).where(Message.ticket_id == ticket_id))]:
            row.created_at = aware(row.created_at) - shift
        refresh(s, world.desk.settings, ticket)


def test_the_queue_sorts_by_due_time_and_marks_near_and_past_due_tickets(world):
    _age(world, world.ticket_b, 5)          # high, unanswered: first response (4 h) overdue
    _age(world, world.ticket_a, 33)         # medium, answered: resolution (40 h) at 82 %
    fresh = world.open_ticket("customer_a", "Brand new", priority="low")
    page = world.call("agent", "GET", "/agent/queue?sort=due", headers=HTML).text
    order = [int(x) for x in __import__("re").findall(r'<tr data-ticket="(\d+)"', page)]
    assert order[:3] == [world.ticket_b, world.ticket_a, fresh]
    assert f'data-ticket="{world.ticket_b}"' in page
    rows = page.split('<tr data-ticket="')[1:]
    marks = {int(r.split('"')[0]): r.split('data-sla="')[1].split('"')[0] for r in rows}
    assert marks == {world.ticket_b: "past", world.ticket_a: "near", fresh: "none"}
    assert "⚠ overdue by 59 min" in page or "⚠ overdue by 60 min" in page   # words, not colour alone
    api = world.call("agent", "GET", "/api/tickets?sort=due").json()
    assert [t["id"] for t in api["items"]][:3] == [world.ticket_b, world.ticket_a, fresh]
    assert [t["sla_breached"] for t in api["items"]][:3] == [True, False, False]


def test_an_agent_sets_waiting_with_a_date_on_the_ticket_page(world):
    from datetime import date
    day = (date.today() + timedelta(days=7)).isoformat()
    form = {"status": "waiting", "priority": "high", "category": "account", "assignee": "", "resolution": "",
            "waiting_until": day}
    answer = world.call("agent", "POST", f"/agent/tickets/{world.ticket_b}/update", data=form, follow_redirects=False)
    assert answer.status_code == 303
    ticket = _ticket(world, world.ticket_b)
    assert ticket.status == "waiting" and aware(ticket.waiting_until).isoformat() == f"{day}T00:00:00+00:00"   # opening time (round the clock here)
    page = world.call("agent", "GET", f"/agent/tickets/{world.ticket_b}", headers=HTML).text
    assert f'value="{day}"' in page and "clock paused while waiting" in page
    bad = world.call("agent", "POST", f"/agent/tickets/{world.ticket_b}/update",
                     data={**form, "waiting_until": "2001-01-01"}, headers=HTML)
    assert bad.status_code == 400 and "in the future" in bad.text
    assert aware(_ticket(world, world.ticket_b).waiting_until).date().isoformat() == day


def test_a_priority_set_by_triage_brings_its_own_targets(world):
    from core.ai.provider import Triage, TriageOutcome
    from core.ai.triage import apply_triage
    with world.desk.sessions() as s, s.begin():
        apply_triage(s, world.desk.settings, world.ticket_a, TriageOutcome(
            Triage(summary="Charged twice.", category="billing", priority="critical", skills=[], notes=[]), "offline"))
    t = world.call("agent", "GET", f"/api/tickets/{world.ticket_a}").json()
    assert t["priority"] == "critical"
    assert aware_iso(t["resolution_due_at"]) - aware_iso(t["created_at"]) == pytest.approx(
        timedelta(hours=8), abs=timedelta(seconds=2))
