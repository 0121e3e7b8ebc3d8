"""Complete, calm mails to customers, checked where they arrive (a real SMTP sink): an agent's files
go with the reply byte for byte (too large ones as links that work), every customer mail has a
text and an HTML part and the ticket link, and a burst of status changes is one mail."""
from __future__ import annotations

import dataclasses
import hashlib
import re
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from core import accounts, workflow
from core.accounts import add_user
from core.models import Outbox, Ticket, utcnow
from core.outbound import deliver_due
from portal.app import create_app
from tests.integration.test_outbound import _with_smarthost
from tests.integration.test_receive_mail import mail, receive

PDF = b"%PDF-1.4\n" + bytes(range(256)) * 400 + b"\r\n.\r\n\x00end"  # binary, with a line that is just "."


@pytest.fixture
def app(desk):
    return create_app(desk.settings, desk.sessions)


@pytest.fixture
def agent(desk):
    with desk.sessions() as s, s.begin():
        return add_user(s, "agent@example.test", "agent", "Agnes Agent")


def _deliver(desk, sink, count: int):
    _with_smarthost(desk, sink.port)
    with desk.sessions() as s, s.begin():  # held mails (coalescing) are due now
        s.execute(update(Outbox).where(Outbox.state == "pending").values(next_attempt_at=utcnow()))
    deliver_due(desk.sessions, desk.settings)
    return sink.wait_for(count)


def _reply(desk, agent, ticket_id: int, text: str, uploads) -> None:
    with desk.sessions() as s, s.begin():
        workflow.reply_as_agent(s, desk.settings, s.get(Ticket, ticket_id), s.merge(agent), text, uploads)


def _plain(msg) -> str:
    return msg.get_body(("plain",)).get_content()


def _html(msg) -> str:
    return msg.get_body(("html",)).get_content()


def test_an_agents_files_arrive_with_the_reply_byte_for_byte(desk, sink, agent):
    got = receive(desk, mail("Broken invoice", "The PDF will not open."))
    _reply(desk, agent, got.ticket_id, "Here is the **corrected** invoice.",
           [workflow.Upload("Rechnung März.pdf", "application/pdf", PDF),
            workflow.Upload("notes.txt", "text/plain", b"line one\nline two\n")])
    ack, reply = _deliver(desk, sink, 2)

    files = {part.get_filename(): part.get_content() for part in reply.iter_attachments()}
    assert files == {"Rechnung März.pdf": PDF, "notes.txt": "line one\nline two\n"}
    assert "Here is the **corrected** invoice." in _plain(reply)
    assert "<strong>corrected</strong>" in _html(reply)
    assert reply["From"].addresses[0].display_name == "Agnes Agent"
    assert reply["From"].addresses[0].addr_spec == "support@example.test"
    link = re.search(r"http://\S+/t/[A-Za-z0-9_-]+", _plain(reply)).group(0)
    assert link in _html(reply)


def test_files_over_the_limit_go_as_links_that_open_by_ticket_link_and_signed_in(desk, sink, agent):
    desk.settings = dataclasses.replace(desk.settings, outbound=dataclasses.replace(
        desk.settings.outbound, max_attachment_bytes=50_000))
    with desk.sessions() as s, s.begin():
        add_user(s, "ann@example.org", "customer", "Ann", password="correct horse battery")
    got = receive(desk, mail("Logs", "Send me the logs please."))
    small = b"small file"
    _reply(desk, agent, got.ticket_id, "The logs.", [workflow.Upload("small.txt", "text/plain", small),
                                                     workflow.Upload("big.pdf", "application/pdf", PDF)])
    _, reply = _deliver(desk, sink, 2)

    assert {p.get_filename() for p in reply.iter_attachments()} == {"small.txt"}  # within the 50 kB limit
    text = _plain(reply)
    assert "big.pdf" in text
    by_link = re.search(r"http://[^/\s]+(/t/[A-Za-z0-9_-]+/attachments/\d+)", text).group(1)
    signed_in = re.search(r"signed in: http://[^/\s]+(/my/tickets/\d+/attachments/\d+)", text).group(1)
    client = TestClient(create_app(desk.settings, desk.sessions))
    got_by_link = client.get(by_link)
    assert got_by_link.status_code == 200 and got_by_link.content == PDF
    assert client.get(signed_in, follow_redirects=False).status_code in (303, 401, 403, 404)  # not signed in
    page = client.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    signed = client.post("/login", data={"csrf_token": csrf, "email": "ann@example.org",
                                         "password": "correct horse battery"}, follow_redirects=False)
    assert signed.status_code == 303, signed.text
    got_signed_in = client.get(signed_in)
    assert got_signed_in.status_code == 200 and hashlib.sha256(got_signed_in.content).digest() == \
        hashlib.sha256(PDF).digest()


def test_every_customer_mail_has_text_and_html_and_the_ticket_link(desk, sink, agent):
    got = receive(desk, mail("Printer on fire", "The printer on floor 3 smokes <b>a lot</b> since Monday."))
    _reply(desk, agent, got.ticket_id, "Unplug it, please.", [])
    with desk.sessions() as s, s.begin():
        workflow.change_fields(s, desk.settings, s.get(Ticket, got.ticket_id), s.merge(agent), status="resolved")
        accounts.register(s, desk.settings, "carl@example.org", "a long enough password", "Carl")
    mails = _deliver(desk, sink, 4)
    by_kind = {m["To"].addresses[0].addr_spec + ":" + ("ack" if m["Auto-Submitted"] == "auto-replied" else
                                                       m["Subject"]): m for m in mails}
    for msg in mails:
        assert _plain(msg).strip() and "<html>" in _html(msg), msg["Subject"]
        assert "<b>" not in _html(msg)  # nothing from a mail is markup
    ack = next(m for k, m in by_kind.items() if k.endswith(":ack"))
    assert "> The printer on floor 3 smokes <b>a lot</b> since Monday." in _plain(ack)  # the request, quoted
    assert "<blockquote" in _html(ack) and "smokes &lt;b&gt;a lot&lt;/b&gt;" in _html(ack)
    for msg in mails:
        if msg["To"].addresses[0].addr_spec == "ann@example.org":
            link = re.search(r"http://\S+/t/[A-Za-z0-9_-]+", _plain(msg))
            assert link and f'href="{link.group(0)}"' in _html(msg), msg["Subject"]
    verification = next(m for m in mails if m["To"].addresses[0].addr_spec == "carl@example.org")
    assert "/verify/" in _plain(verification) and "/verify/" in _html(verification)


def test_status_then_resolution_within_the_window_is_one_mail(desk, sink, agent):
    got = receive(desk, mail("Slow VPN", "It is slow."))
    with desk.sessions() as s, s.begin():
        workflow.change_fields(s, desk.settings, s.get(Ticket, got.ticket_id), s.merge(agent), status="waiting")
    with desk.sessions() as s, s.begin():
        workflow.change_fields(s, desk.settings, s.get(Ticket, got.ticket_id), s.merge(agent), status="resolved",
                               resolution="Moved you to the closer gateway.")
    _with_smarthost(desk, sink.port)
    deliver_due(desk.sessions, desk.settings)
    assert len(sink.wait_for(1)) == 1  # the acknowledgement; the status mail waits out the window
    held = [o for o in _outbox(desk) if o.purpose == "status"]
    assert len(held) == 1 and held[0].state == "pending"

    mails = _deliver(desk, sink, 2)
    assert len(mails) == 2
    status = mails[1]
    assert "is now: resolved" in _plain(status) and "Moved you to the closer gateway." in _plain(status)
    assert "waiting" not in _plain(status)


def test_a_change_after_the_status_mail_went_out_is_a_new_mail(desk, sink, agent):
    desk.settings = dataclasses.replace(desk.settings, outbound=dataclasses.replace(
        desk.settings.outbound, coalesce_seconds=0))
    got = receive(desk, mail("Slow VPN", "It is slow."))
    with desk.sessions() as s, s.begin():
        workflow.change_fields(s, desk.settings, s.get(Ticket, got.ticket_id), s.merge(agent), status="waiting")
    _deliver(desk, sink, 2)
    with desk.sessions() as s, s.begin():
        workflow.change_fields(s, desk.settings, s.get(Ticket, got.ticket_id), s.merge(agent), status="resolved")
    mails = _deliver(desk, sink, 3)
    assert ["is now: waiting" in _plain(mails[1]), "is now: resolved" in _plain(mails[2])] == [True, True]


def _outbox(desk) -> list[Outbox]:
    from sqlalchemy import select

    with desk.sessions() as s:
        return list(s.scalars(select(Outbox).order_by(Outbox.id)))


def test_coalesced_mail_waits_the_configured_seconds(desk, agent):
    got = receive(desk, mail("Slow VPN", "It is slow."))
    before = utcnow()
    with desk.sessions() as s, s.begin():
        workflow.change_fields(s, desk.settings, s.get(Ticket, got.ticket_id), s.merge(agent), status="waiting")
    [held] = [o for o in _outbox(desk) if o.purpose == "status"]
    from core.models import aware
    assert aware(held.next_attempt_at) >= before + timedelta(seconds=desk.settings.outbound.coalesce_seconds - 1)


def test_the_agents_form_says_plainly_who_opted_out_of_which_mail(desk, app):
    from tests.integration.test_agent_pages import HTML, signed_in

    got = receive(desk, mail("Printer", "It smokes."))
    browser = signed_in(app, desk, "agnes@example.test", "agent")
    page = browser.get(f"/agent/tickets/{got.ticket_id}", headers=HTML).text
    assert "mailed to ann@example.org)" in page and "Not mailed to" not in page

    with desk.sessions() as s, s.begin():
        ann = s.get(Ticket, got.ticket_id).requester
        accounts.set_preferences(ann, notify_replies=True, notify_status=False)
    page = browser.get(f"/agent/tickets/{got.ticket_id}", headers=HTML).text
    assert "Not mailed to ann@example.org: they chose not to receive status changes by mail." in page
    assert "mailed to ann@example.org)" in page  # replies still are

    with desk.sessions() as s, s.begin():
        accounts.set_preferences(s.get(Ticket, got.ticket_id).requester, notify_replies=False, notify_status=False)
    page = browser.get(f"/agent/tickets/{got.ticket_id}", headers=HTML).text
    assert "mailed to nobody" in page
    assert "Not mailed to ann@example.org: they chose not to receive replies by mail" in page
