"""On SQLite the SMTP door commits each mail to a staging file of its own and a mover takes it into
the spool (ingest.staging): what the door answered 250 survives a SIGKILL, a locked or failing
database and a crash between the move and the forgetting, and is stored exactly once."""
from __future__ import annotations

import os
import signal
import smtplib
import sqlite3
import time

import pytest
from sqlalchemy import func, select, text

from core.db import staged_count
from core.health import readiness
from core.models import Message, RawMail
from ingest import spool
from ingest.staging import StagingSpool, staging_path
from tests.support.server import PostdeskProcess, SmtpDoor, run_postdesk


def _mail(n: int) -> bytes:
    return (f"From: Ann <ann@example.org>\r\nTo: support@example.test\r\nSubject: staged {n}\r\n"
            f"Message-ID: <staged-{n}@example.org>\r\n\r\nHello number {n}\r\n").encode()


def _sqlite_only(desk_or_url) -> str:
    url = desk_or_url if isinstance(desk_or_url, str) else desk_or_url.settings.database.url
    if staging_path(url) is None:
        pytest.skip("PostgreSQL: the door writes to raw_mail directly")
    return url


def _count(desk, model, *where) -> int:
    with desk.sessions() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


def _wait(predicate, timeout: float = 15.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _send(port: int, raw: bytes) -> tuple[int, bytes]:
    with smtplib.SMTP("127.0.0.1", port, timeout=20) as smtp:
        smtp.ehlo()
        smtp.mail("ann@example.org")
        smtp.rcpt("support@example.test")
        return smtp.data(raw)


def test_mail_a_sigkilled_door_had_staged_is_stored_after_the_restart(db_url, tmp_path):
    """The database is locked while three mails come in: each is answered 250 from the staging file.
    SIGKILL, lock released: the mails wait in the staging file, and the next start stores each once."""
    _sqlite_only(db_url)
    env = {"POSTDESK_DATABASE__URL": db_url}
    with PostdeskProcess(tmp_path / "run", env, only="smtp,worker") as server:
        blocker = sqlite3.connect(db_url.removeprefix("sqlite:///"), isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        try:
            for n in range(3):
                code, answer = _send(server.smtp_port, _mail(n))
                assert code == 250, answer
            os.kill(server.proc.pid, signal.SIGKILL)
            server.proc.wait()
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
    assert staged_count(db_url) == 3
    with PostdeskProcess(tmp_path / "run2", env, only="smtp,worker") as server:
        from postdesk.bootstrap import bootstrap
        from tests.conftest import make_settings

        desk = bootstrap(settings=make_settings(db_url, tmp_path / "run2"))
        try:
            _wait(lambda: _count(desk, Message, Message.direction == "in") == 3, 30, "three stored mails")
            assert _count(desk, RawMail) == 3 and staged_count(db_url) == 0
        finally:
            desk.engine.dispose()


def test_a_mail_moved_but_not_yet_forgotten_is_stored_once(desk):
    """A crash after the move's commit and before the staging row's delete: moved again, kept once."""
    url = _sqlite_only(desk)
    staging = StagingSpool(staging_path(url), desk.sessions, lambda: None)
    staging.put(_mail(1), "smtp", "ann@example.org", ("support@example.test",))
    spool.put(desk.sessions, _mail(1), "smtp", "ann@example.org", ("support@example.test",))  # the move's commit
    assert staged_count(url) == 1 and _count(desk, RawMail) == 1
    assert staging.move_all() == 1
    assert staged_count(url) == 0 and _count(desk, RawMail) == 1
    staging.close()


def test_a_failing_database_leaves_accepted_mail_staged_until_it_recovers(desk):
    """An insert into raw_mail fails inside the database: the door still answers 250 (the mail is on
    disk in its staging file); the mover retries, and stores it once the failure is gone."""
    url = _sqlite_only(desk)
    with desk.engine.begin() as conn:
        conn.execute(text("CREATE TRIGGER boom BEFORE INSERT ON raw_mail BEGIN SELECT RAISE(ABORT, 'disk on fire'); END"))
    with SmtpDoor(desk) as door:
        code, _ = _send(door.port, _mail(7))
        assert code == 250
        time.sleep(1.0)  # the mover has tried and failed by now
        assert staged_count(url) == 1 and _count(desk, RawMail) == 0
        assert readiness(desk.sessions).spool_backlog == 1  # the waiting mail is visible to operators
        with desk.engine.begin() as conn:
            conn.execute(text("DROP TRIGGER boom"))
        _wait(lambda: _count(desk, Message) == 1, 20, "the mail stored after the database recovered")
    assert staged_count(url) == 0 and _count(desk, RawMail) == 1


def test_backup_takes_the_staged_mails_into_the_database_first(desk, tmp_path):
    """A backup made while mails wait in the staging file holds them."""
    url = _sqlite_only(desk)
    staging = StagingSpool(staging_path(url), desk.sessions, lambda: None)
    staging.put(_mail(3), "smtp", "ann@example.org", ("support@example.test",))
    staging.release()
    target = tmp_path / "backup.db"
    result = run_postdesk(["backup", str(target)], tmp_path, {"POSTDESK_DATABASE__URL": url})
    assert result.returncode == 0, result.stderr.decode()
    with sqlite3.connect(target) as conn:
        assert conn.execute("SELECT count(*) FROM raw_mail WHERE message_id = 'staged-3@example.org'").fetchone()[0] == 1
    assert staged_count(url) == 0


def test_a_mail_the_database_refuses_does_not_hold_up_the_mail_behind_it(desk):
    """One staged mail that raw_mail refuses (a fault of that mail alone) stays staged and is logged;
    the mails around it are stored."""
    url = _sqlite_only(desk)
    with desk.engine.begin() as conn:
        conn.execute(text("CREATE TRIGGER poison BEFORE INSERT ON raw_mail WHEN NEW.message_id = 'staged-2@example.org' "
                          "BEGIN SELECT RAISE(ABORT, 'refused'); END"))
    staging = StagingSpool(staging_path(url), desk.sessions, lambda: None)
    for n in range(5):
        staging.put(_mail(n), "smtp", "ann@example.org", ("support@example.test",))
    staging.move_all()
    with desk.sessions() as s:
        stored = set(s.scalars(select(RawMail.message_id)))
    assert stored == {f"staged-{n}@example.org" for n in (0, 1, 3, 4)}
    assert staged_count(url) == 1  # kept, never dropped
    with desk.engine.begin() as conn:
        conn.execute(text("DROP TRIGGER poison"))
    staging.close()  # tries the refused mail once more
    assert staged_count(url) == 0 and _count(desk, RawMail) == 5
