"""Outbox delivery through a real SMTP sink: retry on 4xx with backoff, give up on 5xx,
the local folder when no smarthost is configured; and no transaction held while a mail
travels: a slow smarthost blocks no intake, two deliverers never send one row twice, a
deliverer killed mid-send leaves its row to be sent again when its lease ends."""
from __future__ import annotations

import dataclasses
import email
import email.policy
import os
import subprocess
import sys
import threading
import time
from datetime import timedelta

from sqlalchemy import select

from core import outbound
from core.db import make_engine, make_session_factory
from core.models import Contact, Outbox, aware, utcnow
from core.outbound import deliver_due
from tests.integration.test_receive_mail import mail, receive
from tests.support.stalling_sink import StallingSink


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


def _queue(desk, count: int) -> list[str]:
    """`count` pending outbox rows, due now; returns their Message-IDs."""
    ids = [f"<queued-{i}@example.test>" for i in range(count)]
    with desk.sessions() as s, s.begin():
        for i, msgid in enumerate(ids):
            raw = (f"From: support@example.test\r\nTo: r{i}@example.org\r\nSubject: queued {i}\r\n"
                   f"Message-ID: {msgid}\r\n\r\nHello {i}.\r\n").encode()
            s.add(Outbox(ticket_id=None, purpose="acknowledgement", message_id=msgid, mail_from="support@example.test",
                         rcpt_to=f"r{i}@example.org", raw=raw))
    return ids


def _rows(desk) -> list[Outbox]:
    with desk.sessions() as s:
        return list(s.scalars(select(Outbox).order_by(Outbox.id)))


def _in_thread(target, *args) -> tuple[threading.Thread, list]:
    out: list = []
    thread = threading.Thread(target=lambda: out.append(target(*args)), daemon=True)
    thread.start()
    return thread, out


def test_a_stalled_smarthost_blocks_no_intake_write(desk):
    """The old delivery sent inside its transaction: on SQLite that held the write lock for the
    whole send, and every mail arriving meanwhile waited for the smarthost."""
    with StallingSink(stall=True, max_stall=20) as sink:
        _with_smarthost(desk, sink.port)
        receive(desk, mail("first"))  # its acknowledgement is due
        sender, sent = _in_thread(deliver_due, desk.sessions, desk.settings)
        assert sink.in_data.wait(10), "the acknowledgement never reached the smarthost"

        started = time.monotonic()
        second = receive(desk, mail("while the smarthost stalls"))  # spool.put + receive_mail: two writes
        took = time.monotonic() - started
        assert sender.is_alive()  # the send is still stalled
        sink.release()
        sender.join(20)

    assert took < 3, f"intake waited {took:.1f}s for the smarthost"
    assert second.acknowledged and sent == [1]
    assert [r.state for r in _rows(desk)] == ["sent", "pending"]


def test_two_deliverers_at_once_send_every_row_exactly_once(desk):
    ids = _queue(desk, 50)
    counts: list[int] = []

    def deliver_until_done(start: threading.Barrier) -> None:
        engine = make_engine(desk.settings.database.url)  # its own connections, like another process
        sessions = make_session_factory(engine)
        start.wait()
        total = 0
        while n := deliver_due(sessions, desk.settings, limit=5):
            total += n
        counts.append(total)
        engine.dispose()

    with StallingSink(delay=0.01) as sink:
        _with_smarthost(desk, sink.port)
        start = threading.Barrier(2)
        threads = [threading.Thread(target=deliver_until_done, args=(start,), daemon=True) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        sent_ids = [m["Message-ID"] for m in sink.mails()]

    assert sorted(sent_ids) == sorted(ids)  # every row once, none twice
    assert sum(counts) == 50 and all(counts), counts  # both took part
    assert {(r.state, r.attempts) for r in _rows(desk)} == {("sent", 1)}


DELIVER_IN_A_PROCESS = """
from core.config import load_settings
from core.db import make_engine, make_session_factory
from core.outbound import deliver_due

settings = load_settings()
print(deliver_due(make_session_factory(make_engine(settings.database.url)), settings))
"""


def test_a_deliverer_killed_mid_send_leaves_its_row_leased_and_it_is_sent_again_later(desk, tmp_path):
    _queue(desk, 1)
    with StallingSink(stall=True, max_stall=60) as sink:
        _with_smarthost(desk, sink.port)
        env = {k: v for k, v in os.environ.items() if not k.startswith("POSTDESK_")}
        env.update({"POSTDESK_DATABASE__URL": desk.settings.database.url, "POSTDESK_PATHS__VAR_DIR": str(tmp_path / "v"),
                    "POSTDESK_OUTBOUND__HOST": "127.0.0.1", "POSTDESK_OUTBOUND__PORT": str(sink.port)})
        proc = subprocess.Popen([sys.executable, "-c", DELIVER_IN_A_PROCESS], cwd=tmp_path, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            assert sink.in_data.wait(30), proc.communicate(timeout=5)[0].decode()
            [row] = _rows(desk)  # claimed and committed before the send began
            assert (row.state, row.attempts) == ("pending", 1)
            assert aware(row.next_attempt_at) > utcnow() + timedelta(seconds=20)  # [outbound] lease_seconds
        finally:
            proc.kill()  # SIGKILL in the middle of DATA
            proc.wait(10)
        assert deliver_due(desk.sessions, desk.settings) == 0  # still leased: nobody sends it meanwhile

        with desk.sessions() as s, s.begin():  # the lease runs out
            s.get(Outbox, row.id).next_attempt_at = utcnow() - timedelta(seconds=1)
        sink.release()
        assert deliver_due(desk.sessions, desk.settings) == 1
        # This sink dropped the interrupted transaction; a smarthost that had already queued it
        # would now hold two copies: at least once, as deliver_due documents.
        assert [m["Message-ID"] for m in sink.wait_for(1)] == ["<queued-0@example.test>"]
    [row] = _rows(desk)
    assert (row.state, row.attempts) == ("sent", 2)


def test_a_batch_slower_than_its_lease_keeps_it_and_nobody_sends_a_mail_twice(desk):
    ids = _queue(desk, 8)
    with StallingSink(delay=0.3) as sink:
        _with_smarthost(desk, sink.port)
        desk.settings = dataclasses.replace(desk.settings, outbound=dataclasses.replace(
            desk.settings.outbound, lease_seconds=1, connections=1))  # 8 × 0.3 s: over twice the lease
        first, sent = _in_thread(deliver_due, desk.sessions, desk.settings)
        time.sleep(1.8)  # past the first lease: only its renewal keeps the rest of the batch ours
        assert deliver_due(desk.sessions, desk.settings) == 0
        first.join(30)
        assert sent == [8]
        assert sorted(m["Message-ID"] for m in sink.mails()) == sorted(ids)
    assert {(r.state, r.attempts) for r in _rows(desk)} == {("sent", 1)}


def test_temporary_failures_fail_the_row_after_max_attempts(desk, sink):
    _with_smarthost(desk, sink.port)
    desk.settings = dataclasses.replace(desk.settings, outbound=dataclasses.replace(desk.settings.outbound,
                                                                                    max_attempts=2))
    _queue(desk, 1)
    sink.refuse("451 4.3.0 try again later")
    assert deliver_due(desk.sessions, desk.settings) == 0
    with desk.sessions() as s, s.begin():
        s.scalar(select(Outbox)).next_attempt_at = utcnow()
    assert deliver_due(desk.sessions, desk.settings) == 0
    [row] = _rows(desk)
    assert (row.state, row.attempts) == ("failed", 2) and "451" in row.last_error
