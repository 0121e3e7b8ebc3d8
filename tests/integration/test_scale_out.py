"""Several processes on one PostgreSQL: one SMTP door and three workers, 1,000 mails.
Every mail is stored once, every acknowledgement sent once, no job runs twice."""
from __future__ import annotations

import smtplib
import time
from email.message import EmailMessage

import pytest
from sqlalchemy import create_engine, func, select

from core.models import Job, Message, Outbox, RawMail, Ticket, TicketSummary
from tests.support.server import PostdeskProcess

N = 1000


def _mail(i: int) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"customer{i}@example.org"
    msg["To"] = "support@example.test"
    msg["Subject"] = f"Problem number {i}"
    msg["Message-ID"] = f"<scale-{i}@example.org>"
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
            smtp.sendmail("customer0@example.org", ["support@example.test"], _mail(0))  # a resend
        engine = create_engine(db_url)
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                done = conn.scalar(select(func.count()).select_from(Job).where(Job.state == "done"))
            if done >= N and len(sink.envelopes()) >= 2 * N:  # acknowledgements + assignment notices
                break
            time.sleep(0.5)
        time.sleep(3)  # let any double delivery or double run show itself
    with engine.connect() as conn:
        assert conn.scalar(select(func.count(RawMail.id))) == N
        assert conn.scalar(select(func.count(RawMail.id)).where(RawMail.state != "done")) == 0
        assert conn.scalar(select(func.count(Message.id))) == N
        assert conn.scalar(select(func.count(Ticket.id))) == N
        for purpose in ("acknowledgement", "assignment"):  # the first admin gets every unmatched ticket
            assert conn.scalar(select(func.count(Outbox.id)).where(Outbox.state == "sent",
                                                                   Outbox.purpose == purpose)) == N
        assert conn.scalar(select(func.count(Job.id)).where(Job.state == "done")) == N
        assert conn.scalar(select(func.count(TicketSummary.id))) == N  # one triage per ticket, none twice
    engine.dispose()
    recipients = [rcpts[0] for _, rcpts, _ in sink.envelopes() if rcpts[0].startswith("customer")]
    assert len(recipients) == N and len(set(recipients)) == N  # each acknowledgement delivered once
