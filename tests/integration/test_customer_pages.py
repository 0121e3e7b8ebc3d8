"""The signed-in customer's pages through the real app (FastAPI TestClient on create_app), on SQLite
and PostgreSQL: only one's own tickets, filters, sorting and pages by query string; a ticket's
thread, reply, edit and close (recorded in history); attachments; 404 for anything not theirs."""
from __future__ import annotations

import re
from html import unescape

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from core import workflow
from core.accounts import add_user
from core.models import Attachment, Event, Follower, Message, Ticket
from core.sessions import start_session
from core.tickets import contact_for
from portal.app import create_app
from portal.deps import session_cookie_name


@pytest.fixture
def app(desk):
    return create_app(desk.settings, desk.sessions)


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def signed_in(app, desk, email: str, role: str = "customer") -> TestClient:
    """A browser with a session cookie for this person (the login page is not needed)."""
    with desk.sessions() as s:
        person = add_user(s, email, role, name=email.split("@")[0].capitalize())
        s.flush()
        token = start_session(s, person)
        s.commit()
    client = TestClient(app, headers={"Accept": "text/html"})
    client.cookies.set(session_cookie_name(desk.settings), token)
    return client


def new_ticket(desk, email: str, subject: str, description: str = "Something is wrong.", status: str = "new",
               uploads: list[workflow.Upload] | None = None) -> int:
    with desk.sessions() as s:
        ticket = workflow.open_from_web(s, desk.settings, email=email, name="", subject=subject,
                                        description=description, uploads=uploads)
        ticket.status = status
        s.commit()
        return ticket.id


def rows(html: str) -> list[str]:
    """The subjects in the list's table, in order."""
    found = re.findall(r'<td data-label="Subject"><a href="/my/tickets/\d+">([^<]*)</a></td>', html)
    return [unescape(subject) for subject in found]


@pytest.fixture
def ann(app, desk):
    with signed_in(app, desk, "ann@example.org") as client:
        yield client


def test_anonymous_visitor_is_sent_to_sign_in(app):
    with TestClient(app, headers={"Accept": "text/html"}) as client:
        answer = client.get("/my/tickets", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/login?next=/my/tickets"


def test_my_tickets_shows_only_my_own_with_the_last_word_from_support(ann, desk):
    mine = new_ticket(desk, "ann@example.org", "Printer on fire")
    new_ticket(desk, "bob@example.org", "Bob's secret ticket")
    with desk.sessions() as s:
        agent = add_user(s, "agent@example.test", "agent")
        ticket = s.get(Ticket, mine)
        workflow.reply_as_agent(s, desk.settings, ticket, agent, "First answer.")
        workflow.reply_as_agent(s, desk.settings, ticket, agent, "Unplug it, please.")
        workflow.add_note(s, ticket, agent, "internal note")
        s.commit()
    page = ann.get("/my/tickets")
    assert page.status_code == 200
    assert rows(page.text) == ["Printer on fire"] and "Bob" not in page.text
    assert "Unplug it, please." in page.text and "First answer." not in page.text
    assert f'<td data-label="Number">#{mine}</td>' in page.text
    assert "in progress" in page.text and "1 ticket<" in page.text


def test_filter_by_status_and_search_by_text(ann, desk):
    new_ticket(desk, "ann@example.org", "Printer on fire", "The toner smells.")
    new_ticket(desk, "ann@example.org", "Invoice twice", "Charged two times.", status="closed")
    new_ticket(desk, "ann@example.org", "Password reset", "Cannot sign in.", status="waiting")
    assert rows(ann.get("/my/tickets?status=closed").text) == ["Invoice twice"]
    assert sorted(rows(ann.get("/my/tickets?status=open").text)) == ["Password reset", "Printer on fire"]
    assert rows(ann.get("/my/tickets?q=toner").text) == ["Printer on fire"]
    assert rows(ann.get("/my/tickets?q=invoice&status=waiting").text) == []
    # nonsense in the query string falls back to the defaults instead of failing
    assert len(rows(ann.get("/my/tickets?status=bogus&sort=password&page=abc").text)) == 3


def test_column_headers_sort_and_pages_hold_25(ann, desk):
    for n in range(30):
        new_ticket(desk, "ann@example.org", f"Question {n:02d}")
    first = ann.get("/my/tickets?sort=subject")
    assert rows(first.text) == [f"Question {n:02d}" for n in range(25)]
    assert 'aria-sort="ascending"><a href="/my/tickets?sort=-subject">' in first.text  # a click reverses
    assert 'href="/my/tickets?sort=subject&amp;page=2" rel="next"' in first.text
    second = ann.get("/my/tickets?sort=subject&page=2")
    assert rows(second.text) == [f"Question {n:02d}" for n in range(25, 30)]
    assert 'aria-current="page" href="/my/tickets?sort=subject&amp;page=2"' in second.text
    reverse = ann.get("/my/tickets?sort=-subject")
    assert rows(reverse.text)[:2] == ["Question 29", "Question 28"]
    by_number = ann.get("/my/tickets?sort=id")
    assert rows(by_number.text)[0] == "Question 00"
    beyond = ann.get("/my/tickets?sort=subject&page=9")
    assert rows(beyond.text) == [f"Question {n:02d}" for n in range(25, 30)]


def test_a_guessed_or_foreign_ticket_id_is_404(ann, desk):
    bobs = new_ticket(desk, "bob@example.org", "Bob's secret ticket",
                      uploads=[workflow.Upload("bob.txt", "text/plain", b"secret")])
    with desk.sessions() as s:
        attachment = s.scalar(select(Attachment.id))
    csrf = csrf_of(ann.get("/my/tickets").text)
    for path in (f"/my/tickets/{bobs}", "/my/tickets/99999", f"/my/tickets/{bobs}/attachments/{attachment}",
                 f"/my/tickets/{bobs}/messages.json"):
        answer = ann.get(path)
        assert answer.status_code == 404 and "secret" not in answer.text, path
    for action in ("reply", "edit", "close"):
        answer = ann.post(f"/my/tickets/{bobs}/{action}",
                          data={"csrf_token": csrf, "text": "hi", "subject": "mine now", "description": "x"})
        assert answer.status_code == 404, action
    with desk.sessions() as s:
        ticket = s.get(Ticket, bobs)
        assert (ticket.subject, ticket.status, len(ticket.messages)) == ("Bob's secret ticket", "new", 1)


def test_ticket_page_shows_thread_without_notes_and_reply_lands_on_it(ann, desk):
    mine = new_ticket(desk, "ann@example.org", "Printer on fire", "It smokes.")
    with desk.sessions() as s:
        agent = add_user(s, "agent@example.test", "agent")
        ticket = s.get(Ticket, mine)
        workflow.reply_as_agent(s, desk.settings, ticket, agent, "Unplug it.")
        workflow.add_note(s, ticket, agent, "SECRET note")
        s.execute(update(Ticket).where(Ticket.id == mine).values(assignee_id=agent.id))
        s.commit()
    page = ann.get(f"/my/tickets/{mine}")
    assert page.status_code == 200 and "Unplug it." in page.text and "SECRET" not in page.text
    assert f'data-messages-url="/my/tickets/{mine}/messages.json"' in page.text
    answer = ann.post(f"/my/tickets/{mine}/reply", data={"csrf_token": csrf_of(page.text), "text": "Done."},
                      files=[("attachments", ("photo.jpg", b"\xff\xd8\xff\xe0 jpeg", "image/jpeg"))],
                      follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"].startswith(f"/my/tickets/{mine}?done=replied#m")
    shown = ann.get(answer.headers["location"].split("#")[0])
    assert "Done." in shown.text and "photo.jpg" in shown.text and "Your reply is on the ticket." in shown.text
    with desk.sessions() as s:
        reply = s.scalars(select(Message).where(Message.ticket_id == mine).order_by(Message.id.desc())).first()
        assert reply.body_text == "Done." and reply.matched_by == "portal"
    polled = ann.get(f"/my/tickets/{mine}/messages.json?after=0").json()
    assert [(m["direction"], m["from"]) for m in polled] == [("in", "You"), ("out", "Support"), ("in", "You")]


def test_reply_with_a_disallowed_file_keeps_the_text(ann, desk):
    mine = new_ticket(desk, "ann@example.org", "Printer on fire")
    csrf = csrf_of(ann.get(f"/my/tickets/{mine}").text)
    answer = ann.post(f"/my/tickets/{mine}/reply", data={"csrf_token": csrf, "text": "See the script."},
                      files=[("attachments", ("run.sh", b"#!/bin/sh", "text/x-sh"))])
    assert answer.status_code == 400 and "“run.sh” cannot be attached" in answer.text
    assert ">See the script.</textarea>" in answer.text and 'id="attachments-error"' in answer.text
    with desk.sessions() as s:
        assert len(s.get(Ticket, mine).messages) == 1


def test_edit_and_close_are_recorded_in_history(ann, desk):
    mine = new_ticket(desk, "ann@example.org", "Printer on fyre", "It smokes.")
    page = ann.get(f"/my/tickets/{mine}")
    assert "Edit subject and description" in page.text and "Close this ticket" in page.text
    csrf = csrf_of(page.text)
    edited = ann.post(f"/my/tickets/{mine}/edit", data={"csrf_token": csrf, "subject": "Printer on fire",
                                                        "description": "It smokes and beeps."},
                      follow_redirects=False)
    assert edited.status_code == 303
    closed = ann.post(f"/my/tickets/{mine}/close", data={"csrf_token": csrf}, follow_redirects=False)
    assert closed.status_code == 303 and closed.headers["location"] == f"/my/tickets/{mine}?done=closed"

    with desk.sessions() as s:
        ticket = s.get(Ticket, mine)
        assert (ticket.subject, ticket.status) == ("Printer on fire", "closed")
        assert ticket.messages[0].visible_text == "It smokes and beeps."
        assert ticket.messages[0].body_text == "It smokes."  # the original stays as it was written
        events = [(e.kind, e.field, e.old_value, e.new_value) for e in
                  s.scalars(select(Event).where(Event.ticket_id == mine).order_by(Event.id))]
    assert ("subject", "subject", "Printer on fyre", "Printer on fire") in events
    assert ("edited", "description", "It smokes.", "It smokes and beeps.") in events
    assert ("status", "status", "new", "closed") in events
    shown = ann.get(f"/my/tickets/{mine}?done=closed")
    assert "Status: new → closed by you" in shown.text and "Description edited by you" in shown.text
    assert "Close this ticket" not in shown.text and "The ticket is closed." in shown.text


def test_edit_with_an_empty_subject_is_refused_next_to_the_field(ann, desk):
    mine = new_ticket(desk, "ann@example.org", "Printer on fire")
    csrf = csrf_of(ann.get(f"/my/tickets/{mine}").text)
    answer = ann.post(f"/my/tickets/{mine}/edit", data={"csrf_token": csrf, "subject": " ", "description": "New."})
    assert answer.status_code == 400 and 'id="edit-subject-error"' in answer.text
    assert 'aria-invalid="true" aria-describedby="edit-subject-error"' in answer.text
    assert '<details class="edit" open>' in answer.text
    with desk.sessions() as s:
        assert s.get(Ticket, mine).subject == "Printer on fire"


def test_posts_without_csrf_token_are_refused(ann, desk):
    mine = new_ticket(desk, "ann@example.org", "Printer on fire")
    assert ann.post(f"/my/tickets/{mine}/close", data={}).status_code == 403
    assert ann.post(f"/my/tickets/{mine}/reply", data={"text": "x"}).status_code == 403
    assert ann.post(f"/my/tickets/{mine}/edit", data={"subject": "x", "description": "y"}).status_code == 403
    with desk.sessions() as s:
        assert s.get(Ticket, mine).status == "new"


def test_attachments_download_from_my_ticket_only(ann, desk):
    mine = new_ticket(desk, "ann@example.org", "Mine", uploads=[workflow.Upload("a.txt", "text/plain", b"mine")])
    other = new_ticket(desk, "bob@example.org", "Bob's", uploads=[workflow.Upload("b.txt", "text/plain", b"bob")])
    with desk.sessions() as s:
        a = s.scalar(select(Attachment.id).join(Message).where(Message.ticket_id == mine))
        b = s.scalar(select(Attachment.id).join(Message).where(Message.ticket_id == other))
    got = ann.get(f"/my/tickets/{mine}/attachments/{a}")
    assert got.status_code == 200 and got.content == b"mine"
    assert got.headers["content-disposition"].startswith('attachment; filename="a.txt"')
    assert got.headers["x-content-type-options"] == "nosniff"
    assert ann.get(f"/my/tickets/{mine}/attachments/{b}").status_code == 404


def test_follower_reads_and_replies_but_may_not_edit_or_close(app, desk):
    bobs = new_ticket(desk, "bob@example.org", "Shared printer")
    with signed_in(app, desk, "carol@example.org") as carol:
        with desk.sessions() as s:
            s.add(Follower(ticket_id=bobs, contact_id=contact_for(s, "carol@example.org").id))
            s.commit()
        page = carol.get(f"/my/tickets/{bobs}")
        assert page.status_code == 200 and "Close this ticket" not in page.text
        assert rows(carol.get("/my/tickets").text) == ["Shared printer"]
        csrf = csrf_of(page.text)
        assert carol.post(f"/my/tickets/{bobs}/close", data={"csrf_token": csrf}).status_code == 403
        assert carol.post(f"/my/tickets/{bobs}/reply", data={"csrf_token": csrf, "text": "Me too."},
                          follow_redirects=False).status_code == 303
    with desk.sessions() as s:
        ticket = s.get(Ticket, bobs)
        assert ticket.status == "new" and ticket.messages[-1].from_address == "carol@example.org"
        assert ticket.requester.email == "bob@example.org"


def test_agents_see_on_my_tickets_only_what_they_requested(app, desk):
    new_ticket(desk, "ann@example.org", "Customer ticket")
    new_ticket(desk, "agent@example.test", "Agent's own request")
    with signed_in(app, desk, "agent@example.test", role="agent") as agent:
        assert rows(agent.get("/my/tickets").text) == ["Agent's own request"]
