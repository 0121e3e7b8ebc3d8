"""Similar resolved tickets at scale: how long the agent's ticket page spends finding them.

    .venv/bin/python bench/similar.py [--tickets 100000] [--messages 300000] [--url postgresql://…]
                                      [--samples 40] [--reuse]

Seeds PostgreSQL with bench/scale.py's generator (realistic generated text; about 95% of the
tickets resolved or closed with a resolution, the worst case: nearly every ticket is a
candidate), then times core.assist.similar.similar_resolved on `--samples` tickets spread over
the table, in one process without HTTP, and prints p50/p95/max and how many were found.
Asserts nothing.
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--messages", type=int, default=300_000)
    parser.add_argument("--url", default=DEFAULT_URL)
    parser.add_argument("--samples", type=int, default=40)
    parser.add_argument("--reuse", action="store_true", help="keep the data of an earlier run of the same size")
    args = parser.parse_args()
    shape = scale.Shape(args.tickets, args.messages)
    scale.ensure_database(args.url)
    if not (args.reuse and scale.is_seeded(args.url, shape)):
        seeded = scale.seed(args.url, shape)
        print(f"seeded {args.tickets:,} tickets, {seeded.message_rows:,} messages in {seeded.seconds:.0f} s")
    migrate(args.url)  # data reused from before a newer migration gets it now
    engine = create_engine(normalise_url(args.url))
    step = max(1, args.tickets // args.samples)
    timings, found = [], []
    with Session(engine) as session:
        for ticket_id in range(step // 2 + 1, args.tickets + 1, step):
            ticket = session.get(Ticket, ticket_id)
            started = time.perf_counter()
            similar = similar_resolved(session, ticket)
            timings.append((time.perf_counter() - started) * 1000)
            found.append(len(similar))
            session.rollback()
    timings.sort()
    p95 = timings[min(len(timings) - 1, int(len(timings) * 0.95))]
    print(f"similar_resolved on {len(timings)} tickets: p50 {statistics.median(timings):.1f} ms, "
          f"p95 {p95:.1f} ms, max {timings[-1]:.1f} ms; found {statistics.mean(found):.1f} on average")


if __name__ == "__main__":
    main()
