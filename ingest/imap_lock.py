"""One poller per IMAP mailbox at a time, across threads, processes and (on PostgreSQL) hosts.

PostgreSQL: a session-level advisory lock, `pg_try_advisory_lock`, on a connection of its own
in autocommit (no transaction stays open while the poll waits on the IMAP server), keyed by
the first 8 bytes of sha256 of the mailbox key. SQLite lives on one machine: `flock` on a file
beside the database file, so every process sharing the database shares the lock whatever its
[paths] var_dir. Both locks go when their process dies (its connection or file closes): a
killed poller never leaves a mailbox locked.

The lock saves double fetching and double after-actions; exactly-once does not rest on it
(the spool's dedupe and the forward-only state row keep a mail single even if two polls met).
"""
from __future__ import annotations

import fcntl
import hashlib
import logging
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from sqlalchemy import Connection, Engine, text
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)


@contextmanager
def polling_alone(sessions: sessionmaker[Session], var_dir: str, mailbox_key: str) -> Iterator[bool]:
    """Yields True while this poller alone holds the mailbox, False when another one does (nothing held)."""
    engine = _engine(sessions)
    if engine.dialect.name == "postgresql":
        lock = _advisory_lock(engine, advisory_lock_id(mailbox_key))
    else:
        lock = _file_lock(lock_file(engine, var_dir, mailbox_key))
    with lock as held:
        yield held


def advisory_lock_id(mailbox_key: str) -> int:
    """A stable signed 64-bit key for pg_try_advisory_lock, the same in every process."""
    digest = hashlib.sha256(f"postdesk-imap:{mailbox_key}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def lock_file(engine: Engine, var_dir: str, mailbox_key: str) -> Path:
    """<database file>.imap-<hash>.lock beside the database (var_dir for an in-memory one)."""
    database = engine.url.database
    on_disk = database and database != ":memory:" and not database.startswith("file::memory:")
    base = Path(database) if on_disk else Path(var_dir) / "memory.db"
    return base.with_name(f"{base.name}.imap-{hashlib.sha256(mailbox_key.encode()).hexdigest()[:16]}.lock")


def _engine(sessions: sessionmaker[Session]) -> Engine:
    with sessions() as session:  # get_bind() starts no transaction
        bind = session.get_bind()
    return bind.engine if isinstance(bind, Connection) else bind


@contextmanager
def _advisory_lock(engine: Engine, lock_id: int) -> Iterator[bool]:
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT")
        held = bool(conn.scalar(text("SELECT pg_try_advisory_lock(:id)"), {"id": lock_id}))
        try:
            yield held
        finally:
            if held:
                _advisory_unlock(conn, lock_id)


def _advisory_unlock(conn: Connection, lock_id: int) -> None:
    try:
        conn.scalar(text("SELECT pg_advisory_unlock(:id)"), {"id": lock_id})
    except Exception:  # the connection broke, and its lock with it; never pool one that might hold it
        log.warning("could not release IMAP advisory lock %s; dropping its connection", lock_id, exc_info=True)
        conn.invalidate()


@contextmanager
def _file_lock(path: Path) -> Iterator[bool]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:  # flock (not fcntl/lockf): a second open() in the same process is refused too
        yield _try_flock(fd)
    finally:
        os.close(fd)  # releases the lock; the file stays (unlinking it would race the next locker)


def _try_flock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True
