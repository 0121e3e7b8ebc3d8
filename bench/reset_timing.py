"""Password reset for an address with an account and for one without: time per request, both ways.

    .venv/bin/python bench/reset_timing.py [--n 300] [--db sqlite|postgresql]

Calls core.accounts.request_password_reset (what POST /reset does after its form throttle), one
transaction and commit each, alternating a known and an unknown address (each address once, so
the per-address mail limit never cuts a path short). Prints the median and 90th percentile per path
and the difference of the medians. Asserts nothing.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid

from sqlalchemy import create_engine, text

from core.accounts import add_user, request_password_reset
from core.config import load_settings
from core.db import migrate
from postdesk.bootstrap import bootstrap

PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        schema = f"bench_{uuid.uuid4().hex[:10]}"
        url = f"sqlite:///{tmp}/bench.db"
        if args.db == "postgresql":
            with create_engine(PG, isolation_level="AUTOCOMMIT").connect() as conn:
                conn.execute(text(f'CREATE SCHEMA "{schema}"'))
            url = f"{PG}?options=-csearch_path%3D{schema}"
        try:
            run(url, tmp, args.n)
        finally:
            if args.db == "postgresql":
                with create_engine(PG, isolation_level="AUTOCOMMIT").connect() as conn:
                    conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


def run(url: str, tmp: str, n: int) -> None:
    settings = load_settings(environ={"POSTDESK_DATABASE__URL": url, "POSTDESK_PATHS__VAR_DIR": tmp,
                                      "POSTDESK_WEB__SECRET_KEY": "bench"})
    migrate(url)
    desk = bootstrap(settings=settings)
    with desk.sessions() as s, s.begin():
        for i in range(n):
            add_user(s, f"known{i}@example.org", "customer")
    times: dict[str, list[float]] = {"known": [], "unknown": []}
    for i in range(n):
        for kind in ("known", "unknown"):
            started = time.perf_counter()
            with desk.sessions() as s, s.begin():
                request_password_reset(s, settings, f"{kind}{i}@example.org")
            times[kind].append((time.perf_counter() - started) * 1000)
    for kind, values in times.items():
        values.sort()
        print(f"{kind:8} median {statistics.median(values):.3f} ms   p90 {values[int(len(values) * 0.9)]:.3f} ms")
    print(f"difference of medians: {statistics.median(times['known']) - statistics.median(times['unknown']):+.3f} ms")
    desk.engine.dispose()


if __name__ == "__main__":
    main()
