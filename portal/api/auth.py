"""JSON routes: register, sign in for a bearer token, sign out, who am I (OpenAPI at /docs).

Register answers alike for a new address and one that already has an account (201, the same
body): the mail tells the owner which it was, so nobody learns from the API who has an account. Register and login take JSON bodies only (a cross-site form cannot
send one without CORS, which is off) and set no cookie, so they need no CSRF token.
"""
from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from core import accounts, i18n, sessions as websessions
from core.config import Settings
from core.models import Contact
from portal.deps import csrf_protect, current_user, db, require_user, session_cookie_name, settings

router = APIRouter(prefix="/api", tags=["auth"])
REGISTERED = "Check your mailbox: we sent a link to confirm the address (or a note, if it already has an account)."


class Credentials(BaseModel):
    email: str = Field(..., max_length=320)
    password: str = Field(..., max_length=accounts.MAX_PASSWORD)


class NewAccount(Credentials):
    name: str = Field("", max_length=200)


class AccountCreated(BaseModel):
    id: int | None = Field(None, description="always null: the answer must not tell whether the address already "
                                             "had an account (GET /api/auth/me gives the id after sign-in)")
    email: str
    detail: str = Field(REGISTERED, description="what happens next")


class BearerToken(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"


class Me(BaseModel):
    id: int
    email: str
    name: str
    role: str
    verified: bool = Field(description="false until the address is confirmed by the mailed link")
    notify_replies: bool
    notify_status: bool
    language: str | None = Field(None, description="'en', 'de'; null: the browser's language for pages, English for mails")
    time_zone: str | None = Field(None, description="IANA name (Europe/Berlin); null: the site's. The API's times stay UTC")


class MeChange(BaseModel):
    language: str | None = Field(None, max_length=8, description="a shipped language, or '' for none")
    time_zone: str | None = Field(None, max_length=64, description="an IANA time zone name, or '' for none")


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _bearer_token(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _too_many(exc: accounts.Throttled) -> HTTPException:
    return HTTPException(429, str(exc), headers={"Retry-After": str(exc.retry_after)})


@router.post("/auth/register", status_code=201, response_model=AccountCreated,
             responses={422: {"description": "invalid address or password"}, 429: {"description": "throttled"}})
def register(body: NewAccount, request: Request, session: Session = Depends(db),
             cfg: Settings = Depends(settings)) -> AccountCreated:
    """Create an unverified account and mail it a confirmation link; an address that already has an
    account gets the same answer, and its owner a mail saying so (with a link to reset the password)."""
    try:
        accounts.limit_form_use(session, "register", _client(request))
        address = accounts.normalise_email(body.email)
        accounts.register(session, cfg, address, body.password, body.name,
                          language=i18n.best_language(request.headers.get("accept-language")))
    except accounts.Throttled as exc:
        raise _too_many(exc) from None
    except accounts.InvalidInput as exc:
        session.commit()
        raise HTTPException(422, str(exc)) from None
    session.commit()
    return AccountCreated(email=address)


@router.post("/auth/login", response_model=BearerToken,
             responses={401: {"description": "wrong address or password"},
                        403: {"description": "account switched off, or address not confirmed yet (a new link is mailed)"},
                        429: {"description": "too many failures; see Retry-After"}})
def login(body: Credentials, request: Request, session: Session = Depends(db),
          cfg: Settings = Depends(settings)) -> BearerToken:
    """Exchange address and password for a bearer token (valid 30 days, ended by /api/auth/logout)."""
    try:
        contact = accounts.sign_in(session, body.email, body.password, _client(request))
    except accounts.Throttled as exc:
        raise _too_many(exc) from None
    except accounts.BadCredentials as exc:
        session.commit()
        raise HTTPException(401, str(exc), headers={"WWW-Authenticate": "Bearer"}) from None
    except accounts.AccountDisabled as exc:
        raise HTTPException(403, str(exc)) from None
    except accounts.NotVerified as exc:
        accounts.send_verification(session, cfg, exc.contact)
        session.commit()
        raise HTTPException(403, str(exc)) from None
    token = websessions.start_session(session, contact, kind="bearer")
    session.commit()
    return BearerToken(access_token=token)


async def _csrf_unless_bearer(request: Request, user: Contact | None = Depends(current_user)) -> None:
    """A bearer token cannot be sent by a foreign site; a cookie can, so cookie callers need the CSRF token."""
    if _bearer_token(request) is None:
        await csrf_protect(request, user)


@router.post("/auth/logout", status_code=204, dependencies=[Depends(_csrf_unless_bearer)])
def logout(request: Request, session: Session = Depends(db), cfg: Settings = Depends(settings)) -> Response:
    """End this bearer token's session (or the cookie's); answers 204 also when it had already ended."""
    response = Response(status_code=204)
    token = _bearer_token(request)
    if token is not None:
        websessions.end_session(session, token)
    else:
        name = session_cookie_name(cfg)
        websessions.end_session(session, request.cookies.get(name))
        response.delete_cookie(name, path="/", secure=cfg.base_url.startswith("https://"), httponly=True,
                               samesite="lax")
    session.commit()
    return response


def _me(user: Contact) -> Me:
    return Me(id=user.id, email=user.email, name=user.name, role=user.role,
              verified=user.email_verified_at is not None, notify_replies=user.notify_replies,
              notify_status=user.notify_status, language=user.language, time_zone=user.time_zone)


@router.get("/auth/me", response_model=Me)
def me(user: Contact = Depends(require_user)) -> Me:
    """The signed-in person."""
    return _me(user)


@router.patch("/auth/me", response_model=Me, dependencies=[Depends(_csrf_unless_bearer)])
def change_me(body: MeChange, user: Contact = Depends(require_user), session: Session = Depends(db)) -> Me:
    """Set the signed-in person's language and time zone (a field left out stays as it is)."""
    language = user.language or "" if body.language is None else body.language
    time_zone = user.time_zone or "" if body.time_zone is None else body.time_zone
    try:
        accounts.set_language_and_zone(user, language, time_zone)
    except accounts.InvalidInput as exc:
        raise HTTPException(400, str(exc)) from None
    session.commit()
    return _me(user)
