"""The public pages through the real app (FastAPI TestClient on create_app), on SQLite and PostgreSQL:
the new-ticket form (acknowledgement, honeypot, throttling, uploads, CSRF), a ticket by its signed
link (thread, reply, attachments, polling JSON) and the fresh link for an expired one."""
from __future__ import annotations

import email
import email.policy
import re
from datetime import timedelta

import pytest
from fastapi.staticfiles import StaticFiles
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from core import workflow
from core.accounts import add_user
from core.models import AccessLink, Attachment, Event, Message, Outbox, Ticket, utcnow
from portal.app import create_app
from portal.pages import public

STATIC = public.__file__.rsplit("/pages/", 1)[0] + "/static"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture
def app(desk):
    app = create_app(desk.settings, desk.sessions)
    if not any(getattr(r, "name", "") == "static" for r in app.routes):  # until portal/app.py mounts it
        app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


@pytest.fixture
def browser(app):
    with TestClient(app, headers={"Accept": "text/html"}) as client:
        yield client


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def form(**changes) -> dict:
    values = {"name": "Ann Example", "email": "ann@example.org", "subject": "Printer on fire",
              "description": "It smokes since this morning.", "category": "", "priority": ""}
    return {**values, **changes}


def submit(browser, files=None, **changes):
    token = csrf_of(browser.get("/new").text)
    return browser.post("/new", data={"csrf_token": token, **form(**changes)}, files=files, follow_redirects=False)


def count(desk, model, *where) -> int:
    with desk.sessions() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


def outbox(desk, purpose: str | None = None) -> list[Outbox]:
    with desk.sessions() as s:
        stmt = select(Outbox).order_by(Outbox.id)
        return list(s.scalars(stmt.where(Outbox.purpose == purpose) if purpose else stmt))


def link_token(row: Outbox) -> str:
    mail = email.message_from_bytes(row.raw, policy=email.policy.default)
    text = mail.get_body(preferencelist=("plain",)).get_content()
    return re.search(r"/t/([A-Za-z0-9_-]{22,})", text).group(1)


def open_ticket(browser, desk, files=None, **changes) -> tuple[int, str]:
    """A ticket opened through the form, and the token of the link its acknowledgement carries."""
    answer = submit(browser, files=files, **changes)
    assert answer.status_code == 303, answer.text
    ticket_id = int(re.search(r"ticket=(\d+)", answer.headers["location"]).group(1))
    ack = [r for r in outbox(desk, "acknowledgement") if r.ticket_id == ticket_id][0]
    return ticket_id, link_token(ack)


def test_form_opens_ticket_acknowledged_by_mail_whose_link_opens_it(browser, desk):
    answer = submit(browser, files=[("attachments", ("screen shot.png", PNG, "image/png"))], priority="high")
    assert answer.status_code == 303 and answer.headers["location"].startswith("/new/thanks?ticket=")
    thanks = browser.get(answer.headers["location"])
    assert thanks.status_code == 200 and "#1" in thanks.text and "sent you a mail" in thanks.text

    with desk.sessions() as s:
        ticket = s.scalar(select(Ticket))
        assert (ticket.subject, ticket.status, ticket.priority, ticket.category) == (
            "Printer on fire", "new", "high", "general")  # "let us decide" left the category to triage
        assert ticket.requester.email == "ann@example.org" and ticket.requester.name == "Ann Example"
        first = ticket.messages[0]
        assert first.body_text == "It smokes since this morning." and first.matched_by == "web-form"
        assert [(a.filename, a.content_type, a.size) for a in first.attachments] == [
            ("screen shot.png", "image/png", len(PNG))]
    [ack] = outbox(desk)
    assert ack.purpose == "acknowledgement" and ack.rcpt_to == "ann@example.org"

    page = browser.get(f"/t/{link_token(ack)}")
    assert page.status_code == 200 and page.headers["cache-control"] == "private, no-store"
    assert "Printer on fire" in page.text and "It smokes since this morning." in page.text
    assert 'data-testid="status">new<' in page.text and "screen shot.png" in page.text
    assert "Priority set to high by you" in page.text


def test_forged_thanks_number_is_not_shown(browser):
    page = browser.get("/new/thanks?ticket=42&sig=forged")
    assert page.status_code == 200 and "#42" not in page.text


def test_honeypot_pretends_success_and_creates_nothing(browser, desk):
    answer = submit(browser, website="http://spam.example")
    assert answer.status_code == 303 and answer.headers["location"] == "/new/thanks"
    assert browser.get("/new/thanks").status_code == 200
    assert count(desk, Ticket) == 0 and count(desk, Outbox) == 0


def test_too_many_tickets_from_one_address_answer_429(browser, desk):
    for n in range(public.NEW_TICKETS_PER_EMAIL):
        assert submit(browser, subject=f"Question {n}").status_code == 303
    refused = submit(browser, subject="One more")
    assert refused.status_code == 429 and "Too many requests" in refused.text
    assert refused.headers["retry-after"] == "3600"
    assert submit(browser, email="bob@example.org").status_code == 303  # another address is not held back
    assert count(desk, Ticket) == public.NEW_TICKETS_PER_EMAIL + 1


def test_too_many_tickets_from_one_ip_answer_429(browser, desk, monkeypatch):
    monkeypatch.setattr(public, "NEW_TICKETS_PER_IP", 2)
    assert submit(browser, email="a@example.org").status_code == 303
    assert submit(browser, email="b@example.org").status_code == 303
    assert submit(browser, email="c@example.org").status_code == 429
    assert count(desk, Ticket) == 2


def test_oversize_upload_is_refused_with_the_form_kept(browser, desk):
    big = PNG + b"\x00" * (workflow.MAX_ATTACHMENT_BYTES - len(PNG) + 1)
    answer = submit(browser, files=[("attachments", ("big.png", big, "image/png"))], subject="Kept subject")
    assert answer.status_code == 413
    assert "“big.png” is larger than 10 MB" in answer.text
    assert 'value="Kept subject"' in answer.text and "It smokes since this morning." in answer.text
    assert 'aria-describedby="attachments-hint attachments-error" aria-invalid="true"' in answer.text
    assert "choose your files again" in answer.text
    assert count(desk, Ticket) == 0 and count(desk, Outbox) == 0


@pytest.mark.parametrize("name, data, why", [
    ("setup.exe", b"MZ\x90\x00", "cannot be attached: we accept images"),
    ("photo.png", b"<html><script>alert(1)</script>", "does not look like a PNG file"),
    ("notes.txt", b"text\x00with a NUL", "does not look like a TXT file"),
])
def test_disallowed_upload_is_refused_and_nothing_created(browser, desk, name, data, why):
    answer = submit(browser, files=[("attachments", (name, data, "application/octet-stream"))])
    assert answer.status_code == 400 and why in answer.text
    assert count(desk, Ticket) == 0


def test_more_than_ten_files_are_refused(browser, desk):
    files = [("attachments", (f"f{n}.txt", b"hello", "text/plain")) for n in range(11)]
    answer = submit(browser, files=files)
    assert answer.status_code == 400 and "at most 10 can be attached" in answer.text
    assert count(desk, Ticket) == 0


def test_request_larger_than_all_attachments_is_refused_before_reading(browser, desk, monkeypatch):
    monkeypatch.setattr(public, "MAX_FORM_BYTES", 1000)
    answer = submit(browser, files=[("attachments", ("a.txt", b"x" * 2000, "text/plain"))])
    assert answer.status_code == 413 and "too much to send at once" in answer.text
    assert count(desk, Ticket) == 0


def test_invalid_fields_are_named_next_to_the_field(browser, desk):
    answer = submit(browser, email="not an address", subject="", description="Kept text")
    assert answer.status_code == 400
    assert 'id="email-error"' in answer.text and "not a valid email address" in answer.text
    assert 'aria-describedby="email-hint email-error" aria-invalid="true"' in answer.text
    assert 'href="#subject"' in answer.text and ">Kept text</textarea>" in answer.text
    assert count(desk, Ticket) == 0


def test_posts_without_csrf_token_are_refused(browser, desk):
    browser.get("/new")
    assert browser.post("/new", data=form()).status_code == 403
    ticket_id, token = open_ticket(browser, desk)
    assert browser.post(f"/t/{token}/reply", data={"text": "Hello"}).status_code == 403
    assert browser.post("/t/resend", data={"email": "ann@example.org", "token": token}).status_code == 403
    assert browser.post("/new", data={**form(), "csrf_token": "0" * 40}).status_code == 403
    assert count(desk, Ticket) == 1 and count(desk, Message) == 1


def test_link_reply_lands_on_the_thread_and_notifies_the_assignee(browser, desk):
    ticket_id, token = open_ticket(browser, desk)
    with desk.sessions() as s:
        agent = add_user(s, "agent@example.test", "agent", name="Alex Agent")
        s.flush()
        s.execute(update(Ticket).where(Ticket.id == ticket_id).values(assignee_id=agent.id, status="waiting"))
        s.commit()
    page = browser.get(f"/t/{token}")
    answer = browser.post(f"/t/{token}/reply", data={"csrf_token": csrf_of(page.text), "text": "It is out now."},
                          files=[("attachments", ("log.txt", b"smoke detector log", "text/plain"))],
                          follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"].startswith(f"/t/{token}#m")

    with desk.sessions() as s:
        ticket = s.get(Ticket, ticket_id)
        reply = ticket.messages[-1]
        assert reply.body_text == "It is out now." and reply.author.email == "ann@example.org"
        assert reply.attachments[0].filename == "log.txt" and ticket.status == "in_progress"
    [told] = outbox(desk, "customer-reply")
    assert told.rcpt_to == "agent@example.test"
    shown = browser.get(f"/t/{token}")
    assert "It is out now." in shown.text and "Status: waiting → in progress by you" in shown.text


def test_link_reply_without_assignee_mails_nobody_and_empty_reply_is_refused(browser, desk):
    ticket_id, token = open_ticket(browser, desk)
    csrf = csrf_of(browser.get(f"/t/{token}").text)
    empty = browser.post(f"/t/{token}/reply", data={"csrf_token": csrf, "text": "   "})
    assert empty.status_code == 400 and "Write your reply" in empty.text and 'id="text-error"' in empty.text
    ok = browser.post(f"/t/{token}/reply", data={"csrf_token": csrf, "text": "Hello?"}, follow_redirects=False)
    assert ok.status_code == 303
    assert outbox(desk, "customer-reply") == [] and count(desk, Message) == 2


def test_link_page_shows_replies_and_quotes_but_never_internal_notes(browser, desk):
    ticket_id, token = open_ticket(browser, desk)
    with desk.sessions() as s:
        ticket = s.get(Ticket, ticket_id)
        agent = add_user(s, "agent@example.test", "agent")
        workflow.reply_as_agent(s, desk.settings, ticket, agent, "Unplug it, please.")
        workflow.add_note(s, ticket, agent, "SECRET: customer sounds annoyed")
        s.add(Message(ticket=ticket, kind="mail", direction="in", author_id=ticket.requester_id,
                      from_address="ann@example.org", body_text="Done! <script>alert(1)</script>\n\n> Unplug it",
                      visible_text="Done! <script>alert(1)</script>"))
        ticket.summary, ticket.resolution = "Printer smokes; customer unplugged it.", "Replaced the fuser."
        s.commit()
    page = browser.get(f"/t/{token}")
    assert "Unplug it, please." in page.text and "SECRET" not in page.text
    assert "<script>alert(1)</script>" not in page.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "<summary>Show quoted text</summary>" in page.text and "&gt; Unplug it" in page.text
    assert "Printer smokes; customer unplugged it." in page.text and "Replaced the fuser." in page.text
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page.text)  # CSP script-src 'self': no inline scripts


def test_messages_json_returns_what_came_after_an_id_without_notes(browser, desk):
    ticket_id, token = open_ticket(browser, desk)
    first = browser.get(f"/t/{token}/messages.json").json()
    assert [m["direction"] for m in first] == ["in"] and first[0]["from"] == "You"
    with desk.sessions() as s:
        ticket = s.get(Ticket, ticket_id)
        agent = add_user(s, "agent@example.test", "agent")
        workflow.add_note(s, ticket, agent, "internal only")
        workflow.reply_as_agent(s, desk.settings, ticket, agent, "We are <on> it.")
        s.commit()
    newer = browser.get(f"/t/{token}/messages.json?after={first[0]['id']}")
    assert newer.headers["cache-control"] == "no-store"
    [reply] = newer.json()
    assert (reply["direction"], reply["from"], reply["text"]) == ("out", "Support", "We are <on> it.")
    assert set(reply) >= {"id", "direction", "from", "created_at", "text"}
    assert browser.get(f"/t/{token}/messages.json?after={reply['id']}").json() == []
    assert browser.get("/t/unknown-token-xxxxxxxxxxxx/messages.json").status_code == 404


def test_expired_link_offers_a_fresh_one_mailed_only_to_the_requester(browser, desk):
    ticket_id, token = open_ticket(browser, desk)
    with desk.sessions() as s:
        s.execute(update(AccessLink).values(expires_at=utcnow() - timedelta(minutes=1)))
        s.commit()
    expired = browser.get(f"/t/{token}")
    assert expired.status_code == 410 and "This link has expired" in expired.text
    assert 'action="/t/resend"' in expired.text and f'name="token" value="{token}"' in expired.text
    assert "Printer on fire" not in expired.text
    assert browser.get(f"/t/{token}/messages.json").status_code == 410

    csrf = csrf_of(expired.text)
    stranger = browser.post("/t/resend", data={"csrf_token": csrf, "token": token, "email": "eve@example.org"})
    assert stranger.status_code == 200 and outbox(desk, "link") == []
    requester = browser.post("/t/resend", data={"csrf_token": csrf, "token": token, "email": "Ann@Example.org"})
    assert requester.status_code == 200 and requester.text == stranger.text  # the same answer either way
    [mail] = outbox(desk, "link")
    assert mail.rcpt_to == "ann@example.org" and mail.ticket_id == ticket_id
    fresh = link_token(mail)
    assert fresh != token and browser.get(f"/t/{fresh}").status_code == 200


def test_revoked_link_offers_a_fresh_one_and_unknown_link_is_404(browser, desk):
    ticket_id, token = open_ticket(browser, desk)
    with desk.sessions() as s:
        s.execute(update(AccessLink).values(revoked_at=utcnow()))
        s.commit()
    assert browser.get(f"/t/{token}").status_code == 410
    unknown = browser.get("/t/" + "x" * 32)
    assert unknown.status_code == 404 and 'action="/t/resend"' in unknown.text and 'name="token"' not in unknown.text
    # without a known link, the address's own newest tickets get fresh links
    answer = browser.post("/t/resend", data={"csrf_token": csrf_of(unknown.text), "email": "ann@example.org"})
    assert answer.status_code == 200 and [m.ticket_id for m in outbox(desk, "link")] == [ticket_id]


def test_fresh_links_are_throttled(browser, desk, monkeypatch):
    monkeypatch.setattr(public, "FRESH_LINKS_PER_EMAIL", 2)
    csrf = csrf_of(browser.get("/t/" + "x" * 32).text)
    for _ in range(2):
        assert browser.post("/t/resend", data={"csrf_token": csrf, "email": "ann@example.org"}).status_code == 200
    assert browser.post("/t/resend", data={"csrf_token": csrf, "email": "ann@example.org"}).status_code == 429


def test_attachment_downloads_are_scoped_to_the_link(browser, desk):
    pdf = b"%PDF-1.7\n" + "résumé".encode() * 10
    ticket_id, token = open_ticket(browser, desk, files=[("attachments", ("Résumé final.pdf", pdf, "text/html"))])
    other_id, _ = open_ticket(browser, desk, files=[("attachments", ("other.txt", b"not yours", "text/plain"))],
                              email="bob@example.org")
    with desk.sessions() as s:
        mine = s.scalar(select(Attachment.id).join(Message).where(Message.ticket_id == ticket_id))
        theirs = s.scalar(select(Attachment.id).join(Message).where(Message.ticket_id == other_id))

    got = browser.get(f"/t/{token}/attachments/{mine}")
    assert got.status_code == 200 and got.content == pdf
    assert got.headers["content-type"] == "application/pdf"  # what the file is, not what the browser claimed
    assert got.headers["x-content-type-options"] == "nosniff"
    disposition = got.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="R_sum_ final.pdf"')
    assert "filename*=UTF-8''R%C3%A9sum%C3%A9%20final.pdf" in disposition
    assert browser.get(f"/t/{token}/attachments/{theirs}").status_code == 404
    assert browser.get(f"/t/{token}/attachments/999999").status_code == 404
    assert browser.get("/t/" + "x" * 32 + f"/attachments/{mine}").status_code == 404


def test_scripts_are_served_from_static_and_the_form_refers_to_them(browser):
    page = browser.get("/new")
    assert '<script src="/static/new-ticket.js" defer></script>' in page.text
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page.text)
    assert 'name="website"' in page.text and 'aria-hidden="true"' in page.text
    for name in ("new-ticket.js", "thread.js", "portal.css"):
        served = browser.get(f"/static/{name}")
        assert served.status_code == 200 and served.text.strip()
    thread = browser.get("/static/thread.js").text
    assert "textContent" in thread and "innerHTML" not in thread
    assert "/api/tickets/classify" in browser.get("/static/new-ticket.js").text


def test_home_and_health_still_answer(browser, desk):
    assert "/new" in browser.get("/").text
    assert browser.get("/healthz").json() == {"status": "ok", "quarantined": 0}


def test_history_lists_status_changes_but_not_assignments(browser, desk):
    ticket_id, token = open_ticket(browser, desk)
    with desk.sessions() as s:
        ticket = s.get(Ticket, ticket_id)
        agent = add_user(s, "agent@example.test", "agent")
        workflow.change_fields(s, desk.settings, ticket, agent, status="resolved", assignee=agent)
        s.commit()
        assert s.scalar(select(func.count()).select_from(Event).where(Event.kind == "assigned")) == 1
    page = browser.get(f"/t/{token}")
    assert "Status: new → resolved by support" in page.text and "agent@example.test" not in page.text
    assert "Replying opens the ticket again." in page.text
