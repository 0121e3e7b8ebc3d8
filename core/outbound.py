"""Delivers the outbox: through the smarthost when one is configured, else as .eml files in a folder.

`[outbound] connections` deliverers run side by side. Each claims a small batch under a short
lease (`lease_seconds`), sends it over one reused smarthost connection (core/smarthost.py), and
records the batch's outcomes in one transaction. While a batch is being sent a timer renews its
lease and writes down the outcomes known so far, so a crash strands only the unsent rest of the
batch in flight, and only until its lease ends; mails already taken are not sent twice.

A temporary failure (4xx, connection trouble) is retried with backoff; a permanent one (5xx)
or too many attempts marks the row failed, visible to admins, and the recipient undeliverable.
No transaction is open while a mail travels (a slow smarthost would otherwise hold SQLite's
write lock, and with it all intake).
"""
from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session, sessionmaker

from core.config import OutboundSettings, Settings
from core.db import skip_locked
from core.metrics import OUTBOUND
from core.models import Contact, Outbox, utcnow
from core.smarthost import SENT, Outcome, PermanentFailure, RecipientRefused, SmarthostSession

log = logging.getLogger(__name__)
BATCH = 20  # mails per claim: a crash strands at most this many, for at most one lease
RECORD_EVERY = 0.5  # seconds: a batch still sending writes down what it has sent at least this often

__all__ = ["PermanentFailure", "RecipientRefused", "deliver_due", "claim_due", "lease_for"]


@dataclass(frozen=True)
class OutgoingMail:
    """An outbox row claimed for one delivery attempt, read out of the claiming transaction."""
    id: int
    purpose: str
    ticket_id: int | None
    message_id: str
    mail_from: str
    rcpt_to: str
    raw: bytes
    created_at: datetime
    attempts: int  # including this one


def write_to_folder(folder: Path, row: OutgoingMail) -> None:
    """Write the mail as <id>.eml, fsynced, atomically (a reader never sees half a file)."""
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"{row.created_at:%Y%m%dT%H%M%S}-{row.id:08d}.eml"
    tmp = folder / f".{final.name}.tmp"
    with open(tmp, "wb") as fh:
        fh.write(row.raw)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, final)


def _backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(3600, 30 * 2 ** max(0, attempts - 1)))


def lease_for(cfg: OutboundSettings) -> timedelta:
    """How long a claim keeps other deliverers off a row unless renewed ([outbound] lease_seconds)."""
    return timedelta(seconds=max(1.0, cfg.lease_seconds))


def deliver_due(sessions: sessionmaker[Session], settings: Settings, limit: int = BATCH) -> int:
    """Send the due outbox rows this process can claim, `[outbound] connections` batches of up to
    `limit` at a time, until a batch comes back short (caught up); returns how many were sent.

    Two deliverers never claim the same row. Delivery is at least once, not exactly once: a
    process killed while a mail travels leaves that row leased; when the lease ends it is due
    again and sent again. SMTP has no way to ask whether a mail whose answer never arrived was taken.
    """
    workers = max(1, settings.outbound.connections)
    if workers == 1:
        return _deliver_batches(sessions, settings.outbound, limit)
    with ThreadPoolExecutor(workers, thread_name_prefix="outbox") as pool:
        runs = [pool.submit(_deliver_batches, sessions, settings.outbound, limit) for _ in range(workers)]
        return sum(run.result() for run in runs)


def _deliver_batches(sessions: sessionmaker[Session], cfg: OutboundSettings, limit: int) -> int:
    """One deliverer: claim a batch, send it, record it; again while batches come full. The smarthost
    connection is kept from batch to batch, so a backlog goes out over one connection per deliverer."""
    sent = 0
    with SmarthostSession(cfg) as smarthost:
        batch = claim_due(sessions, lease_for(cfg), limit)
        while batch and not smarthost.down:
            # A full batch says more is due: the next one is claimed in the transaction that records
            # this one. On SQLite each write transaction waits for intake's batch to commit, so one
            # wait per batch instead of two keeps acknowledgements up with intake.
            # A short one means caught up. Chasing each new mail in batches of one or two would cost
            # intake a write transaction per mail; the next run (soon after the next drain) takes what gathered.
            done, batch = _deliver_batch(sessions, cfg, batch, smarthost, claim_next=limit if len(batch) == limit else 0)
            sent += done
    return sent


_DUE = (select(Outbox.id, Outbox.purpose, Outbox.ticket_id, Outbox.message_id, Outbox.mail_from, Outbox.rcpt_to,
               Outbox.raw, Outbox.created_at, Outbox.attempts)
        .where(Outbox.state == "pending", Outbox.next_attempt_at <= bindparam("now"))
        .order_by(Outbox.id).limit(bindparam("limit")))
_LEASE = (update(Outbox).where(Outbox.id.in_(bindparam("ids", expanding=True)))
          .values(attempts=Outbox.attempts + 1, next_attempt_at=bindparam("until")))


def claim_due(sessions: sessionmaker[Session], lease: timedelta, limit: int) -> list[OutgoingMail]:
    """Take up to `limit` due rows (committed): each leased until now + lease, its attempt counted.
    The rows read are this transaction's alone (SKIP LOCKED on PostgreSQL, the write lock taken at
    BEGIN IMMEDIATE on SQLite), so one UPDATE leases them all."""
    with sessions() as session, session.begin():
        return _claim_in(session, lease, limit)


def _claim_in(session: Session, lease: timedelta, limit: int) -> list[OutgoingMail]:
    now = utcnow()
    conn = session.connection()
    rows = conn.execute(skip_locked(session, _DUE), {"now": now, "limit": limit}).all()
    if rows:
        conn.execute(_LEASE, {"ids": [row.id for row in rows], "until": now + lease})
    return [OutgoingMail(*row[:-1], attempts=row.attempts + 1) for row in rows]


def _still_ours(mail: OutgoingMail):
    """An UPDATE of the row only while our claim holds (nobody claimed it again after our lease)."""
    return (update(Outbox).where(Outbox.id == mail.id, Outbox.state == "pending", Outbox.attempts == mail.attempts)
            .execution_options(synchronize_session=False))


def _record_if_ours(session: Session, mail: OutgoingMail, **values) -> None:
    if not session.execute(_still_ours(mail).values(**values)).rowcount:
        log.warning("outbox %s: claimed again after this attempt's lease ran out; its outcome is left to that one",
                    mail.id)


class _Batch:
    """A claimed batch being sent: outcomes waiting to be recorded, and the rows still in flight.
    The sending thread adds outcomes; the lease timer (another thread) may record them early."""

    def __init__(self, sessions: sessionmaker[Session], cfg: OutboundSettings, mails: list[OutgoingMail]) -> None:
        self.sessions = sessions
        self.cfg = cfg
        self.unsent = {m.id: m for m in mails}
        self.outcomes: list[tuple[OutgoingMail, Outcome]] = []
        self.lock = threading.Lock()  # held while recording, so outcomes are written exactly once
        self.done = threading.Event()
        self.sent = 0

    def add(self, mail: OutgoingMail, outcome: Outcome) -> None:
        self.sent += outcome.state == "sent"
        with self.lock:
            self.outcomes.append((mail, outcome))
            self.unsent.pop(mail.id, None)

    def record(self, renew: bool = False, claim_next: int = 0) -> list[OutgoingMail]:
        """Write the outcomes so far in one transaction; `renew` extends the lease of the rest;
        `claim_next` claims up to that many due mails in the same transaction (returned)."""
        with self.lock:
            outcomes, self.outcomes = self.outcomes, []
            rest = list(self.unsent.values()) if renew else []
            if outcomes or rest or claim_next:
                return _record(self.sessions, self.cfg, outcomes, rest, claim_next)
            return []

    def keep_leased(self) -> None:
        """The timer: record outcomes every RECORD_EVERY s, renew the lease every third of it."""
        lease = lease_for(self.cfg).total_seconds()
        tick = min(RECORD_EVERY, lease / 3)
        since_renewal = 0.0
        while not self.done.wait(tick):
            since_renewal += tick
            renew = since_renewal >= lease / 3
            try:
                self.record(renew=renew)
            except Exception:  # a database hiccup: the batch's end records what is left
                log.exception("outbox: recording a batch in flight failed")
                continue
            if renew:
                since_renewal = 0.0


def _deliver_batch(sessions: sessionmaker[Session], cfg: OutboundSettings, mails: list[OutgoingMail],
                   smarthost: SmarthostSession, claim_next: int = 0) -> tuple[int, list[OutgoingMail]]:
    """Send a claimed batch over the deliverer's connection (or into the folder), outside any transaction;
    returns how many were sent and the next batch (up to `claim_next`), claimed as this one is recorded."""
    batch = _Batch(sessions, cfg, mails)
    timer = threading.Thread(target=batch.keep_leased, name="outbox-lease", daemon=True)
    timer.start()
    sending_done = False
    try:
        if cfg.host:
            for mail in mails:
                batch.add(mail, smarthost.send(mail))
        else:
            for mail in mails:
                batch.add(mail, _to_folder(cfg, mail))
        sending_done = True
    finally:
        batch.done.set()
        timer.join()
        following = batch.record(claim_next=claim_next if sending_done and not smarthost.down else 0)
    return batch.sent, following


def _to_folder(cfg: OutboundSettings, mail: OutgoingMail) -> Outcome:
    try:
        write_to_folder(Path(cfg.outbox_dir), mail)
    except OSError as exc:
        return Outcome("retry", f"{type(exc).__name__}: {exc}"[:2000])
    return SENT


_SENT = update(Outbox).where(Outbox.id == bindparam("outbox_id")).values(
    state="sent", sent_at=bindparam("at"), last_error="")
_RENEW = (update(Outbox).where(Outbox.id == bindparam("outbox_id"), Outbox.state == "pending",
                               Outbox.attempts == bindparam("claimed")).values(next_attempt_at=bindparam("until")))


def _record(sessions: sessionmaker[Session], cfg: OutboundSettings, outcomes: list[tuple[OutgoingMail, Outcome]],
            renew: list[OutgoingMail], claim_next: int = 0) -> list[OutgoingMail]:
    """One transaction: each outcome written, the lease of the mails still to send renewed, and up to
    `claim_next` due mails claimed (returned)."""
    now = utcnow()
    following: list[OutgoingMail] = []
    with sessions() as session, session.begin():
        conn = session.connection()
        sent = [{"outbox_id": m.id, "at": now} for m, o in outcomes if o.state == "sent"]
        if sent:
            # Whoever holds the claim now, the smarthost has the mail: that is the row's truth.
            conn.execute(_SENT, sent)
        for mail, outcome in outcomes:
            if outcome.state == "failed":
                _record_failure(session, mail, outcome.error, outcome.refused)
            elif outcome.state == "retry":
                _record_retry(session, cfg, mail, outcome.error, now)
        if renew:
            conn.execute(_RENEW, [{"outbox_id": m.id, "claimed": m.attempts, "until": now + lease_for(cfg)}
                                  for m in renew])
        if claim_next:
            following = _claim_in(session, lease_for(cfg), claim_next)
    for mail, outcome in outcomes:
        OUTBOUND.labels(mail.purpose, outcome.state).inc()
        if outcome.state == "sent":
            log.info("outbox %s (%s, ticket %s) sent to %s", mail.id, mail.purpose, mail.ticket_id, mail.rcpt_to,
                     extra={"ticket_id": mail.ticket_id, "message_id": mail.message_id, "outbox_id": mail.id})
    return following


def _record_retry(session: Session, cfg: OutboundSettings, mail: OutgoingMail, error: str, now: datetime) -> None:
    if mail.attempts >= cfg.max_attempts:
        _record_failure(session, mail, error)
        return
    retry_at = now + _backoff(mail.attempts)
    _record_if_ours(session, mail, last_error=error, next_attempt_at=retry_at)
    log.warning("outbox %s to %s: %s; retry at %s", mail.id, mail.rcpt_to, error, retry_at)


def _record_failure(session: Session, mail: OutgoingMail, error: str, refused: bool = False) -> None:
    _record_if_ours(session, mail, state="failed", last_error=error[:2000])
    if refused:
        session.execute(update(Contact).where(Contact.email == mail.rcpt_to).values(undeliverable=True))
    log.error("outbox %s to %s failed for good: %s", mail.id, mail.rcpt_to, error)
