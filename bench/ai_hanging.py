"""Triage against a hanging Mistral (tests/fakes/mistral_server.py, the real SDK): how long until every
new ticket has its (offline) summary, and how many requests Mistral got.

    .venv/bin/python bench/ai_hanging.py [--tickets 20] [--timeout 2] [--retries 3]
                                         [--concurrency 4] [--breaker-failures 3]

`--concurrency 1 --breaker-failures 1000000` is how triage ran before (one job at a time, no breaker).
SQLite in a temp dir; every request hangs longer than the timeout. Asserts nothing.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, select  # noqa: E402

from core import jobs  # noqa: E402
from core.ai.mistral import MistralProvider  # noqa: E402
from core.ai.triage import make_triage_handler  # noqa: E402
from core.config import load_settings  # noqa: E402
from core.db import migrate  # noqa: E402
from core.models import Ticket  # noqa: E402
from ingest import spool, worker  # noqa: E402
from postdesk.bootstrap import bootstrap  # noqa: E402
from tests.fakes.mistral_server import FakeMistral, hang  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tickets", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=2.0)
    parser.add_argument("--retries", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--breaker-failures", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, FakeMistral(api_key="k", default=hang(600)) as fake:
        settings = load_settings(environ={"POSTDESK_DATABASE__URL": f"sqlite:///{tmp}/b.db",
                                          "POSTDESK_PATHS__VAR_DIR": tmp, "POSTDESK_WEB__SECRET_KEY": "bench"})
        ai = dataclasses.replace(settings.ai, provider="mistral", api_key="k", server_url=fake.url,
                                 timeout_seconds=args.timeout, max_retries=args.retries,
                                 concurrency=args.concurrency, breaker_failures=args.breaker_failures)
        settings = dataclasses.replace(settings, ai=ai)
        migrate(settings.database.url)
        desk = bootstrap(settings=settings)
        for n in range(args.tickets):
            raw = (f"From: c{n}@example.org\r\nSubject: Printer {n}\r\nMessage-ID: <h{n}@x>\r\n\r\n"
                   f"Printer {n} is broken.\r\n").encode()
            worker.process_one(desk.sessions, settings, spool.put(desk.sessions, raw, "smtp").id)
        handler = make_triage_handler(desk.sessions, settings, primary=MistralProvider(ai, backoff_seconds=0.1))
        started, first = time.monotonic(), None
        while True:
            jobs.run_due(desk.sessions, {"triage": handler}, limit=max(5, ai.concurrency), concurrency=ai.concurrency)
            with desk.sessions() as s:
                done = s.scalar(select(func.count(Ticket.id)).where(Ticket.summary != ""))
            first = first or (time.monotonic() - started if done else None)
            if done >= args.tickets:
                break
        total = time.monotonic() - started
    print(f"{args.tickets} tickets, timeout {args.timeout}s, {args.retries} retries, concurrency {args.concurrency}, "
          f"breaker after {args.breaker_failures} failures")
    print(f"first summary after {first:.1f}s, all after {total:.1f}s; Mistral requests: {len(fake.requests)}")


if __name__ == "__main__":
    main()
