"""SQLite writers queue on a file lock (core.sqlite_writers): a writer starts within milliseconds
of the last one's commit, never together with it, and gives up with SQLite's own error in time."""
from __future__ import annotations

import sqlite3
import threading
import time

import pytest
from sqlalchemy import exc, text

from core.db import make_engine
from core.sqlite_writers import QueuedWriterConnection


def _connect(path) -> QueuedWriterConnection:
    return sqlite3.connect(path, factory=QueuedWriterConnection, isolation_level=None, check_same_thread=False)


def test_the_next_writer_starts_right_after_the_commit_and_never_before(tmp_path):
    path = tmp_path / "db.sqlite"
    first, second = _connect(path), _connect(path)
    first.execute("CREATE TABLE t (x)")
    first.take_write_turn()
    first.execute("BEGIN IMMEDIATE")
    started: list[float] = []

    def write() -> None:
        second.take_write_turn()
        started.append(time.monotonic())
        second.execute("BEGIN IMMEDIATE")
        second.execute("INSERT INTO t VALUES (2)")
        second.commit()

    thread = threading.Thread(target=write)
    thread.start()
    time.sleep(0.3)
    assert not started  # waiting for its turn, not in SQLite's busy handler
    first.execute("INSERT INTO t VALUES (1)")
    first.commit()
    released = time.monotonic()
    thread.join(5)
    assert started and started[0] - released < 0.05
    assert [r[0] for r in first.execute("SELECT x FROM t ORDER BY rowid")] == [1, 2]


def test_a_writer_that_cannot_get_its_turn_fails_as_sqlite_would(tmp_path):
    path = tmp_path / "db.sqlite"
    first, second = _connect(path), _connect(path)
    first.take_write_turn()
    with pytest.raises(sqlite3.OperationalError, match="database is locked"):
        second.take_write_turn(wait_seconds=0.2)
    first.rollback()  # gives the turn back
    second.take_write_turn(wait_seconds=0.2)


def test_engine_transactions_hold_the_turn_until_they_end(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    other = _connect(tmp_path / "db.sqlite")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x)"))
        with pytest.raises(sqlite3.OperationalError):
            other.take_write_turn(wait_seconds=0.1)
    other.take_write_turn(wait_seconds=0.5)  # given back at commit
    other.rollback()
    with pytest.raises(exc.OperationalError), engine.begin() as conn:
        conn.execute(text("INSERT INTO missing VALUES (1)"))
    other.take_write_turn(wait_seconds=0.5)  # and at rollback
    engine.dispose()
