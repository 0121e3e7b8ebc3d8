"""The SMTP door under the outside probe's faults, on a real socket and both databases: memory across
connections, control bytes in the envelope, a database that does not answer in time."""
from __future__ import annotations

import contextlib
import smtplib
import sqlite3
import threading

import pytest
from sqlalchemy import create_engine, func, select, text

from core.db import migrate
from core.models import RawMail
from ingest.staging import staging_path
from postdesk.bootstrap import bootstrap
from tests.conftest import make_settings
from tests.support.server import SmtpDoor

MAIL = (b"From: Ann <ann@example.org>\r\nTo: support@example.test\r\nSubject: Hello\r\n"
        b"Message-ID: <%s@example.org>\r\n\r\nBody text.\r\n")


@pytest.fixture
def make_desk(db_url, tmp_path):
    made = []

    def make(**smtp):
        settings = make_settings(db_url, tmp_path, smtp=smtp)
        migrate(settings.database.url)
        made.append(bootstrap(settings=settings))
        return made[-1]

    yield make
    for desk in made:
        desk.engine.dispose()


def _count(desk) -> int:
    with desk.sessions() as s:
        return s.scalar(select(func.count()).select_from(RawMail))


def _in_data(port: int, size: int | None = None) -> tuple[smtplib.SMTP, int]:
    """A connection that sent DATA (with or without a declared SIZE) and got its first answer."""
    smtp = smtplib.SMTP("127.0.0.1", port, timeout=20)
    smtp.ehlo()
    smtp.mail("ann@example.org", [f"SIZE={size}"] if size else [])
    smtp.rcpt("support@example.test")
    smtp.putcmd("data")
    return smtp, smtp.getreply()[0]


def _finish(smtp: smtplib.SMTP, raw: bytes) -> int:
    smtp.send(raw + b".\r\n")
    code = smtp.getreply()[0]
    smtp.quit()
    return code


def test_mail_in_transit_across_connections_is_bounded_with_452(make_desk):
    desk = make_desk(max_message_bytes=200_000, max_inflight_bytes=300_000)
    with SmtpDoor(desk, with_worker=False) as door:
        first, started = _in_data(door.port)                  # no SIZE: holds room for the largest mail
        second, refused = _in_data(door.port)
        small, declared = _in_data(door.port, size=1_000)     # a declared small mail still fits
        assert (started, refused, declared) == (354, 452, 354)
        assert _finish(first, MAIL % b"t1") == 250 and _finish(small, MAIL % b"t2") == 250
        second.quit()
        again, started_again = _in_data(door.port)            # the room is free again
        assert started_again == 354 and _finish(again, MAIL % b"t3") == 250
    assert _count(desk) == 3


def test_refusal_text_names_the_storage_condition(make_desk):
    desk = make_desk(max_message_bytes=200_000, max_inflight_bytes=100_000)
    with SmtpDoor(desk, with_worker=False) as door:
        with smtplib.SMTP("127.0.0.1", door.port, timeout=20) as smtp:
            smtp.ehlo()
            smtp.mail("ann@example.org")
            smtp.rcpt("support@example.test")
            code, text_ = smtp.docmd("DATA")
    assert code == 452 and text_.startswith(b"4.3.1")


@pytest.mark.parametrize("sender, rcpt, refused_at", [
    ("ann\x00@example.org", "support@example.test", "mail"),
    ("ann@exa\x01mple.org", "support@example.test", "mail"),
    ("ann@example.org", "support\x00@example.test", "rcpt"),
    ("ann@example.org", "supp\x7fort@example.test", "rcpt"),
])
def test_control_bytes_in_the_envelope_are_refused_for_good(make_desk, sender, rcpt, refused_at):
    desk = make_desk()
    with SmtpDoor(desk, with_worker=False) as door, smtplib.SMTP("127.0.0.1", door.port, timeout=20) as smtp:
        smtp.ehlo()
        mail_code, _ = smtp.docmd(f"MAIL FROM:<{sender}>")
        rcpt_code = smtp.docmd(f"RCPT TO:<{rcpt}>")[0] if mail_code == 250 else None
    assert (mail_code if refused_at == "mail" else rcpt_code) == 553
    assert _count(desk) == 0


@contextlib.contextmanager
def _database_locked(desk):
    """Another client holds the lock the door's writes need (on SQLite its staging file's), until the block ends."""
    url = desk.settings.database.url
    if url.startswith("sqlite"):
        conn = sqlite3.connect(staging_path(url), isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")
            conn.close()
        return
    engine = create_engine(url)
    with engine.connect() as conn:
        conn.execute(text("LOCK TABLE raw_mail IN ACCESS EXCLUSIVE MODE"))
        try:
            yield
        finally:
            conn.rollback()
    engine.dispose()


def test_data_is_answered_451_in_time_when_the_database_is_locked(make_desk):
    desk = make_desk(data_timeout_seconds=1.5)
    with SmtpDoor(desk, with_worker=False) as door:
        with _database_locked(desk):
            with smtplib.SMTP("127.0.0.1", door.port, timeout=20) as smtp:   # before: no answer for as long
                smtp.ehlo()
                smtp.mail("ann@example.org")
                smtp.rcpt("support@example.test")
                code, answer = smtp.data(MAIL % b"locked")
        assert code == 451 and answer.startswith(b"4.3.0")
        with smtplib.SMTP("127.0.0.1", door.port, timeout=20) as smtp:      # the sender's retry
            assert smtp.sendmail("ann@example.org", ["support@example.test"], MAIL % b"locked") == {}
    assert _count(desk) == 1                                                 # stored once, never twice
