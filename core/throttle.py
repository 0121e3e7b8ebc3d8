"""Throttling of guesses (logins, forms): a sliding window per key, in the database so every
web process shares it. It slows an attacker down and never locks anyone out for good."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from core.db import dialect_insert
from core.models import Throttle, aware, utcnow


def too_many(session: Session, key: str, limit: int, window: timedelta) -> bool:
    """True when `key` has used up its `limit` within the current window."""
    row = session.get(Throttle, key[:400])
    if row is None:
        return False
    return aware(row.window_start) + window > utcnow() and row.count >= limit


def hit(session: Session, key: str, window: timedelta) -> None:
    """Count one attempt for `key` (a new window starts when the old one is over)."""
    now = utcnow()
    row = session.get(Throttle, key[:400])
    if row is None:
        # Two first attempts may race (two web processes): insert-or-ignore, then count on the row.
        session.execute(dialect_insert(session)(Throttle).values(key=key[:400], window_start=now, count=0)
                        .on_conflict_do_nothing(index_elements=["key"]))
        row = session.get(Throttle, key[:400], populate_existing=True)
    if aware(row.window_start) + window <= now:
        row.window_start, row.count = now, 1
    else:
        row.count += 1


def clear(session: Session, key: str) -> None:
    row = session.get(Throttle, key[:400])
    if row is not None:
        session.delete(row)


def take(session: Session, key: str, limit: int, window: timedelta) -> bool:
    """Count one use of `key` and say whether it was allowed (False: the limit was already used up)."""
    if too_many(session, key, limit, window):
        return False
    hit(session, key, window)
    return True
