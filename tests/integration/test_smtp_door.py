"""The SMTP door's promises on a real socket: 250 only when stored, 451 when not, 550 for
strangers' addresses, 552 for oversize; and the acknowledgement cannot be made to carry an
injected header."""
from __future__ import annotations

import dataclasses
import smtplib
import sqlite3
import time

import pytest
from sqlalchemy import func, select, text

from core.models import Message, Outbox, RawMail, Ticket
from core.outbound import deliver_due
from ingest.staging import staging_path
from tests.support.server import SmtpDoor


def _send(port: int, raw: bytes, rcpt: str = "support@example.test", sender: str = "ann@example.org"):
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        smtp.ehlo()
        smtp.mail(sender)
        code, msg = smtp.rcpt(rcpt)
        if code != 250:
            return code, msg
        return smtp.data(raw)


def _count(desk, model) -> int:
    with desk.sessions() as s:
        return s.scalar(select(func.count()).select_from(model))


def _wait_count(desk, model, n: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _count(desk, model) >= n:
            return
        time.sleep(0.05)
    raise AssertionError(f"{model.__name__}: expected {n} rows, have {_count(desk, model)}")


PLAIN = (b"From: Ann <ann@example.org>\r\nTo: support@example.test\r\nSubject: Hello\r\n"
         b"Message-ID: <m1@example.org>\r\n\r\nBody text.\r\n")


def test_foreign_recipient_is_refused_with_550_no_open_relay(desk):
    with SmtpDoor(desk) as door:
        code, msg = _send(door.port, PLAIN, rcpt="victim@elsewhere.example")
    assert code == 550
    assert _count(desk, RawMail) == 0


def test_plus_address_of_ours_is_accepted(desk):
    with SmtpDoor(desk, with_worker=False) as door:
        code, _ = _send(door.port, PLAIN, rcpt="support+7.abcdefabcdef@example.test")
    assert code == 250
    assert _count(desk, RawMail) == 1


def test_oversize_mail_is_refused_with_552(db_url, tmp_path):
    from core.db import migrate
    from postdesk.bootstrap import bootstrap
    from tests.conftest import make_settings

    settings = make_settings(db_url, tmp_path, smtp={"max_message_bytes": 2000})
    migrate(settings.database.url)
    desk = bootstrap(settings=settings)
    big = PLAIN + (b"x" * 70 + b"\r\n") * 80
    with SmtpDoor(desk, with_worker=False) as door:
        with smtplib.SMTP("127.0.0.1", door.port, timeout=10) as smtp:
            smtp.ehlo()
            smtp.mail("ann@example.org")
            smtp.rcpt("support@example.test")
            code, _ = smtp.data(big)
    assert code == 552
    assert _count(desk, RawMail) == 0
    desk.engine.dispose()


def _fail_inserts(desk, table: str, error: str) -> None:
    """Make every insert into `table` fail inside the database (a real store failure, no monkeypatching)."""
    with desk.engine.begin() as conn:
        if desk.engine.dialect.name == "postgresql":
            conn.execute(text("CREATE FUNCTION boom() RETURNS trigger AS $$ BEGIN "
                              f"RAISE EXCEPTION '{error}'; END $$ LANGUAGE plpgsql"))
            conn.execute(text(f"CREATE TRIGGER boom BEFORE INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION boom()"))
        else:
            conn.execute(text(f"CREATE TRIGGER boom BEFORE INSERT ON {table} BEGIN SELECT RAISE(ABORT, '{error}'); END"))


def _fail_door_store(desk, error: str) -> None:
    """Make the door's own store fail: raw_mail on PostgreSQL, its staging file on SQLite."""
    path = staging_path(desk.settings.database.url)
    if path is None:
        _fail_inserts(desk, "raw_mail", error)
        return
    with sqlite3.connect(path) as conn:
        conn.execute(f"CREATE TRIGGER boom BEFORE INSERT ON staged BEGIN SELECT RAISE(ABORT, '{error}'); END")


def _staged(desk) -> int:
    path = staging_path(desk.settings.database.url)
    if path is None or not path.exists():
        return 0
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT count(*) FROM staged").fetchone()[0]


def test_store_failure_during_data_answers_451_and_stores_nothing(desk):
    with SmtpDoor(desk) as door:
        _fail_door_store(desk, "disk on fire")
        code, msg = _send(door.port, PLAIN)
    assert code == 451 and msg.startswith(b"4.3.0")
    assert b"Error" not in msg  # never aiosmtpd's default '500 Error: (...)'
    assert _count(desk, RawMail) == 0 and _count(desk, Ticket) == 0 and _count(desk, Message) == 0
    assert _staged(desk) == 0


def test_on_sqlite_a_250_waits_for_the_doors_own_file_not_the_database(desk):
    """The door commits to its staging file: a database locked by a long write does not hold up the
    250, and the mail reaches the spool once the lock is gone (never twice)."""
    path = staging_path(desk.settings.database.url)
    if path is None:
        pytest.skip("PostgreSQL: the door writes to raw_mail, whose row locks do not wait on the worker")
    with SmtpDoor(desk, with_worker=False) as door:
        blocker = sqlite3.connect(desk.settings.database.url.removeprefix("sqlite:///"), isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        try:
            started = time.monotonic()
            code, msg = _send(door.port, PLAIN)
            assert code == 250 and b"queued as S" in msg
            assert time.monotonic() - started < 5  # the lock is held for as long as the test likes
            assert _staged(desk) == 1
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        _wait_count(desk, RawMail, 1)
    assert _count(desk, RawMail) == 1 and _staged(desk) == 0


def test_processing_failure_keeps_the_mail_and_half_stores_nothing(desk):
    """250 once spooled; a failure while opening the ticket rolls back the whole ticket."""
    _fail_inserts(desk, "message", "boom")
    with SmtpDoor(desk) as door:
        code, _ = _send(door.port, PLAIN)
        assert code == 250
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with desk.sessions() as s:
                row = s.scalar(select(RawMail))  # on SQLite it reaches raw_mail just after the 250
                if row is not None and row.state == "quarantined":
                    break
            time.sleep(0.1)
    assert row.state == "quarantined" and row.attempts == desk.settings.intake.max_attempts
    assert "boom" in row.last_error
    assert _count(desk, Ticket) == 0 and _count(desk, Outbox) == 0


def test_same_message_id_twice_over_smtp_is_stored_once(desk):
    with SmtpDoor(desk) as door:
        assert _send(door.port, PLAIN)[0] == 250
        assert _send(door.port, PLAIN)[0] == 250
        _wait_count(desk, Message, 1)
        time.sleep(0.3)
    assert _count(desk, RawMail) == 1 and _count(desk, Message) == 1 and _count(desk, Ticket) == 1


@pytest.mark.parametrize("subject", [
    b"=?UTF-8?Q?Hello=0D=0ABcc:_victim@evil.example?=",
    b"=?UTF-8?B?SGVsbG8NCkJjYzogdmljdGltQGV2aWwuZXhhbXBsZQ==?=",
    b"=?UTF-8?Q?Hi=0ABcc=3A_victim@evil.example=0D=0A=0D=0Ainjected_body?=",
])
def test_encoded_crlf_in_subject_never_becomes_a_header(desk, sink, subject):
    desk.settings = dataclasses.replace(desk.settings, outbound=dataclasses.replace(
        desk.settings.outbound, host="127.0.0.1", port=sink.port))
    raw = (b"From: =?UTF-8?Q?Ann=0D=0AX-Evil:_1?= <ann@example.org>\r\nTo: support@example.test\r\n"
           b"Subject: " + subject + b"\r\nMessage-ID: <inj@example.org>\r\n\r\nHello\r\n")
    with SmtpDoor(desk) as door:
        assert _send(door.port, raw)[0] == 250
        _wait_count(desk, Outbox, 1)
    assert deliver_due(desk.sessions, desk.settings) == 1
    (mail_from, rcpts, ack_raw), = sink.envelopes()
    assert rcpts == ["ann@example.org"]
    head = ack_raw.split(b"\r\n\r\n", 1)[0]
    names = [line.split(b":", 1)[0].lower() for line in head.split(b"\r\n") if line and line[:1] not in b" \t"]
    assert b"bcc" not in names and b"x-evil" not in names
    assert names.count(b"subject") == 1 and names.count(b"to") == 1
    assert b"victim@evil.example" not in b"".join(
        line for line in head.split(b"\r\n") if not line.lower().startswith(b"subject"))
