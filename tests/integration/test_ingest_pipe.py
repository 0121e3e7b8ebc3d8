"""`postdesk ingest` as an MTA pipe runs it: stdin in, sysexits code out."""
from __future__ import annotations

from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from core.models import Message, RawMail, Ticket
from tests.support.server import run_postdesk

MAIL = (b"From: Bob <bob@example.org>\nTo: support@example.test\nSubject: VPN drops\n"
        b"Message-ID: <pipe-1@example.org>\n\nThe VPN drops every hour.\n")


def _env(db_url: str, tmp_path) -> dict[str, str]:
    return {"POSTDESK_DATABASE__URL": db_url, "POSTDESK_PATHS__VAR_DIR": str(tmp_path / "var"),
            "POSTDESK_OUTBOUND__OUTBOX_DIR": str(tmp_path / "outbox")}


def test_ingest_from_stdin_opens_ticket_and_is_idempotent(db_url, tmp_path):
    env = _env(db_url, tmp_path)
    first = run_postdesk(["ingest", "-"], tmp_path, env, stdin=MAIL)
    assert first.returncode == 0, first.stderr.decode()
    again = run_postdesk(["ingest"], tmp_path, env, stdin=MAIL)
    assert again.returncode == 0, again.stderr.decode()
    engine = create_engine(db_url)
    with Session(engine) as s:
        assert s.scalar(select(func.count(Message.id))) == 1
        assert s.scalar(select(func.count(RawMail.id))) == 1
        ticket = s.scalar(select(Ticket))
        assert ticket.subject == "VPN drops" and ticket.requester.email == "bob@example.org"
    engine.dispose()


def test_ingest_from_file_and_quarantine_of_bad_input(db_url, tmp_path):
    env = _env(db_url, tmp_path)
    path = tmp_path / "mail.eml"
    path.write_bytes(MAIL)
    assert run_postdesk(["ingest", str(path)], tmp_path, env).returncode == 0
    empty = run_postdesk(["ingest", "-"], tmp_path, env, stdin=b"\n\n")
    assert empty.returncode == 65
    listed = run_postdesk(["quarantine", "list"], tmp_path, env)
    assert listed.returncode == 0 and b"empty message" in listed.stdout
    assert run_postdesk(["ingest", str(tmp_path / "missing.eml")], tmp_path, env).returncode == 66


def test_ingest_answers_tempfail_when_the_database_is_unreachable(tmp_path):
    env = _env("postgresql+psycopg://postgres@127.0.0.1:1/none?connect_timeout=2", tmp_path)
    result = run_postdesk(["ingest", "-"], tmp_path, env, stdin=MAIL)
    assert result.returncode == 75
