"""SQLite writers queue on a file lock instead of sleeping in SQLite's busy handler.

SQLite has one write lock per database. A writer that finds it taken sleeps in the busy handler
for 1, 2, 5, 10 … up to 100 ms at a time and looks again, so it starts up to 100 ms after the
lock was freed, and meanwhile the holder may take it once more. With the SMTP door committing
every mail it accepts and the worker storing batches in another process, that overshoot was most
of the door's waiting (105 of 2,000 mails waited 85 ms on average, one 734 ms, behind batches
that held the lock for a fraction of that). Before BEGIN IMMEDIATE a connection takes an
exclusive `flock` on a file beside the database (`<db>-writers`) and keeps it until its
transaction ends; a waiter tries again every 0.2 to 2 ms, so the next writer starts within 2 ms
of the release, across processes and threads alike (each connection has its own open file, and
flock locks belong to the open file).

SQLite's own lock still decides: a writer that does not take the file lock (the sqlite3 shell, a
plain engine) is waited for by busy_timeout as before.
"""
from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time

WAIT_SECONDS = 30.0  # as busy_timeout: then "database is locked", as SQLite would say
_FIRST_NAP, _LONGEST_NAP = 0.0002, 0.002
# A thread that just held the lock for long lets the others in before it takes it again: waiters
# look every _LONGEST_NAP at most, and a worker storing batch after batch took the lock back within
# microseconds, so the door's mover and outbox delivery waited seconds for a turn.
_LONG_HOLD, _GRACE = 0.02, 0.003
_recent = threading.local()


def lock_path(database: str) -> str:
    """The file whose flock the database's writers queue on."""
    return f"{database}-writers"


class QueuedWriterConnection(sqlite3.Connection):
    """A sqlite3 connection that holds the database's writer file lock from `take_write_turn()`
    until its transaction commits, rolls back or the connection closes."""

    def __init__(self, database: str, *args, **kwargs) -> None:
        super().__init__(database, *args, **kwargs)
        self._turn_fd: int | None = None
        self._turn_path = lock_path(os.fspath(database))
        self._holding = False
        self._taken_at = 0.0

    def take_write_turn(self, wait_seconds: float = WAIT_SECONDS) -> None:
        """Wait until no other queued writer is in a write transaction, then hold the turn."""
        if self._holding:
            return
        since = time.monotonic() - getattr(_recent, "released_at", float("-inf"))
        if getattr(_recent, "held", 0.0) > _LONG_HOLD and since < _GRACE:
            time.sleep(_GRACE - since)
        if self._turn_fd is None:
            self._turn_fd = os.open(self._turn_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        deadline = time.monotonic() + wait_seconds
        nap = _FIRST_NAP
        while True:
            try:
                fcntl.flock(self._turn_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise sqlite3.OperationalError("database is locked") from None
                # Short naps, not a blocking flock: a blocked flock cannot be given a deadline.
                time.sleep(nap)
                nap = min(nap * 2, _LONGEST_NAP)
        self._holding = True
        self._taken_at = time.monotonic()

    def give_back_turn(self) -> None:
        if self._holding and self._turn_fd is not None:
            self._holding = False
            fcntl.flock(self._turn_fd, fcntl.LOCK_UN)
            _recent.released_at = time.monotonic()
            _recent.held = _recent.released_at - self._taken_at

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            if not self.in_transaction:
                self.give_back_turn()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self.give_back_turn()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.give_back_turn()
            if self._turn_fd is not None:
                os.close(self._turn_fd)
                self._turn_fd = None
