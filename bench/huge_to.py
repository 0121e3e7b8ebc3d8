"""Huge address headers: one mail whose To: names N people, through parse_mail and the whole intake
(spool → worker → receive_mail → followers up to [intake] max_followers, the rest noted), on
SQLite and/or PostgreSQL.

    .venv/bin/python bench/huge_to.py [--n 5000] [--db sqlite|postgresql|both]

Prints seconds per step for N/4, N/2 and N addresses (no asserts): linear time shows as a
doubling per row, a quadratic step as a quadrupling.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, func, select, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.db import migrate  # noqa: E402
from core.mail.parse import parse_mail  # noqa: E402
from core.models import Follower  # noqa: E402
from ingest import spool, worker  # noqa: E402
from postdesk.bootstrap import bootstrap  # noqa: E402
from tests.conftest import PG_ADMIN_URL, _pg_schema_url, make_settings  # noqa: E402


def huge_mail(n: int, tag: str) -> bytes:
    to = ",\r\n ".join(f'"Person {i}" <person{i}.{tag}@example{i % 50}.org>' for i in range(n))
    return (f"From: Ann <ann@example.org>\r\nTo: support@example.test,\r\n {to}\r\nSubject: Everyone\r\n"
            f"Message-ID: <huge-{tag}@example.org>\r\n\r\nHello all.\r\n").encode()


def run(db_url: str, tmp: Path, sizes: list[int]) -> None:
    settings = make_settings(db_url, tmp)
    migrate(settings.database.url)
    desk = bootstrap(settings=settings)
    print(f"{'addresses':>10} {'header KB':>10} {'parse s':>8} {'spool s':>8} {'intake s':>9} {'followers':>10}")
    for n in sizes:
        raw = huge_mail(n, f"{n}-{uuid.uuid4().hex[:6]}")
        started = time.perf_counter()
        parse_mail(raw)
        parsed = time.perf_counter()
        stored = spool.put(desk.sessions, raw, "smtp", "ann@example.org", ("support@example.test",))
        spooled = time.perf_counter()
        outcome = worker.process_one(desk.sessions, desk.settings, stored.id)
        done = time.perf_counter()
        with desk.sessions() as s:
            count = s.scalar(select(func.count()).select_from(Follower).where(
                Follower.ticket_id == outcome.received.ticket_id))
        print(f"{n:>10} {len(raw) / 1024:>10.0f} {parsed - started:>8.3f} {spooled - parsed:>8.3f} "
              f"{done - spooled:>9.3f} {count:>10}")
    desk.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    args = parser.parse_args()
    sizes = [args.n // 4, args.n // 2, args.n]
    if args.db in ("sqlite", "both"):
        print("SQLite")
        with tempfile.TemporaryDirectory() as tmp:
            run(f"sqlite:///{Path(tmp) / 'bench.db'}", Path(tmp), sizes)
    if args.db in ("postgresql", "both"):
        print("PostgreSQL")
        schema = f"bench_{uuid.uuid4().hex[:10]}"
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        try:
            with tempfile.TemporaryDirectory() as tmp:
                run(_pg_schema_url(schema), Path(tmp), sizes)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()


if __name__ == "__main__":
    main()
