"""Sign-in sessions (browser cookies and API bearer tokens) and CSRF tokens.

Only hashes are stored; a session is one random token. Sessions live in the database, so
any number of web processes behave as one.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from core.models import Contact, WebSession, aware, utcnow

COOKIE_DAYS = 14
BEARER_DAYS = 30


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(session: Session, contact: Contact, kind: str = "cookie") -> str:
    """A new session token for this person (the caller sets it as a cookie or returns it as a bearer token)."""
    token = secrets.token_urlsafe(32)
    days = COOKIE_DAYS if kind == "cookie" else BEARER_DAYS
    session.add(WebSession(token_hash=_hash(token), contact_id=contact.id, kind=kind,
                           csrf_secret=secrets.token_hex(16), expires_at=utcnow() + timedelta(days=days)))
    return token


def session_for(session: Session, token: str | None, kind: str = "cookie") -> tuple[WebSession, Contact] | None:
    """The live session and its active person for a token, or None."""
    if not token:
        return None
    # One query for both (every signed-in request makes it).
    found = session.execute(select(WebSession, Contact).join(Contact, Contact.id == WebSession.contact_id)
                            .where(WebSession.token_hash == _hash(token))).first()
    if found is None:
        return None
    row, contact = found
    if row.kind != kind or aware(row.expires_at) < utcnow() or not contact.active:
        return None
    return row, contact


def end_session(session: Session, token: str | None) -> None:
    if token:
        session.execute(delete(WebSession).where(WebSession.token_hash == _hash(token)))


def end_all_sessions(session: Session, contact_id: int) -> None:
    """Sign the person out everywhere (after a password reset)."""
    session.execute(delete(WebSession).where(WebSession.contact_id == contact_id))


def csrf_token(secret: str, binding: str) -> str:
    """A CSRF token bound to a session's secret or an anonymous visitor's cookie."""
    return hmac.new(secret.encode(), f"csrf:{binding}".encode(), hashlib.sha256).hexdigest()[:40]


def csrf_valid(secret: str, binding: str, token: str | None) -> bool:
    return bool(token) and bool(binding) and hmac.compare_digest(csrf_token(secret, binding), token or "")


def sessions_of(session: Session, contact_id: int) -> list[WebSession]:
    return list(session.scalars(select(WebSession).where(WebSession.contact_id == contact_id)))
