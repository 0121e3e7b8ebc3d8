"""Outbox delivery through a real SMTP sink: retry on 4xx with backoff, give up on 5xx,
and the local folder when no smarthost is configured."""
from __future__ import annotations

import dataclasses
import email
import email.policy

from sqlalchemy import select

from core.models import Contact, Outbox
from core.outbound import deliver_due
from tests.integration.test_receive_mail import mail, receive


def _with_smarthost(desk, port: int):
    desk.settings = dataclasses.replace(desk.settings, outbound=dataclasses.replace(
        desk.settings.outbound, host="127.0.0.1", port=port))


def _row(desk) -> Outbox:
    with desk.sessions() as s:
        return s.scalar(select(Outbox))


def test_temporary_refusal_is_retried_later_then_delivered(desk, sink):
    _with_smarthost(desk, sink.port)
    receive(desk, mail())
    sink.refuse("451 4.3.0 try again later")
    assert deliver_due(desk.sessions, desk.settings) == 0
    row = _row(desk)
    assert row.state == "pending" and row.attempts == 1 and "451" in row.last_error
    assert row.next_attempt_at > row.created_at
    assert deliver_due(desk.sessions, desk.settings) == 0  # not due yet: no second attempt
    assert _row(desk).attempts == 1
    with desk.sessions() as s, s.begin():
        s.get(Outbox, row.id).next_attempt_at = row.created_at
    sink.refuse(None)
    assert deliver_due(desk.sessions, desk.settings) == 1
    assert _row(desk).state == "sent" and len(sink.wait_for(1)) == 1


def test_permanent_refusal_fails_and_marks_the_recipient_undeliverable(desk, sink):
    _with_smarthost(desk, sink.port)
    receive(desk, mail())
    sink.refuse("550 5.1.1 no such user")
    assert deliver_due(desk.sessions, desk.settings) == 0
    assert _row(desk).state == "failed"
    with desk.sessions() as s:
        assert s.scalar(select(Contact).where(Contact.email == "ann@example.org")).undeliverable
    assert not receive(desk, mail("another")).acknowledged  # no more mail to a dead address


def test_unreachable_smarthost_keeps_the_mail_pending(desk):
    from tests.support.net import free_port

    _with_smarthost(desk, free_port())
    receive(desk, mail())
    assert deliver_due(desk.sessions, desk.settings) == 0
    row = _row(desk)
    assert row.state == "pending" and row.attempts == 1 and row.last_error


def test_without_smarthost_mail_lands_in_the_outbox_folder(desk, tmp_path):
    receive(desk, mail(subject="Folder please"))
    assert deliver_due(desk.sessions, desk.settings) == 1
    files = sorted((tmp_path / "outbox").glob("*.eml"))
    assert len(files) == 1 and not list((tmp_path / "outbox").glob(".*.tmp"))
    msg = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
    assert msg["Subject"].endswith("Folder please") and msg["X-Auto-Response-Suppress"] == "All"
