"""CSV export benchmark: GET /api/tickets/export.csv's generator over 100,000 tickets on PostgreSQL.

    .venv/bin/python bench/export.py [--tickets 100000] [--url postgresql+psycopg://…/test]

Creates a throwaway schema, migrates it, COPYs 1,000 customers, 20 agents and N tickets in, then
drains core.reports.export.csv_chunks (what the route streams) and reports rows, bytes, seconds and
the peak of Python memory allocated while it ran (tracemalloc), next to the same rows read all at
once (`.all()`, what a non-streaming export would hold). The schema is dropped afterwards.
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import time
import tracemalloc
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from core.db import make_engine, make_session_factory, migrate, normalise_url  # noqa: E402
from core.queries import TicketFilter  # noqa: E402
from core.reports.export import csv_chunks, export_rows  # noqa: E402

DEFAULT_URL = os.environ.get("POSTDESK_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _schema_url(url: str, schema: str) -> str:
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options=-csearch_path%3D{schema}"


def _libpq(url: str) -> str:
    return make_url(normalise_url(url)).set(drivername="postgresql").render_as_string(hide_password=False)


def seed(url: str, schema: str, tickets: int) -> None:
    rng, now = random.Random(14), datetime.now(timezone.utc)
    with psycopg.connect(_libpq(url), options=f"-csearch_path={schema}") as conn:
        with conn.cursor().copy("COPY contact (id, email, name, role, active, undeliverable, created_at, "
                                "notify_replies, notify_status) FROM STDIN") as copy:
            for i in range(1, 1021):
                role = "agent" if i <= 20 else "customer"
                copy.write_row((i, f"person{i}@export.bench.example", f"Person {i}", role, True, False, now, True, True))
        with conn.cursor().copy("COPY ticket (id, reference, subject, status, priority, category, requester_id, "
                                "assignee_id, summary, resolution, created_at, updated_at, sla_breached, "
                                "first_response_due_at, resolution_due_at) FROM STDIN") as copy:
            for i in range(1, tickets + 1):
                created = now - timedelta(minutes=tickets - i)
                copy.write_row((i, f"PD-E{i:07d}", f"Printer {i} jams on page {rng.randint(1, 99)}",
                                rng.choice(["new", "in_progress", "waiting", "resolved", "closed"]),
                                rng.choice(["low", "medium", "high", "critical"]),
                                rng.choice(["billing", "technical", "account", "general"]), rng.randint(21, 1020),
                                rng.randint(1, 20) if rng.random() < 0.85 else None, "", "", created, created,
                                rng.random() < 0.1, created + timedelta(hours=4), created + timedelta(hours=24)))
        conn.execute("SELECT setval(pg_get_serial_sequence('ticket', 'id'), (SELECT max(id) FROM ticket))")
        conn.commit()


def measure(sessions, what: str, run) -> None:
    tracemalloc.start()
    started = time.perf_counter()
    rows, size = run()
    seconds = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"{what:<34} {rows:>9,} rows  {size / 1e6:>7.1f} MB  {seconds:>6.2f} s  peak {peak / 1e6:>7.1f} MB")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--url", default=DEFAULT_URL)
    args = parser.parse_args(argv)
    schema = f"bench_export_{uuid.uuid4().hex[:8]}"
    admin = create_engine(normalise_url(args.url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = _schema_url(args.url, schema)
    try:
        migrate(url)
        started = time.perf_counter()
        seed(args.url, schema, args.tickets)
        print(f"seeded {args.tickets:,} tickets in {time.perf_counter() - started:.1f} s (schema {schema})")
        engine = make_engine(url)
        sessions = make_session_factory(engine)

        def streamed():
            rows = size = 0
            for chunk in csv_chunks(sessions, TicketFilter()):
                rows += chunk.count("\n")
                size += len(chunk.encode())
            return rows - 1, size

        def all_at_once():
            with sessions() as session:
                found = list(export_rows(session, TicketFilter()))
                return len(found), 0

        measure(sessions, "streamed CSV (export.csv)", streamed)
        measure(sessions, "the same rows read all at once", all_at_once)
        engine.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
