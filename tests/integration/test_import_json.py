"""Importing tickets from another helpdesk's JSON export, on both databases: the shared dataset
(five tickets, statuses mapped, dates, summaries and resolutions kept), idempotence, no mail,
and a clear error for each bad record while the others land."""
from __future__ import annotations

import copy
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import func, select

from core.importer import InvalidImport, import_tickets, read_records, reference_for
from core.models import Event, Job, Message, Outbox, Ticket, TicketSummary, aware

DATASET = Path(__file__).resolve().parents[3] / "shared" / "data" / "mx_ex_dataset.json"


@pytest.fixture
def records() -> list[dict]:
    return read_records(DATASET.read_bytes())


def run_import(desk, records):
    with desk.sessions() as s, s.begin():
        return import_tickets(s, desk.settings, records)


def count(desk, model) -> int:
    with desk.sessions() as s:
        return s.scalar(select(func.count()).select_from(model))


def test_the_dataset_imports_with_statuses_dates_summaries_and_resolutions(desk, records):
    result = run_import(desk, records)
    assert len(result.created) == 5 and result.skipped == [] and result.errors == []
    with desk.sessions() as s:
        tickets = {t.reference: t for t in s.scalars(select(Ticket))}
        by_ref = {reference_for(r["id"]): r for r in records}
        assert set(tickets) == set(by_ref)
        assert sorted(t.status for t in tickets.values()) == ["closed", "in_progress", "new", "new", "resolved"]
        washing = tickets[reference_for("9a8b4c9e-7122-4d9f-bfb0-1cf5d14e8f73")]
        assert washing.status == "in_progress" and washing.requester.email == "jane.smith@example.com"
        assert washing.requester.name == "Jane Smith"
        assert washing.summary == "Washing machine drainage issue."
        assert washing.subject == "Washing machine drainage issue."
        assert washing.resolution == "Technician scheduled for tomorrow."
        assert aware(washing.created_at) == datetime(2025, 10, 25, 10, 20, tzinfo=timezone.utc)
        assert aware(washing.updated_at) == datetime(2025, 10, 28, 9, 0, tzinfo=timezone.utc)
        [first] = washing.messages
        assert (first.direction, first.matched_by, first.from_address) == ("in", "import", "jane.smith@example.com")
        assert first.visible_text.startswith("The washing machine doesn’t drain water")
        assert "uploads/washing_machine.jpg" in first.visible_text
        assert aware(first.created_at) == aware(washing.created_at)
        summaries = s.scalars(select(TicketSummary).where(TicketSummary.ticket_id == washing.id)).all()
        assert [(x.summary, x.source) for x in summaries] == [("Washing machine drainage issue.", "import")]
        imported = s.scalars(select(Event).where(Event.ticket_id == washing.id, Event.kind == "imported")).all()
        assert [e.new_value for e in imported] == ["9a8b4c9e-7122-4d9f-bfb0-1cf5d14e8f73"]
        assert all(len(ref) <= 32 and ref.startswith("IMP-") for ref in tickets)
    assert count(desk, Outbox) == 0 and count(desk, Job) == 0        # history, not news: no mail, no triage


def test_importing_twice_creates_nothing_new(desk, records):
    first = run_import(desk, records)
    second = run_import(desk, records)
    assert len(first.created) == 5
    assert second.created == [] and second.skipped == [r["id"] for r in records] and second.errors == []
    assert (count(desk, Ticket), count(desk, Message), count(desk, TicketSummary)) == (5, 5, 5)


def test_a_repeated_id_in_one_file_is_imported_once(desk, records):
    result = run_import(desk, [records[0], copy.deepcopy(records[0])])
    assert len(result.created) == 1 and result.skipped == [records[0]["id"]]


def test_bad_records_are_reported_one_by_one_and_the_rest_imported(desk, records):
    bad = [
        "not an object",
        {**records[0], "id": ""},
        {**records[1], "id": "x-1", "email": "not an address"},
        {**records[2], "id": "x-2", "status": "Escalated"},
        {**records[3], "id": "x-3", "createdAt": "last Tuesday"},
        {**records[4], "id": "x-4", "description": "  "},
        {**records[4], "id": "x-5", "description": "nul \x00"},
        {**records[4], "id": "x-6", "summary": ["a list"]},
    ]
    result = run_import(desk, [records[0], *bad, records[1]])
    assert [c[0] for c in result.created] == [records[0]["id"], records[1]["id"]]
    assert [(e.index, e.external_id) for e in result.errors] == [
        (1, ""), (2, ""), (3, "x-1"), (4, "x-2"), (5, "x-3"), (6, "x-4"), (7, "x-5"), (8, "x-6")]
    messages = [e.message for e in result.errors]
    assert messages[0] == "a record must be a JSON object" and messages[1] == "id is required"
    assert "invalid email address" in messages[2] and "unknown status 'Escalated'" in messages[3]
    assert "createdAt is not an ISO 8601 date" in messages[4] and messages[5] == "description is required"
    assert "NUL" in messages[6] and messages[7] == "summary must be a string"
    assert count(desk, Ticket) == 2


def test_short_plain_ids_are_kept_readable_and_dates_without_zone_are_utc(desk):
    result = run_import(desk, [{"id": 42, "name": "", "email": "a@example.org", "description": "Line one\nLine two",
                                "status": "in progress", "createdAt": "2025-01-02T03:04:05"}])
    [(external_id, ticket_id)] = result.created
    with desk.sessions() as s:
        ticket = s.get(Ticket, ticket_id)
        assert external_id == "42" and ticket.reference == "IMP-42" and ticket.status == "in_progress"
        assert ticket.subject == "Line one" and ticket.summary == "" and ticket.resolution == ""
        assert aware(ticket.created_at) == aware(ticket.updated_at) == datetime(2025, 1, 2, 3, 4, 5,
                                                                                 tzinfo=timezone.utc)
        assert s.scalar(select(func.count()).select_from(TicketSummary)) == 0


def test_imported_tickets_answer_through_the_api(desk, records):
    from tests.integration.test_api_tickets import make_world

    world = make_world(desk)
    run_import(desk, records)
    with world.client:
        listed = world.call("agent", "GET", "/api/tickets?status=closed").json()
    [closed] = listed["items"]
    assert closed["requester"] == {"email": "emily.johnson@example.com", "name": "Emily Johnson"}
    assert closed["summary"] == "AC cooling malfunction." and closed["created_at"].startswith("2025-10-20T08:45:00")
    assert closed["resolution"] == "Gas refill completed, tested successfully."


@pytest.mark.parametrize("text, message", [("{not json", "not JSON"), (json.dumps({"id": 1}), "JSON list")])
def test_an_unreadable_file_is_refused_as_a_whole(text, message):
    with pytest.raises(InvalidImport, match=message):
        read_records(text)
