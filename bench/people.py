"""People page benchmark: the admin's list with search, role filter and paging over 25,000 contacts.

    .venv/bin/python bench/people.py [--contacts 25000] [--runs 30] [--url postgresql+psycopg://…/test]

Creates a throwaway PostgreSQL schema, COPYs N contacts (customers, 40 agents, 2 admins) in, then
requests GET /admin/users through the app in this process (Starlette's TestClient: routing, the
queries, the template; no network) as a signed-in admin and prints median and p95 per case.
The schema is dropped afterwards.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import psycopg
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from core.accounts import add_user  # noqa: E402
from core.config import load_settings  # noqa: E402
from core.db import migrate, normalise_url  # noqa: E402
from core.sessions import start_session  # noqa: E402
from portal.app import create_app  # noqa: E402
from postdesk.bootstrap import bootstrap  # noqa: E402

DEFAULT_URL = os.environ.get("POSTDESK_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
CASES = [("everyone, page 1", "/admin/users"), ("everyone, last page", "/admin/users?page=500"),
         ("customers, page 100", "/admin/users?role=customer&page=100"), ("agents", "/admin/users?role=agent"),
         ("search 'person123' (111 matches)", "/admin/users?q=person123"),
         ("search 'example' (all), page 3", "/admin/users?q=example&page=3"),
         ("search a name 'Müller 77'", "/admin/users?q=m%C3%BCller+77")]


def seed(url: str, schema: str, contacts: int) -> None:
    now = datetime.now(timezone.utc)
    libpq = url.replace("postgresql+psycopg://", "postgresql://").split("?")[0]
    with psycopg.connect(libpq, options=f"-csearch_path={schema}") as conn:
        with conn.cursor().copy("COPY contact (email, name, role, active, undeliverable, created_at, "
                                "notify_replies, notify_status) FROM STDIN") as copy:
            for i in range(contacts):
                role = "admin" if i < 2 else "agent" if i < 42 else "customer"
                copy.write_row((f"person{i}@example{i % 50}.test", f"Müller {i}", role, True, False, now, True, True))
        conn.commit()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=25_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--url", default=DEFAULT_URL)
    args = parser.parse_args(argv)
    schema = f"bench_people_{uuid.uuid4().hex[:8]}"
    admin_engine = create_engine(normalise_url(args.url), isolation_level="AUTOCOMMIT")
    with admin_engine.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in args.url else "?"
    url = f"{args.url}{sep}options=-csearch_path%3D{schema}"
    try:
        migrate(url)
        seed(args.url, schema, args.contacts)
        desk = bootstrap(settings=load_settings(environ={"POSTDESK_DATABASE__URL": url,
                                                         "POSTDESK_WEB__SECRET_KEY": "bench-" + uuid.uuid4().hex}))
        with desk.sessions() as s, s.begin():
            s.execute(text("ANALYZE contact"))
            token = start_session(s, add_user(s, "bench-admin@example.test", "admin"), kind="bearer")
        client = TestClient(create_app(desk.settings, desk.sessions))
        headers = {"authorization": f"Bearer {token}", "accept": "text/html"}
        print(f"{args.contacts:,} contacts, {args.runs} requests per case (in process, PostgreSQL)")
        for name, path in CASES:
            client.get(path, headers=headers)   # warm-up
            times = []
            for _ in range(args.runs):
                started = time.perf_counter()
                answer = client.get(path, headers=headers)
                times.append((time.perf_counter() - started) * 1000)
                assert answer.status_code == 200, answer.text[:200]
            times.sort()
            p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
            print(f"  {name:<34} median {statistics.median(times):6.1f} ms   p95 {p95:6.1f} ms")
        desk.engine.dispose()
    finally:
        with admin_engine.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin_engine.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
