"""The durable inbox: every door writes a mail's raw bytes here and commits before it acknowledges.

One row per distinct mail: the same mail arriving again through any door (its bytes the same
but for the trace headers each hop adds) is recognised and not stored twice; a different mail
that reuses a Message-ID is stored as its own row, the reuse noted.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, func, or_, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from core.db import fetch_scalar, insert_or_ignore_id, is_postgresql, skip_locked
from core.mail.identity import mail_fingerprint
from core.mail.parse import content_hash, quick_message_id
from core.metrics import MAILS
from core.models import RawMail, utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Spooled:
    id: int
    duplicate: bool
    door: str = ""


def spooled_message_id(raw: bytes) -> str:
    """The mail's Message-ID as the door reads it ('' when it has none or the header block is unreadable)."""
    try:
        return quick_message_id(raw)
    except Exception:  # a header block too broken to read still gets spooled
        return ""


def dedupe_key(raw: bytes) -> str:
    """'mail:<fingerprint>': the Message-ID and the content together (the Message-ID is part of the
    fingerprinted bytes), the headers added in transit left out."""
    return f"mail:{mail_fingerprint(raw)}"


_BY_KEY = select(RawMail.id).where(RawMail.dedupe_key == bindparam("key"))
_EARLIER_WITH_ID = (select(RawMail.id).where(RawMail.message_id == bindparam("msgid"), RawMail.id != bindparam("self_id"))
                    .order_by(RawMail.id).limit(1))
_NOTE_REUSE = (update(RawMail).where(RawMail.id == bindparam("raw_id")).values(reuses_message_id_of=bindparam("earlier"))
               .execution_options(synchronize_session=False))


@dataclass(frozen=True)
class Incoming:
    """A mail as a door hands it to the spool."""
    raw: bytes
    door: str
    envelope_from: str = ""
    envelope_to: str = ""  # the RCPT addresses, comma-separated
    peer_ip: str = ""
    helo: str = ""
    received_at: datetime | None = None  # when the door took it, if not now


def put(sessions: sessionmaker[Session], raw: bytes, door: str, envelope_from: str = "",
        envelope_to: tuple[str, ...] = (), timeout_seconds: float | None = None, peer_ip: str = "",
        helo: str = "") -> Spooled:
    """Store the bytes durably (committed) and say whether this mail was already here.

    With `timeout_seconds`, PostgreSQL gives up waiting on locks and statements after that long."""
    with sessions() as session, session.begin():
        if timeout_seconds is not None and is_postgresql(session.get_bind()):
            bound = f"{max(1, int(timeout_seconds * 1000))}ms"
            session.execute(text("SELECT set_config('lock_timeout', :t, true), "
                                 "set_config('statement_timeout', :t, true)"), {"t": bound})
        [spooled] = put_many(session, [Incoming(raw, door, envelope_from, ",".join(envelope_to), peer_ip, helo)])
    count_spooled([spooled])
    return spooled


def put_many(session: Session, mails: list[Incoming]) -> list[Spooled]:
    """Store mails in the caller's transaction, in order; a mail already here is not stored again."""
    results = []
    conn = session.connection()
    for mail in mails:
        msgid = spooled_message_id(mail.raw)[:998]
        key = dedupe_key(mail.raw)
        values = {"dedupe_key": key, "message_id": msgid or None, "door": mail.door,
                  "envelope_from": mail.envelope_from[:998], "envelope_to": mail.envelope_to, "raw": mail.raw,
                  "state": "pending", "attempts": 0, "last_error": "", "peer_ip": mail.peer_ip[:64],
                  "helo": mail.helo[:255]}
        if mail.received_at is not None:
            values["received_at"] = mail.received_at
        new_id = insert_or_ignore_id(session, RawMail, ("dedupe_key",), values)
        stored = new_id is not None
        raw_id = new_id if stored else conn.execute(_BY_KEY, {"key": key}).scalar_one()
        if stored and msgid:
            _note_reused_message_id(session, raw_id, msgid, mail.door)
        if not stored:
            log.info("duplicate mail %s from %s ignored (raw_mail %s)", key, mail.door, raw_id)
        results.append(Spooled(raw_id, duplicate=not stored, door=mail.door))
    return results


def count_spooled(results: list[Spooled]) -> None:
    """Count committed mails in the metrics (after the commit, so a rolled-back one is not counted)."""
    for spooled in results:
        MAILS.labels(spooled.door, "duplicate" if spooled.duplicate else "stored").inc()


def _note_reused_message_id(session: Session, raw_id: int, msgid: str, door: str) -> None:
    """A different mail under a Message-ID we have seen: kept all the same, and marked as a reuse."""
    conn = session.connection()
    earlier = fetch_scalar(conn, _EARLIER_WITH_ID, {"msgid": msgid, "self_id": raw_id})
    if earlier is None:
        return
    conn.execute(_NOTE_REUSE, {"raw_id": raw_id, "earlier": earlier})
    log.info("raw_mail %s reuses the Message-ID <%s> of raw_mail %s with other content; kept as its own mail",
             raw_id, msgid, earlier)
    MAILS.labels(door, "message-id-reused").inc()


@dataclass(frozen=True)
class Pending:
    """A spooled mail as the worker needs it: plain values, no ORM state to flush."""
    id: int
    door: str
    envelope_from: str
    envelope_to: str
    raw: bytes
    attempts: int
    peer_ip: str
    helo: str
    held: bool  # it was held for its original once: it does not wait again
    approved: bool  # held as unverified, then approved by an agent: its sender is believed
    last_error: str = ""  # also what an admin asked for a requeued mail (core.automatic.AS_PERSON)


_PENDING_COLUMNS = (RawMail.id, RawMail.door, RawMail.envelope_from, RawMail.envelope_to, RawMail.raw,
                    RawMail.attempts, RawMail.peer_ip, RawMail.helo, RawMail.held_until.is_not(None),
                    RawMail.approved_by.is_not(None), RawMail.last_error)


# Oldest first, skipping replies held for their original until it is stored or their wait ends:
# held rows are never claimed only to be put back, so they cannot crowd out the mail they wait for.
_OLDEST_PENDING = (select(*_PENDING_COLUMNS)
                   .where(RawMail.state == "pending", RawMail.id > bindparam("after"),
                          or_(RawMail.held_until.is_(None), RawMail.held_until <= bindparam("now")))
                   .order_by(RawMail.id).limit(bindparam("limit")))
_STILL_PENDING = select(RawMail.id).where(RawMail.id.in_(bindparam("ids", expanding=True)),
                                          RawMail.state == "pending")


def claim(session: Session, limit: int, after: int = 0) -> list[Pending]:
    """Pending mails, oldest first (past raw_mail id `after`), locked for this transaction (skipped by
    other workers on PostgreSQL; on SQLite the write lock taken at BEGIN IMMEDIATE already serialises
    workers)."""
    rows = session.connection().execute(skip_locked(session, _OLDEST_PENDING),
                                        {"limit": limit, "now": utcnow(), "after": after})
    return [Pending(*row) for row in rows]


def still_pending(session: Session, ids: list[int]) -> set[int]:
    """Which of these mails no other worker has settled meanwhile (locked on PostgreSQL)."""
    if not ids:
        return set()
    return set(session.connection().execute(skip_locked(session, _STILL_PENDING), {"ids": ids}).scalars())


def claim_one(session: Session, raw_id: int) -> Pending | None:
    """One mail by id unless it is done already (a quarantined one too: replay), locked on PostgreSQL."""
    stmt = select(*_PENDING_COLUMNS).where(RawMail.id == raw_id, RawMail.state != "done")
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    row = session.execute(stmt).first()
    return Pending(*row) if row is not None else None


_SETTLE = (update(RawMail).where(RawMail.id == bindparam("raw_id"))
           .values(state=bindparam("new_state"), attempts=bindparam("new_attempts"),
                   last_error=bindparam("error"), processed_at=bindparam("at"),
                   held_until=func.coalesce(bindparam("hold", type_=RawMail.held_until.type), RawMail.held_until),
                   waiting_for=func.coalesce(bindparam("waiting", type_=RawMail.waiting_for.type),
                                             RawMail.waiting_for))
           .execution_options(synchronize_session=False))


@dataclass(frozen=True)
class Settled:
    """What became of a claimed mail: done, quarantined, or (state pending) failed and to be retried."""
    id: int
    door: str
    state: str
    attempts: int
    error: str = ""
    hold_until: datetime | None = None  # held for its original (state pending) until then
    waiting_for: str | None = None


def record(session: Session, settled: list[Settled]) -> None:
    """Write the outcome of a batch in one statement (executemany) in the caller's transaction."""
    if not settled:
        return
    now = utcnow()
    session.connection().execute(_SETTLE, [
        {"raw_id": s.id, "new_state": s.state, "new_attempts": s.attempts, "error": s.error[:2000],
         "at": None if s.state == "pending" else now, "hold": s.hold_until,
         "waiting": s.waiting_for[:998] if s.waiting_for else None} for s in settled])
    for s in settled:
        if s.state == "quarantined":
            MAILS.labels(s.door, "quarantined").inc()


def put_quarantined(sessions: sessionmaker[Session], raw: bytes, door: str, error: str,
                    envelope_from: str = "") -> int:
    """Keep a mail we refuse to process (too big, empty) with its bytes and the reason, for replay."""
    with sessions() as session, session.begin():
        row = RawMail(dedupe_key=f"sha256:{content_hash(raw)}:{door}:{utcnow().timestamp()}", door=door,
                      envelope_from=envelope_from[:998], envelope_to="", raw=raw, state="quarantined",
                      attempts=0, last_error=error[:2000], received_at=utcnow(), processed_at=utcnow())
        session.add(row)
        session.flush()
        MAILS.labels(door, "quarantined").inc()
        return row.id
