"""Backup and restore of the embedded SQLite database (raw mails and attachments live in it).
PostgreSQL deployments use pg_dump / pg_restore (see README)."""
from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from sqlalchemy.engine import make_url

from core.errors import PostdeskError


def _sqlite_path(url: str) -> Path:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        raise PostdeskError("backup/restore handle the SQLite database; for PostgreSQL use pg_dump (see README)")
    return Path(parsed.database)


def backup(url: str, target: Path) -> int:
    """Copy the live database with SQLite's online backup API (consistent while Postdesk runs)."""
    source_path = _sqlite_path(url)
    if not source_path.is_file():
        raise PostdeskError(f"no database at {source_path}")
    tmp = target.with_name(target.name + ".tmp")
    with sqlite3.connect(source_path) as source, sqlite3.connect(tmp) as dest:
        source.backup(dest)
    os.replace(tmp, target)
    return target.stat().st_size


def restore(url: str, source: Path) -> None:
    """Replace the database with a backup (stop Postdesk first); the backup is checked before."""
    target_path = _sqlite_path(url)
    with sqlite3.connect(f"file:{source}?mode=ro", uri=True) as check:
        if check.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
            raise PostdeskError(f"{source} is not a healthy SQLite database")
        if not check.execute("SELECT 1 FROM sqlite_master WHERE name = 'raw_mail'").fetchone():
            raise PostdeskError(f"{source} is not a Postdesk backup")
    target_path.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("-wal", "-shm"):
        Path(str(target_path) + suffix).unlink(missing_ok=True)
    with sqlite3.connect(source) as src, sqlite3.connect(target_path) as dest:
        src.backup(dest)
