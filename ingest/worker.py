"""Drains the spool: claim → parse → core.tickets.receive_mail → done.

Mails are parsed before the write transaction (on SQLite that is the database's one write
lock, which the SMTP door needs for every mail it accepts), then a batch is stored in one
transaction and one commit. Should any mail of the batch raise, the batch is rolled back and
its mails are processed again one by one, each in its own savepoint, so one bad mail costs
only itself: it is retried on later passes and, after `max_attempts`, quarantined with its
error, never deleted, while the others keep flowing.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from core.automatic import mail_verdict
from core.mail.classify import Verdict
from core.config import Settings
from core.db import is_postgresql
from core.errors import SenderError
from core.mail.parse import ParsedMail, parse_mail
from core.quarantine import UNVERIFIED
from core.sender_auth import NO_VERDICT, AuthVerdict
from core.reference_graph import hold_deadline, look_up_held_replies
from core.tickets import Received, add_senders, receive_mail, sender_address
from core.workspace.spam import look_up_blocked
from ingest import spool
from ingest.sender_check import verdict_for
from ingest.parse_pool import ParsePool
from ingest.spool import Pending, Settled

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    raw_id: int
    received: Received | None
    error: str = ""
    quarantined: bool = False


@dataclass(frozen=True)
class _Parsed:
    row: Pending
    mail: ParsedMail | None
    error: Exception | None = None
    auth: AuthVerdict = NO_VERDICT
    verdict: Verdict | None = None  # automatic.mail_verdict, decided before the write transaction


def _parse(row: Pending, settings: Settings) -> _Parsed:
    try:
        mail = parse_mail(row.raw)
    except Exception as exc:  # a SenderError quarantines at once, anything else is retried
        return _Parsed(row, None, exc)
    try:
        auth = verdict_for(settings, row, mail)
    except Exception:  # a check that cannot run leaves the mail unchecked, never unprocessed
        log.warning("raw_mail %s: sender authentication failed; stored unchecked", row.id, exc_info=True)
        auth = NO_VERDICT
    try:
        verdict = mail_verdict(settings, row, mail)
    except Exception:  # decided again in the write transaction, where a failure counts against the mail
        verdict = None
    return _Parsed(row, mail, auth=auth, verdict=verdict)


def drain(sessions: sessionmaker[Session], settings: Settings, batch: int = 50,
          max_batches: int | None = None, parser: ParsePool | None = None) -> list[Outcome]:
    """Process pending mails in batches (one commit each) until none is left. With a `parser`
    (SQLite), the next batch is parsed in its helper process while this one is stored."""
    if parser is not None and not is_postgresql(sessions.kw["bind"]):
        return _drain_pipelined(sessions, settings, batch, max_batches, parser)
    outcomes: list[Outcome] = []
    done_batches = 0
    while max_batches is None or done_batches < max_batches:
        results = _drain_batch(sessions, settings, batch)
        if not results:
            break
        outcomes.extend(results)
        done_batches += 1
        if all(r.error and not r.quarantined for r in results):
            break  # every mail failed for a reason of ours: let the scheduler try later
        if len(results) < batch:
            break  # the spool is drained: a mail stored meanwhile wakes the caller again
    return outcomes


def _drain_pipelined(sessions: sessionmaker[Session], settings: Settings, size: int, max_batches: int | None,
                     parser: ParsePool) -> list[Outcome]:
    """As drain, with each batch parsed by the helper while the batch before it is stored. A batch
    claimed ahead stays pending in the spool until stored: if the drain stops first, the next
    drain claims it again."""
    outcomes: list[Outcome] = []
    rows = _claim(sessions, size)
    future = parser.submit(rows) if rows else None
    done_batches = 0
    while future is not None and (max_batches is None or done_batches < max_batches):
        parsed = parser.results(future, rows, lambda row: _parse(row, settings))
        ahead = _claim(sessions, size, after=rows[-1].id) if len(rows) == size else []
        future = parser.submit(ahead) if ahead else None
        results = _store_parsed(sessions, settings, parsed)
        outcomes.extend(results)
        done_batches += 1
        if results and all(r.error and not r.quarantined for r in results):
            break  # every mail failed for a reason of ours: let the scheduler try later
        rows = ahead
    if future is not None:
        future.cancel()
    return outcomes


def _claim(sessions: sessionmaker[Session], size: int, after: int = 0) -> list[Pending]:
    with sessions() as session, session.begin():
        return spool.claim(session, size, after)


def _store_parsed(sessions: sessionmaker[Session], settings: Settings, parsed: list[_Parsed]) -> list[Outcome]:
    """Store mails parsed outside the write transaction, leaving out any another worker settled meanwhile."""
    with sessions() as session, session.begin():
        alive = spool.still_pending(session, [p.row.id for p in parsed])
        return _process_batch(session, settings, [p for p in parsed if p.row.id in alive])


def _drain_batch(sessions: sessionmaker[Session], settings: Settings, size: int) -> list[Outcome]:
    if is_postgresql(sessions.kw["bind"]):
        # Row locks (SKIP LOCKED) keep other workers off this batch while it is parsed and stored.
        with sessions() as session, session.begin():
            return _process_batch(session, settings, [_parse(row, settings) for row in spool.claim(session, size)])
    parsed = [_parse(row, settings) for row in _claim(sessions, size)]  # outside the write lock
    return _store_parsed(sessions, settings, parsed)


def _process_batch(session: Session, settings: Settings, items: list[_Parsed]) -> list[Outcome]:
    """Store every parsed mail in the caller's transaction and record what became of each."""
    if not items:
        return []
    bind = session.get_bind()
    if is_postgresql(bind):
        # New senders first, in a short transaction of their own: held by a batch's transaction until
        # its commit, a new address's lock met another batch waiting on a ticket this one had touched
        # (3 workers: deadlocks, batches redone mail by mail). Every mail creates its sender anyway.
        try:
            with Session(bind) as own, own.begin():
                add_senders(own, [(item.row, item.mail) for item in items if item.mail is not None])
        except Exception:  # a sender that cannot be stored fails its own mail below, never the batch
            log.warning("creating a batch's new senders first failed; they come mail by mail", exc_info=True)
    # Asked once for the batch, not once per mail.
    look_up_blocked(session, [sender_address(item.row, item.mail) for item in items if item.mail is not None])
    look_up_held_replies(session)
    try:
        with session.begin_nested():
            settled = [_store(session, settings, item) for item in items]
    except Exception:
        log.info("a batch of %s mails failed; storing them one by one", len(items))
        settled = [_store_alone(session, settings, item) for item in items]
    spool.record(session, [s for s, _ in settled])
    return [outcome for _, outcome in settled]


def _store(session: Session, settings: Settings, item: _Parsed) -> tuple[Settled, Outcome]:
    if item.error is not None:
        raise item.error
    row = item.row
    received = receive_mail(session, settings, row, item.mail, item.auth, item.verdict)
    if received.held_for:  # not a failure: its turn comes when the mail it answers is stored
        log.info("raw_mail %s waits for <%s>, the mail it answers, still in the spool", row.id, received.held_for)
        return (Settled(row.id, row.door, "pending", row.attempts, f"waiting for <{received.held_for}>",
                        hold_until=hold_deadline(settings.intake.parent_wait_seconds), waiting_for=received.held_for),
                Outcome(row.id, received))
    if received.unverified:  # an agent decides: approved from the quarantine, or left there
        log.info("raw_mail %s held for approval: %s", row.id, received.unverified)
        return _quarantine(row, row.attempts + 1, f"{UNVERIFIED}{received.unverified}")
    return Settled(row.id, row.door, "done", row.attempts + 1), Outcome(row.id, received)


def _store_alone(session: Session, settings: Settings, item: _Parsed) -> tuple[Settled, Outcome]:
    """One mail in its own savepoint; a failure is recorded, never raised."""
    row = item.row
    attempts = row.attempts + 1
    try:
        with session.begin_nested():
            return _store(session, settings, item)
    except SenderError as exc:  # the mail itself is at fault: no retry will help
        log.info("raw_mail %s quarantined: %s", row.id, exc)
        return _quarantine(row, attempts, str(exc))
    except Exception as exc:  # ours: log, retry later, quarantine after max_attempts
        error = f"{type(exc).__name__}: {exc}"
        log.error("raw_mail %s failed (attempt %s): %s", row.id, attempts, error.splitlines()[0][:300],
                  exc_info=exc)
        if attempts >= settings.intake.max_attempts:
            return _quarantine(row, attempts, error)
        return Settled(row.id, row.door, "pending", attempts, error), Outcome(row.id, None, error[:2000])


def _quarantine(row: Pending, attempts: int, error: str) -> tuple[Settled, Outcome]:
    return (Settled(row.id, row.door, "quarantined", attempts, error),
            Outcome(row.id, None, error, quarantined=True))


def process_one(sessions: sessionmaker[Session], settings: Settings, raw_id: int) -> Outcome:
    """Process one spooled mail now (the `ingest` pipe and replay use this)."""
    with sessions() as session, session.begin():
        row = spool.claim_one(session, raw_id)
        if row is None:
            return Outcome(raw_id, None)
        settled, outcome = _store_alone(session, settings, _parse(row, settings))
        spool.record(session, [settled])
        return outcome
