"""On SQLite, the SMTP door commits each mail to a spool file of its own before it answers 250,
and a thread of the door moves what it staged into the database's spool (raw_mail) in batches.

SQLite has one write lock per database file. While the worker stores a batch of mail it holds
that lock, and a door writing into the same file waited for it before every 250: over one
connection, the door then accepted mail only as fast as the worker stored it (2,000 mails: 11 s of
a 16 s run spent waiting). In a file of its own the door's commit waits for nobody but the door.
The bytes are as durable there (WAL, synchronous=FULL) as in raw_mail; the mover copies them
over in one transaction per batch and only then deletes them here, so a crash in between leaves
a mail in both places, and raw_mail's dedupe key stores it once. On PostgreSQL, whose row locks
let the door and the worker write at once, the door writes to raw_mail directly (ingest.spool).
"""
from __future__ import annotations

import logging
import sqlite3
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable

from sqlalchemy.orm import Session, sessionmaker

from core.db import staging_path
from core.models import utcnow
from ingest import spool

log = logging.getLogger(__name__)

_SCHEMA = """CREATE TABLE IF NOT EXISTS staged (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    door TEXT NOT NULL, envelope_from TEXT NOT NULL, envelope_to TEXT NOT NULL, raw BLOB NOT NULL,
    peer_ip TEXT NOT NULL, helo TEXT NOT NULL, received_at TEXT NOT NULL)"""
_COLUMNS = "id, door, envelope_from, envelope_to, raw, peer_ip, helo, received_at"
BATCH = 200  # mails moved per transaction
_RETRY_FIRST, _RETRY_LONGEST = 0.5, 30.0  # seconds between attempts while the database refuses the move
_RETRY_REFUSED = 60.0  # seconds before a mail the database refused alone is tried again


__all__ = ["StagingSpool", "Staged", "move_left_over", "staging_for", "staging_path"]


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute(_SCHEMA)
    return conn


@dataclass(frozen=True)
class Staged:
    id: int


class StagingSpool:
    """The door's own spool file and the thread that moves its mails into raw_mail."""

    def __init__(self, path: Path, sessions: sessionmaker[Session], on_moved: Callable[[], None]) -> None:
        self.path = path
        self.sessions = sessions
        self.on_moved = on_moved
        path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = _connect(path)
        self._writer_lock = threading.Lock()
        self._reader = _connect(path)
        self._staged = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._skip_below = 0  # staged ids up to this include some refused alone: tried again later
        self._skipped_at = 0.0

    def put(self, raw: bytes, door: str, envelope_from: str = "", envelope_to: tuple[str, ...] = (),
            peer_ip: str = "", helo: str = "") -> Staged:
        """Commit the mail to the staging file (durable when this returns) and wake the mover."""
        values = (door, envelope_from[:998], ",".join(envelope_to), raw, peer_ip[:64], helo[:255],
                  utcnow().isoformat())
        with self._writer_lock:
            cur = self._writer.execute(
                "INSERT INTO staged (door, envelope_from, envelope_to, raw, peer_ip, helo, received_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)", values)
            staged = Staged(cur.lastrowid)
        self._staged.set()
        return staged

    def start(self) -> None:
        """Move what an earlier run left, then keep moving in the background."""
        self._staged.set()
        self._thread = threading.Thread(target=self._run, name="smtp-spool", daemon=True)
        self._thread.start()

    def close(self, timeout: float = 10.0) -> None:
        """Stop the mover after one last move (whatever stays is moved at the next start)."""
        self._stop.set()
        self._staged.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._skip_below = 0
        try:
            self.move_all()
        except Exception:  # the database is down: the mails wait in the staging file
            log.warning("could not move staged mails into the spool at shutdown; they wait in %s", self.path,
                        exc_info=True)
        self.release()

    def release(self) -> None:
        """Close the staging file (without moving anything)."""
        self._writer.close()
        self._reader.close()

    def move_all(self) -> int:
        """Move every staged mail into raw_mail; returns how many were moved."""
        moved = 0
        while True:
            count = self.move_batch()
            moved += count
            if count < BATCH:
                return moved

    def move_batch(self) -> int:
        """Copy up to BATCH staged mails into raw_mail in one transaction, then forget them here.
        Should the batch fail, its mails are moved one by one: a mail the database refuses while it
        takes the others stays staged (logged, tried again a minute later and at shutdown) instead of
        holding up every mail behind it; when none goes in, the database is at fault and the error is
        raised."""
        rows = self._reader.execute(f"SELECT {_COLUMNS} FROM staged WHERE id > ? ORDER BY id LIMIT ?",
                                    (self._skip_below, BATCH)).fetchall()
        if not rows:
            return 0
        try:
            self._move(rows)
        except Exception:
            if len(rows) == 1:
                raise
            self._move_one_by_one(rows)
        return len(rows)

    def _move(self, rows: list[tuple]) -> None:
        with self.sessions() as session, session.begin():
            results = spool.put_many(session, [
                spool.Incoming(raw=raw, door=door, envelope_from=env_from, envelope_to=env_to, peer_ip=peer_ip,
                               helo=helo, received_at=datetime.fromisoformat(received))
                for _id, door, env_from, env_to, raw, peer_ip, helo, received in rows])
        spool.count_spooled(results)
        self._reader.execute(f"DELETE FROM staged WHERE id IN ({','.join('?' * len(rows))})", [r[0] for r in rows])
        if any(not r.duplicate for r in results):
            self.on_moved()

    def _move_one_by_one(self, rows: list[tuple]) -> None:
        refused = []
        for row in rows:
            try:
                self._move([row])
            except Exception as exc:
                refused.append((row[0], exc))
        if len(refused) == len(rows):
            raise refused[0][1]
        for staged_id, exc in refused:
            log.error("staged mail %s was refused by the database while others went in; it stays in %s and is "
                      "tried again at the next start: %s", staged_id, self.path, exc)
        # Past the refused ones: they no longer hold up the mail behind them.
        self._skip_below = max(self._skip_below, rows[-1][0])
        self._skipped_at = time.monotonic()

    def _run(self) -> None:
        pause = _RETRY_FIRST
        while not self._stop.is_set():
            self._staged.wait(1.0)
            self._staged.clear()
            if self._stop.is_set():
                return
            if self._skip_below and time.monotonic() - self._skipped_at > _RETRY_REFUSED:
                self._skip_below = 0  # the refused mails once more
            try:
                self.move_all()
                pause = _RETRY_FIRST
            except Exception:  # the database is down or locked: the mails are safe here, try again
                log.exception("moving staged mails into the spool failed; retrying in %.1fs", pause)
                self._stop.wait(pause)
                pause = min(pause * 2, _RETRY_LONGEST)
                self._staged.set()


def staging_for(database_url: str, sessions: sessionmaker[Session],
                on_moved: Callable[[], None]) -> StagingSpool | None:
    path = staging_path(database_url)
    return StagingSpool(path, sessions, on_moved) if path is not None else None


def move_left_over(database_url: str, sessions: sessionmaker[Session]) -> int:
    """Move what a stopped door left in its staging file (backup and restore-free commands call this)."""
    path = staging_path(database_url)
    if path is None or not path.exists():
        return 0
    staging = StagingSpool(path, sessions, lambda: None)
    try:
        return staging.move_all()
    finally:
        staging.release()
