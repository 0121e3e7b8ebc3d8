"""The `postdesk` command's administrative subcommands, run as scripts run them."""
from __future__ import annotations

from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from core.accounts import verify_password
from core.db import at_head
from core.models import Contact
from tests.support.server import run_postdesk


def test_migrate_then_user_add_with_password_from_stdin(db_url, tmp_path):
    env = {"POSTDESK_DATABASE__URL": db_url, "POSTDESK_PATHS__VAR_DIR": str(tmp_path / "var")}
    assert run_postdesk(["migrate"], tmp_path, env).returncode == 0
    engine = create_engine(db_url)
    assert at_head(engine)
    added = run_postdesk(["user", "add", "--email", "Boss@Example.test", "--role", "admin", "--name", "Boss",
                          "--password-stdin"], tmp_path, env, stdin=b"correct horse battery\n")
    assert added.returncode == 0, added.stderr.decode()
    with Session(engine) as s:
        boss = s.scalar(select(Contact).where(Contact.email == "boss@example.test"))
        assert boss.role == "admin" and boss.name == "Boss"
        assert boss.password_hash.startswith("$argon2id$")
        assert verify_password(boss.password_hash, "correct horse battery")
        assert not verify_password(boss.password_hash, "wrong password")
    engine.dispose()


def test_user_add_refuses_bad_input_with_a_clear_message(db_url, tmp_path):
    env = {"POSTDESK_DATABASE__URL": db_url, "POSTDESK_PATHS__VAR_DIR": str(tmp_path / "var")}
    assert run_postdesk(["migrate"], tmp_path, env).returncode == 0
    short = run_postdesk(["user", "add", "--email", "a@example.test", "--role", "agent", "--password-stdin"],
                         tmp_path, env, stdin=b"short\n")
    assert short.returncode == 1 and b"at least 8 characters" in short.stderr
    bad = run_postdesk(["user", "add", "--email", "not-an-address", "--role", "agent"], tmp_path, env)
    assert bad.returncode == 1 and b"invalid email address" in bad.stderr


def test_bad_configuration_is_reported_not_a_traceback(tmp_path):
    result = run_postdesk(["migrate"], tmp_path, {"POSTDESK_SMTP__PORT": "many"})
    assert result.returncode == 78 and b"[smtp] port" in result.stderr and b"Traceback" not in result.stderr


def test_import_json_loads_the_exercise_dataset_once(db_url, tmp_path):
    from pathlib import Path

    from core.models import Ticket

    dataset = Path(__file__).resolve().parents[3] / "shared" / "data" / "mx_ex_dataset.json"
    env = {"POSTDESK_DATABASE__URL": db_url, "POSTDESK_PATHS__VAR_DIR": str(tmp_path / "var")}
    assert run_postdesk(["migrate"], tmp_path, env).returncode == 0
    first = run_postdesk(["import-json", str(dataset)], tmp_path, env)
    assert first.returncode == 0, first.stderr.decode()
    assert b"imported 5, already there 0" in first.stdout
    again = run_postdesk(["import-json", str(dataset)], tmp_path, env)
    assert b"imported 0, already there 5" in again.stdout
    engine = create_engine(db_url)
    with Session(engine) as s:
        statuses = sorted(s.scalars(select(Ticket.status)))
    engine.dispose()
    assert len(statuses) == 5 and set(statuses) <= {"new", "in_progress", "resolved", "closed"}
    missing = run_postdesk(["import-json", str(tmp_path / "nope.json")], tmp_path, env)
    assert missing.returncode == 66
