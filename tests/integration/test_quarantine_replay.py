"""`postdesk quarantine replay` says what really happened, and fails while mails still fail."""
from __future__ import annotations

from sqlalchemy import select, text

from core.models import RawMail
from ingest import spool, worker
from tests.support.server import run_postdesk

MAIL = b"From: ann@example.org\r\nTo: support@example.test\r\nSubject: Hi\r\nMessage-ID: <q1@x>\r\n\r\nhello\r\n"


def _fail_message_inserts(desk) -> None:
    with desk.engine.begin() as conn:
        if desk.engine.dialect.name == "postgresql":
            conn.execute(text("CREATE FUNCTION boom() RETURNS trigger AS $$ BEGIN "
                              "RAISE EXCEPTION 'still broken'; END $$ LANGUAGE plpgsql"))
            conn.execute(text("CREATE TRIGGER boom BEFORE INSERT ON message FOR EACH ROW EXECUTE FUNCTION boom()"))
        else:
            conn.execute(text("CREATE TRIGGER boom BEFORE INSERT ON message BEGIN SELECT RAISE(ABORT, 'still broken'); END"))


def _heal(desk) -> None:
    with desk.engine.begin() as conn:
        conn.execute(text("DROP TRIGGER boom ON message" if desk.engine.dialect.name == "postgresql"
                          else "DROP TRIGGER boom"))


def _state(desk) -> str:
    with desk.sessions() as s:
        return s.scalar(select(RawMail.state))


def test_replay_of_a_mail_that_still_fails_says_so_and_exits_non_zero(desk, tmp_path):
    _fail_message_inserts(desk)
    spool.put(desk.sessions, MAIL, "smtp", "ann@example.org", ("support@example.test",))
    for _ in range(desk.settings.intake.max_attempts):
        worker.drain(desk.sessions, desk.settings)
    assert _state(desk) == "quarantined"
    env = {"POSTDESK_DATABASE__URL": desk.settings.database.url,
           "POSTDESK_WEB__SECRET_KEY": desk.settings.web.secret_key}

    still = run_postdesk(["quarantine", "replay", "--all"], tmp_path, env)
    assert still.returncode == 65, still.stderr
    assert "replayed 1: 0 processed, 1 failed again" in still.stdout.decode()
    assert _state(desk) == "quarantined"          # back where an admin sees it, not silently pending

    _heal(desk)
    healed = run_postdesk(["quarantine", "replay", "--all"], tmp_path, env)
    assert healed.returncode == 0, healed.stderr
    assert "replayed 1: 1 processed, 0 failed again" in healed.stdout.decode()
    assert _state(desk) == "done"
