"""Shared fixtures: a fresh database on SQLite and on the machine's PostgreSQL, settings, a real SMTP sink."""
from __future__ import annotations

import dataclasses
import os
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from core.config import Settings, load_settings
from core.db import migrate
from postdesk.bootstrap import Postdesk, bootstrap
from tests.support.dns_server import StubDns
from tests.support.sink import SmtpSink

PG_ADMIN_URL = os.environ.get("POSTDESK_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REPO = Path(__file__).resolve().parent.parent
CORPUS = (REPO.parent / "shared" / "corpus").resolve()


# Sender authentication asks DNS on every mail at the SMTP door: in the tests it asks a stub on
# loopback that knows no name (each test that needs records starts its own), never real DNS. The
# variable reaches `postdesk` processes the tests start as well.
_NO_DNS = StubDns().__enter__()
os.environ["POSTDESK_INTAKE__DNS_SERVERS"] = _NO_DNS.address


def _pg_schema_url(schema: str) -> str:
    sep = "&" if "?" in PG_ADMIN_URL else "?"
    return f"{PG_ADMIN_URL}{sep}options=-csearch_path%3D{schema}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """A URL to an empty database: a SQLite file, or a throwaway schema in PostgreSQL.

    A missing PostgreSQL fails the test: both databases are part of the contract.
    """
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'postdesk.db'}"
        return
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # pragma: no cover - depends on the machine
        pytest.fail(f"PostgreSQL at {PG_ADMIN_URL} is required for the tests: {exc}")
    try:
        yield _pg_schema_url(schema)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def make_settings(db_url: str, tmp_path: Path, **sections) -> Settings:
    base = load_settings(environ={
        "POSTDESK_DATABASE__URL": db_url,
        "POSTDESK_OUTBOUND__OUTBOX_DIR": str(tmp_path / "outbox"),
        "POSTDESK_PATHS__VAR_DIR": str(tmp_path / "var"),
        "POSTDESK_WEB__SECRET_KEY": "test-secret-" + uuid.uuid4().hex,
        "POSTDESK_INTAKE__DNS_SERVERS": _NO_DNS.address,
    })
    for name, values in sections.items():
        base = dataclasses.replace(base, **{name: dataclasses.replace(getattr(base, name), **values)})
    return base


@pytest.fixture
def settings(db_url, tmp_path) -> Settings:
    return make_settings(db_url, tmp_path)


@pytest.fixture
def desk(settings) -> Postdesk:
    migrate(settings.database.url)
    d = bootstrap(settings=settings)
    yield d
    d.engine.dispose()


@pytest.fixture
def sink():
    with SmtpSink() as s:
        yield s
