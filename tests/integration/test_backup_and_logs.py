"""`postdesk backup` / `restore` on the SQLite default, and JSON log lines naming ticket and Message-ID."""
from __future__ import annotations

import json

from sqlalchemy import create_engine, func, select

from core.models import Message, Ticket
from tests.support.server import run_postdesk

MAIL = b"From: ann@example.org\nTo: support@example.test\nSubject: Keep me\nMessage-ID: <keep@x>\n\nData.\n"


def test_backup_then_restore_brings_mails_back(tmp_path):
    url = f"sqlite:///{tmp_path / 'var' / 'postdesk.db'}"
    env = {"POSTDESK_DATABASE__URL": url, "POSTDESK_PATHS__VAR_DIR": str(tmp_path / "var")}
    assert run_postdesk(["ingest", "-"], tmp_path, env, stdin=MAIL).returncode == 0
    done = run_postdesk(["backup", str(tmp_path / "b.db")], tmp_path, env)
    assert done.returncode == 0, done.stderr.decode()
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(Message.__table__.delete())
        conn.execute(Ticket.__table__.delete())
    engine.dispose()
    restored = run_postdesk(["restore", str(tmp_path / "b.db")], tmp_path, env)
    assert restored.returncode == 0, restored.stderr.decode()
    engine = create_engine(url)
    with engine.connect() as conn:
        assert conn.scalar(select(func.count(Ticket.id))) == 1
        assert conn.scalar(select(Message.body_text)).strip() == "Data."
    engine.dispose()
    bogus = tmp_path / "bogus.db"
    bogus.write_bytes(b"not a database")
    assert run_postdesk(["restore", str(bogus)], tmp_path, env).returncode == 1


def test_backup_refuses_postgresql_with_a_pointer_to_pg_dump(tmp_path):
    result = run_postdesk(["backup", str(tmp_path / "x")], tmp_path,
                          {"POSTDESK_DATABASE__URL": "postgresql://postgres@127.0.0.1/test"})
    assert result.returncode == 1 and b"pg_dump" in result.stderr


def test_json_logs_carry_ticket_and_message_id(db_url, tmp_path):
    env = {"POSTDESK_DATABASE__URL": db_url, "POSTDESK_LOG__FORMAT": "json",
           "POSTDESK_PATHS__VAR_DIR": str(tmp_path / "var")}
    result = run_postdesk(["ingest", "-"], tmp_path, env, stdin=MAIL)
    assert result.returncode == 0
    events = [json.loads(line) for line in result.stderr.decode().splitlines() if line.strip()]
    stored = [e for e in events if e["logger"] == "core.tickets"]
    assert stored and stored[0]["ticket_id"] == 1 and stored[0]["message_id"] == "keep@x"
