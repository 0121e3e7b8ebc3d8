"""A DB-backed job table: claim (SKIP LOCKED on PostgreSQL, compare-and-set on SQLite), run
outside any transaction, then record success, retry with backoff, or death after N attempts.

A claimed job holds a lease; a worker that dies mid-job lets the lease expire and another
worker picks the job up again.
"""
from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Callable

from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from core.db import fetch_scalar, insert_row, skip_locked
from core.metrics import JOB_SECONDS
from core.models import Job, utcnow

log = logging.getLogger(__name__)
LEASE = timedelta(minutes=5)


class RetryLater(Exception):
    """A job asks to run again later (the provider failed) without counting as a crash."""


@dataclass(frozen=True)
class ClaimedJob:
    id: int
    kind: str
    ticket_id: int | None
    attempts: int
    max_attempts: int

    @property
    def last_attempt(self) -> bool:
        return self.attempts >= self.max_attempts


_WAITING = select(Job.id).where(Job.kind == bindparam("kind"), Job.ticket_id == bindparam("ticket_id"),
                                Job.state == "pending", Job.attempts == 0).limit(1)


def enqueue(session: Session, kind: str, ticket_id: int | None, max_attempts: int = 5, fresh: bool = False) -> int:
    """Add a job in the caller's transaction (so it exists only if the change that needs it commits);
    returns its id. A job of the same kind already waiting for the ticket covers this one too (a
    burst of replies is summarised once). `fresh`: the ticket was created in this transaction, so
    nothing can be waiting for it yet."""
    if ticket_id is not None and not fresh:
        waiting = fetch_scalar(session, _WAITING, {"kind": kind, "ticket_id": ticket_id})
        if waiting is not None:
            return waiting
    return insert_row(session, Job, {"kind": kind, "ticket_id": ticket_id, "max_attempts": max_attempts})


def claim(sessions: sessionmaker[Session], limit: int = 10) -> list[ClaimedJob]:
    """Take up to `limit` due jobs for this worker (committed: they are ours until the lease ends)."""
    now = utcnow()
    due = or_(Job.state == "pending", (Job.state == "running") & (Job.locked_until < now))
    with sessions() as session, session.begin():
        stmt = select(Job).where(due, Job.run_at <= now).order_by(Job.run_at, Job.id).limit(limit)
        claimed = []
        for job in session.scalars(skip_locked(session, stmt)).all():
            attempt = job.attempts + 1
            # Compare-and-set: a concurrent claimer that got there first makes rowcount 0.
            taken = session.execute(
                update(Job).where(Job.id == job.id, Job.attempts == job.attempts)
                .values(state="running", attempts=attempt, locked_until=now + LEASE)
                .execution_options(synchronize_session=False)).rowcount
            if taken:
                claimed.append(ClaimedJob(job.id, job.kind, job.ticket_id, attempt, job.max_attempts))
        return claimed


def _backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(3600, 10 * 3 ** (attempts - 1)))


def finish(sessions: sessionmaker[Session], job: ClaimedJob, error: str | None) -> str:
    """Record the outcome: done, pending again (with backoff) or dead. Returns the new state."""
    with sessions() as session, session.begin():
        row = session.get(Job, job.id)
        if row is None:
            return "gone"
        row.locked_until = None
        if error is None:
            row.state, row.finished_at, row.last_error = "done", utcnow(), ""
        elif job.last_attempt:
            row.state, row.finished_at, row.last_error = "dead", utcnow(), error[:2000]
            log.error("job %s (%s, ticket %s) dead after %s attempts: %s", job.id, job.kind, job.ticket_id,
                      job.attempts, error)
        else:
            row.state, row.last_error = "pending", error[:2000]
            row.run_at = utcnow() + _backoff(job.attempts)
        return row.state


def run_due(sessions: sessionmaker[Session], handlers: dict[str, Callable[[ClaimedJob], None]],
            limit: int = 10, concurrency: int = 1) -> int:
    """Claim and run due jobs, up to `concurrency` at a time; a handler's exception is a failed attempt.
    Returns how many ran."""
    jobs = claim(sessions, limit)
    if concurrency > 1 and len(jobs) > 1:
        # A slow provider (seconds per call) would otherwise keep every other ticket waiting behind it.
        with ThreadPoolExecutor(max_workers=min(concurrency, len(jobs)), thread_name_prefix="job") as pool:
            list(pool.map(lambda job: _run_one(sessions, handlers, job), jobs))
    else:
        for job in jobs:
            _run_one(sessions, handlers, job)
    return len(jobs)


def _run_one(sessions: sessionmaker[Session], handlers: dict[str, Callable[[ClaimedJob], None]],
             job: ClaimedJob) -> None:
    handler = handlers.get(job.kind)
    started = time.monotonic()
    try:
        if handler is None:
            raise LookupError(f"no handler for job kind {job.kind!r}")
        handler(job)
    except RetryLater as exc:
        outcome = finish(sessions, job, str(exc) or "retry later")
    except Exception as exc:  # the job's fault or ours: retried, then dead, never lost
        log.exception("job %s (%s) failed", job.id, job.kind)
        outcome = finish(sessions, job, f"{type(exc).__name__}: {exc}")
    else:
        outcome = finish(sessions, job, None)
    JOB_SECONDS.labels(job.kind, outcome).observe(time.monotonic() - started)


def dead_jobs(session: Session, limit: int = 200) -> list[Job]:
    """Jobs that used up their attempts, newest first (the admin's page)."""
    return list(session.scalars(select(Job).where(Job.state == "dead").order_by(Job.id.desc()).limit(limit)))


def retry_dead(session: Session, job_id: int) -> bool:
    """Give a dead job a fresh set of attempts, due now; False when it is not dead (or gone)."""
    result = session.execute(update(Job).where(Job.id == job_id, Job.state == "dead").values(
        state="pending", attempts=0, run_at=utcnow(), locked_until=None, finished_at=None)
        .execution_options(synchronize_session=False))
    return bool(result.rowcount)
