"""Injected dependencies: a database session per request, the settings, the signed-in person,
role guards and CSRF protection."""
from __future__ import annotations

import secrets
from typing import Callable, Iterator

from fastapi import Depends, HTTPException, Request
from sqlalchemy.orm import Session

from core import sessions as websessions
from core.config import Settings
from core.models import Contact

ANON_COOKIE = "postdesk_anon"


def db(request: Request) -> Iterator[Session]:
    with request.app.state.sessions() as session:
        yield session


async def settings(request: Request) -> Settings:
    return request.app.state.settings


def session_cookie_name(cfg: Settings) -> str:
    """`__Host-` cookies must be Secure, which browsers accept only over https."""
    return "__Host-postdesk" if cfg.base_url.startswith("https://") else "postdesk_session"


def _bearer(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def current_user(request: Request, session: Session = Depends(db), cfg: Settings = Depends(settings)) -> Contact | None:
    """The signed-in person (cookie or bearer token), or None; cached on the request."""
    if hasattr(request.state, "user"):
        return request.state.user
    found = None
    token = _bearer(request)
    if token:
        found = websessions.session_for(session, token, kind="bearer")
        request.state.via_bearer = found is not None
    else:
        found = websessions.session_for(session, request.cookies.get(session_cookie_name(cfg)), kind="cookie")
    request.state.web_session = found[0] if found else None
    request.state.user = found[1] if found else None
    return request.state.user


async def require_user(request: Request, user: Contact | None = Depends(current_user)) -> Contact:
    if user is None:
        if _wants_html(request):
            raise HTTPException(303, "Please sign in.", headers={"Location": f"/login?next={request.url.path}"})
        raise HTTPException(401, "Sign in first (session cookie or bearer token).",
                            headers={"WWW-Authenticate": "Bearer"})
    return user


def require_role(*roles: str) -> Callable[..., Contact]:
    async def guard(user: Contact = Depends(require_user)) -> Contact:
        if user.role not in roles:
            raise HTTPException(403, "Your account may not open this page.")
        return user
    return guard


def _wants_html(request: Request) -> bool:
    return not request.url.path.startswith("/api/") and "text/html" in request.headers.get("accept", "")


def csrf_binding(request: Request) -> str:
    """What a CSRF token is bound to: the session's secret, or the anonymous visitor's cookie."""
    web_session = getattr(request.state, "web_session", None)
    if web_session is not None:
        return web_session.csrf_secret
    return request.cookies.get(ANON_COOKIE) or getattr(request.state, "anon_id", "")


def csrf_token_for(request: Request) -> str:
    return websessions.csrf_token(request.app.state.settings.web.secret_key, csrf_binding(request))


async def csrf_protect(request: Request, user: Contact | None = Depends(current_user)) -> None:
    """Refuse a state-changing browser request without the form's CSRF token (bearer API calls are exempt)."""
    if request.method in ("GET", "HEAD", "OPTIONS") or getattr(request.state, "via_bearer", False):
        return
    token = request.headers.get("x-csrf-token")
    if token is None and "form" in request.headers.get("content-type", ""):
        token = (await request.form()).get("csrf_token")
    if not websessions.csrf_valid(request.app.state.settings.web.secret_key, csrf_binding(request),
                                  token if isinstance(token, str) else None):
        raise HTTPException(403, "The form expired or did not come from this site; reload the page and try again.")


def new_anon_id() -> str:
    return secrets.token_urlsafe(16)
