"""Similar resolved tickets at scale: how long the agent's ticket page spends finding them.

    .venv/bin/python bench/similar.py [--tickets 100000] [--messages 300000] [--url postgresql://…]
                                      [--samples 40] [--reuse] [--sqlite 5000]

Seeds PostgreSQL with bench/scale.py's generator (realistic generated text; about 95% of the
tickets resolved or closed with a resolution, the worst case: nearly every ticket is a
candidate), then times core.assist.similar.similar_resolved on `--samples` tickets spread over
the table, in one process without HTTP, and prints p50/p95/max and how many were found. Then
the same on a fresh SQLite file of `--sqlite` tickets with one message each. Asserts nothing.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import scale  # noqa: E402  (bench/scale.py: the seeding)
from sqlalchemy import create_engine  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from core.assist.similar import similar_resolved  # noqa: E402
from core.db import migrate, normalise_url  # noqa: E402
from core.models import Ticket  # noqa: E402

DEFAULT_URL = os.environ.get("POSTDESK_BENCH_SIMILAR_PG",
                             "postgresql+psycopg://postgres@127.0.0.1:5432/postdesk_similar")


def sqlite_figures(tickets: int, samples: int) -> None:
    """The same timing on a fresh SQLite file holding `tickets` tickets (one message each)."""
    import random
    import tempfile
    from datetime import datetime, timezone

    from sqlalchemy import insert

    from core.models import Contact, Message
    rng, vocab = random.Random(7), scale.Vocabulary(random.Random(7))
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/similar.db"
        migrate(url)
        engine = create_engine(url)
        now = datetime.now(timezone.utc)
        with Session(engine) as session, session.begin():
            session.execute(insert(Contact), [{"id": 1, "email": "c@example.test"}])
            session.execute(insert(Ticket), [{
                "id": i, "reference": f"PD-{i:08X}", "requester_id": 1, "created_at": now, "updated_at": now,
                "subject": rng.choice(scale.SUBJECTS).format(n=rng.randint(10_000, 99_999),
                                                             w=vocab.word_at_rank(rng.randint(1, 3000))),
                "summary": vocab.sentence(rng), "status": "closed" if rng.random() < 0.95 else "new",
                "resolution": "Solved: " + vocab.sentence(rng)} for i in range(1, tickets + 1)])
            session.execute(insert(Message), [{
                "ticket_id": i, "kind": "mail", "direction": "in", "body_text": (text := vocab.message(rng)),
                "visible_text": text, "created_at": now} for i in range(1, tickets + 1)])
        _time(engine, tickets, samples, f"SQLite, {tickets:,} tickets")


def _time(engine, tickets: int, samples: int, label: str) -> None:
    step = max(1, tickets // samples)
    timings, found = [], []
    with Session(engine) as session:
        for ticket_id in range(step // 2 + 1, tickets + 1, step):
            ticket = session.get(Ticket, ticket_id)
            started = time.perf_counter()
            similar = similar_resolved(session, ticket)
            timings.append((time.perf_counter() - started) * 1000)
            found.append(len(similar))
            session.rollback()
    timings.sort()
    p95 = timings[min(len(timings) - 1, int(len(timings) * 0.95))]
    print(f"{label}: similar_resolved on {len(timings)} tickets: p50 {statistics.median(timings):.1f} ms, "
          f"p95 {p95:.1f} ms, max {timings[-1]:.1f} ms; found {statistics.mean(found):.1f} on average")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--messages", type=int, default=300_000)
    parser.add_argument("--url", default=DEFAULT_URL)
    parser.add_argument("--samples", type=int, default=40)
    parser.add_argument("--reuse", action="store_true", help="keep the data of an earlier run of the same size")
    parser.add_argument("--sqlite", type=int, default=5000, help="tickets for the SQLite timing (0: none)")
    args = parser.parse_args()
    shape = scale.Shape(args.tickets, args.messages)
    scale.ensure_database(args.url)
    if not (args.reuse and scale.is_seeded(args.url, shape)):
        seeded = scale.seed(args.url, shape)
        print(f"seeded {args.tickets:,} tickets, {seeded.message_rows:,} messages in {seeded.seconds:.0f} s")
    migrate(args.url)  # data reused from before a newer migration gets it now
    _time(create_engine(normalise_url(args.url)), args.tickets, args.samples, f"PostgreSQL, {args.tickets:,} tickets")
    if args.sqlite:
        sqlite_figures(args.sqlite, args.samples)

if __name__ == "__main__":
    main()
