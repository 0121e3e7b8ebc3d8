"""Several processes on one PostgreSQL: one SMTP door and three workers, 1,000 mails and 200
replies sent right behind their originals. Every mail is stored once, every reply on its
original's ticket (even when another worker is still storing that one), every acknowledgement
sent once, no job runs twice."""
from __future__ import annotations

import smtplib
import time
from email.message import EmailMessage

import pytest
from sqlalchemy import create_engine, func, select

from core.models import Job, Message, Outbox, RawMail, Ticket, TicketSummary
from tests.support.server import PostdeskProcess

N = 1000
REPLY_EVERY = 5  # after every 5th original, a reply to the one sent just before it


def _mail(i: int, reply: bool = False) -> bytes:
    """Customer i's problem, or (reply) customer i answering it."""
    msg = EmailMessage()
    msg["From"] = f"customer{i}@example.org"
    msg["To"] = "support@example.test"
    msg["Subject"] = f"Re: Problem number {i}" if reply else f"Problem number {i}"
    msg["Message-ID"] = f"<scale-reply-{i}@example.org>" if reply else f"<scale-{i}@example.org>"
    if reply:
        msg["In-Reply-To"] = msg["References"] = f"<scale-{i}@example.org>"
        msg.set_content(f"Still jammed, problem {i}.")
    else:
        msg.set_content(f"Hello, this is problem {i}. The printer on floor {i % 7} is jammed again.")
    return msg.as_bytes()


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_three_workers_process_every_mail_exactly_once(db_url, tmp_path, sink):
    env = {"POSTDESK_DATABASE__URL": db_url, "POSTDESK_WEB__SECRET_KEY": "shared-secret-for-all-processes",
           "POSTDESK_OUTBOUND__HOST": "127.0.0.1", "POSTDESK_OUTBOUND__PORT": str(sink.port),
           "POSTDESK_INTAKE__AUTOREPLY_LIMIT": "100"}
    with PostdeskProcess(tmp_path / "door", env, only="smtp") as door, \
            PostdeskProcess(tmp_path / "w1", env, only="worker"), \
            PostdeskProcess(tmp_path / "w2", env, only="worker"), \
            PostdeskProcess(tmp_path / "w3", env, only="worker"):
        with smtplib.SMTP("127.0.0.1", door.smtp_port, timeout=60) as smtp:
            for i in range(N):
                smtp.sendmail(f"customer{i}@example.org", ["support@example.test"], _mail(i))
                if i % REPLY_EVERY == REPLY_EVERY - 1:
                    smtp.sendmail(f"customer{i - 1}@example.org", ["support@example.test"], _mail(i - 1, reply=True))
            smtp.sendmail("customer0@example.org", ["support@example.test"], _mail(0))  # a resend
        engine = create_engine(db_url)
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                left = conn.scalar(select(func.count()).select_from(Job).where(Job.state != "done"))
                spooled = conn.scalar(select(func.count()).select_from(RawMail).where(RawMail.state != "done"))
            if not left and not spooled and len(sink.envelopes()) >= 2 * N:  # acks + assignment notices
                break
            time.sleep(0.5)
        time.sleep(3)  # let any double delivery or double run show itself
    replies = N // REPLY_EVERY
    with engine.connect() as conn:
        assert conn.scalar(select(func.count(RawMail.id))) == N + replies
        assert conn.scalar(select(func.count(RawMail.id)).where(RawMail.state != "done")) == 0
        assert conn.scalar(select(func.count(Message.id))) == N + replies
        assert conn.scalar(select(func.count(Ticket.id))) == N
        on_own_ticket = conn.execute(select(func.count()).select_from(Message).join(
            Ticket, Message.ticket_id == Ticket.id).where(
            Message.message_id.like("scale-reply-%"), Message.matched_by == "in-reply-to",
            Ticket.subject == func.replace(Message.subject, "Re: ", ""))).scalar()
        assert on_own_ticket == replies
        for purpose in ("acknowledgement", "assignment"):  # the first admin gets every unmatched ticket
            assert conn.scalar(select(func.count(Outbox.id)).where(Outbox.state == "sent",
                                                                   Outbox.purpose == purpose)) == N
        # A reply may come before or after its ticket's first triage: one or two jobs per thread,
        # each run once (one summary per run).
        jobs_done = conn.scalar(select(func.count(Job.id)).where(Job.state == "done"))
        assert N <= jobs_done <= N + replies
        assert conn.scalar(select(func.count(TicketSummary.id))) == jobs_done
    engine.dispose()
    recipients = [rcpts[0] for _, rcpts, _ in sink.envelopes() if rcpts[0].startswith("customer")]
    assert len(recipients) == N and len(set(recipients)) == N  # each acknowledgement delivered once
