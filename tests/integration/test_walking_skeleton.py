"""The walking skeleton end to end: `postdesk serve` as users start it, mail over real SMTP,
the acknowledgement caught by a real SMTP sink, the link opened over HTTP; on both databases."""
from __future__ import annotations

import re
import shutil
import smtplib
import subprocess
import time
from email.message import EmailMessage

import httpx
import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from core.models import Message, Outbox, RawMail, Ticket
from tests.support.server import PostdeskProcess


def _mail(subject: str, body: str, sender: str = "ann@example.org", msgid: str | None = None,
          in_reply_to: str | None = None) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = f"Ann Example <{sender}>"
    msg["To"] = "support@example.test"
    msg["Subject"] = subject
    msg["Message-ID"] = msgid or f"<{time.time_ns()}@client.example.org>"
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
        msg["References"] = in_reply_to
    msg.set_content(body)
    return msg


def _wait(predicate, timeout: float = 15.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def server(db_url, tmp_path, sink):
    env = {"POSTDESK_DATABASE__URL": db_url, "POSTDESK_OUTBOUND__HOST": "127.0.0.1",
           "POSTDESK_OUTBOUND__PORT": str(sink.port)}
    with PostdeskProcess(tmp_path / "run", env) as proc:
        yield proc


def test_mail_becomes_ticket_acknowledged_and_reply_threads(server, db_url, sink):
    engine = create_engine(db_url)
    # 2. swaks (or smtplib) → 250 → ticket #1
    if shutil.which("swaks"):
        result = subprocess.run(
            ["swaks", "--server", f"127.0.0.1:{server.smtp_port}", "--to", "support@example.test",
             "--from", "ann@example.org", "--header", "Subject: Printer on fire", "--body", "It smokes."],
            capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, result.stdout + result.stderr
        assert re.search(r"<-\s+250 .*queued", result.stdout)
    else:  # pragma: no cover - .ci/run installs swaks
        with smtplib.SMTP("127.0.0.1", server.smtp_port) as smtp:
            smtp.send_message(_mail("Printer on fire", "It smokes."))

    ack = sink.wait_for(1)[0]
    with Session(engine) as s:
        ticket = s.scalar(select(Ticket))
        assert ticket.id == 1 and ticket.status == "new" and ticket.subject == "Printer on fire"
        assert re.fullmatch(r"PD-[0-9A-F]{8}", ticket.reference)
        assert ticket.requester.email == "ann@example.org"
        first = s.scalar(select(Message).where(Message.ticket_id == 1))
        assert first.body_text.strip() == "It smokes." and first.matched_by == "new"
        raw = s.get(RawMail, first.raw_mail_id)
        assert b"Subject: Printer on fire" in raw.raw and raw.state == "done"

    # 3. the acknowledgement: tag, ID, link, threading and RFC 3834 headers
    assert ack["Subject"] == "[#1] Printer on fire"
    assert ack["To"].addresses[0].addr_spec == "ann@example.org"
    assert ack["Auto-Submitted"] == "auto-replied"
    assert ack["In-Reply-To"] == f"<{first.message_id}>"
    assert f"<{first.message_id}>" in ack["References"]
    assert ack["Message-ID"].startswith("<pd.1.") and ack["Message-ID"].endswith("@example.test>")
    body = ack.get_body(("plain",)).get_content()
    assert "#1" in body and ticket.reference in body
    link = re.search(r"(http://\S+/t/(\S+))", body)
    assert link and len(link.group(2)) >= 22  # ≥ 128 bits of token
    page = httpx.get(link.group(1).replace("127.0.0.1:8000", f"127.0.0.1:{server.web_port}"))
    assert page.status_code == 200 and "Printer on fire" in page.text and "It smokes." in page.text
    forged = httpx.get(f"{server.base_url}/t/{link.group(2)[:-2]}xx")
    assert forged.status_code == 404

    # 4. Ann answers the acknowledgement from her mail client (In-Reply-To our Message-ID)
    with smtplib.SMTP("127.0.0.1", server.smtp_port) as smtp:
        reply = _mail("Re: [#1] Printer on fire", "Now it is out.\n\n> It smokes.", in_reply_to=ack["Message-ID"])
        smtp.send_message(reply)
        # ...and once more, from a client that dropped the threading headers but kept the tag
        smtp.send_message(_mail("Re: [#1] Printer on fire", "Still smells of smoke."))

    def thread():
        with Session(engine) as s:
            rows = s.scalars(select(Message).where(Message.ticket_id == 1).order_by(Message.id)).all()
            return rows if len(rows) == 3 else None

    rows = _wait(thread, what="both replies on ticket #1")
    assert [m.matched_by for m in rows] == ["new", "in-reply-to", "subject-tag"]
    assert rows[1].visible_text == "Now it is out."
    with Session(engine) as s:
        assert s.scalar(select(func.count(Ticket.id))) == 1
        # replies are not acknowledged again
        assert s.scalar(select(func.count(Outbox.id)).where(Outbox.purpose == "acknowledgement")) == 1
    engine.dispose()


def test_home_page_and_health_answer(server):
    home = httpx.get(server.base_url + "/")
    assert home.status_code == 200 and "support@example.test" in home.text
    health = httpx.get(server.base_url + "/healthz").json()
    assert health == {"status": "ok", "quarantined": 0}
