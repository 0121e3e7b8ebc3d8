"""Account pages: register, verify, sign in and out (password or OpenID Connect), reset, /account.

The door part only: forms, cookies and answers. What is allowed is decided in core.accounts
and core.oidc. Answers never tell whether an address has an account.
"""
from __future__ import annotations

import logging
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse
from starlette.background import BackgroundTask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core import accounts, oidc, sessions as websessions
from core import i18n
from core.i18n import N_
from core.config import Settings
from core.models import Contact, Ticket
from core.security.devices import DEVICE_COOKIE, DEVICE_DAYS, issue_device_token, trusted_device
from portal.deps import csrf_protect, current_user, db, require_user, session_cookie_name, settings
from portal.render import browser_language, page

log = logging.getLogger(__name__)
# Every page knows who is signed in: the nav shows it, and CSRF tokens bind to that session.
router = APIRouter(include_in_schema=False, dependencies=[Depends(current_user)])
OIDC_COOKIE = "postdesk_oidc"
OIDC_PATH = "/login/oidc"
NOTICES = {
    "verified": N_("Your address is confirmed. Welcome!"),
    "password-reset": N_("Your new password is set. You were signed out on every other device."),
    "password-changed": N_("Your password is changed. You were signed out on every other device."),
    "preferences": N_("Your notification preferences are saved."),
    "verify-sent": N_("We sent you a new confirmation link; it is valid for 24 hours."),
    "verified-sign-in": N_("Your address is confirmed. Please sign in."),
    "language": N_("Your language and time zone are saved."),
}


def local_path(value: str | None) -> str:
    """`next` as a path on this site, or "" when it could leave it (//host, a scheme, a backslash)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return ""
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        return ""
    parts = urlsplit(value)
    return value if not parts.scheme and not parts.netloc else ""


def landing(contact: Contact, next_path: str | None) -> str:
    """Where to go after signing in: the asked-for local page, else the person's own start page."""
    return local_path(next_path) or ("/agent/queue" if contact.role in ("agent", "admin") else "/my/tickets")


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _https(cfg: Settings) -> bool:
    return cfg.base_url.startswith("https://")


def signed_in(request: Request, session: Session, cfg: Settings, contact: Contact, to: str) -> RedirectResponse:
    """Start a new cookie session (ending the one the browser had: no fixation) and go on to `to`."""
    name = session_cookie_name(cfg)
    websessions.end_session(session, request.cookies.get(name))
    token = websessions.start_session(session, contact, kind="cookie")
    session.commit()
    log.info("contact %s signed in", contact.id)
    response = RedirectResponse(to, status_code=303)
    response.set_cookie(name, token, max_age=websessions.COOKIE_DAYS * 86400, path="/", httponly=True,
                        samesite="lax", secure=_https(cfg))
    return response


def _login_page(request: Request, cfg: Settings, status: int = 200, *, email: str = "", next_path: str = "",
                error: str = "", retry_after: int = 0):
    response = page(request, "account/login.html", status, email=email, next=local_path(next_path),
                    error=error, oidc_enabled=oidc.oidc_config(cfg) is not None,
                    notice=NOTICES.get(request.query_params.get("notice", ""), ""))
    if retry_after:
        response.headers["Retry-After"] = str(retry_after)
    return response


def _throttled(request: Request, template: str, exc: accounts.Throttled, **context):
    response = page(request, template, 429, error=str(exc), **context)
    response.headers["Retry-After"] = str(exc.retry_after)
    return response


def _check_mail(request: Request, email: str, why: str):
    return page(request, "account/check_mail.html", email=email, why=why)


@router.get("/login")
def login_form(request: Request, next: str = "", cfg: Settings = Depends(settings)):
    return _login_page(request, cfg, next_path=next)


@router.post("/login", dependencies=[Depends(csrf_protect)])
def login(request: Request, email: str = Form(""), password: str = Form(""), next: str = Form(""),
          session: Session = Depends(db), cfg: Settings = Depends(settings)):
    try:
        contact = accounts.sign_in(session, email, password, client_address(request), _device(request, cfg, email))
    except accounts.Throttled as exc:
        return _login_page(request, cfg, 429, email=email, next_path=next, error=str(exc), retry_after=exc.retry_after)
    except accounts.BadCredentials as exc:
        session.commit()  # the failure counts
        return _login_page(request, cfg, 401, email=email, next_path=next, error=str(exc))
    except accounts.AccountDisabled as exc:
        return _login_page(request, cfg, 403, email=email, next_path=next, error=str(exc))
    except accounts.NotVerified as exc:
        accounts.send_verification(session, cfg, exc.contact)
        session.commit()
        return _login_page(request, cfg, 403, email=email, next_path=next, error=str(exc))
    response = signed_in(request, session, cfg, contact, landing(contact, next))
    response.set_cookie(DEVICE_COOKIE, issue_device_token(cfg.web.secret_key, contact.email),
                        max_age=DEVICE_DAYS * 86400, path="/login", httponly=True, samesite="lax", secure=_https(cfg))
    return response


def _device(request: Request, cfg: Settings, email: str) -> str | None:
    """The browser's trusted-device id for this address (it signed in as it before), or None."""
    try:
        login = accounts.normalise_email(email)
    except accounts.InvalidInput:
        return None
    return trusted_device(cfg.web.secret_key, request.cookies.get(DEVICE_COOKIE), login)


@router.post("/logout", dependencies=[Depends(csrf_protect)])
def logout(request: Request, session: Session = Depends(db), cfg: Settings = Depends(settings)):
    name = session_cookie_name(cfg)
    websessions.end_session(session, request.cookies.get(name))
    session.commit()
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(name, path="/", secure=_https(cfg), httponly=True, samesite="lax")
    return response


@router.get("/register")
def register_form(request: Request):
    return page(request, "account/register.html")


@router.post("/register", dependencies=[Depends(csrf_protect)])
def register(request: Request, email: str = Form(""), password: str = Form(""), name: str = Form(""),
             website: str = Form(""), session: Session = Depends(db), cfg: Settings = Depends(settings)):
    form = {"email": email, "name": name}
    try:
        accounts.limit_form_use(session, "register", client_address(request))
    except accounts.Throttled as exc:
        return _throttled(request, "account/register.html", exc, **form)
    if website.strip():  # the hidden honeypot field: only robots fill it in
        session.commit()
        log.info("registration from %s dropped: honeypot filled", client_address(request))
        return _check_mail(request, email.strip().lower(), "register")
    try:
        accounts.register(session, cfg, email, password, name, language=browser_language(request))
    except accounts.InvalidInput as exc:
        session.commit()
        return page(request, "account/register.html", 400, error=str(exc), **form)
    session.commit()
    return _check_mail(request, accounts.normalise_email(email), "register")


@router.get("/verify")
def resend_form(request: Request):
    return page(request, "account/link_failed.html", purpose="verify", message="")


@router.post("/verify", dependencies=[Depends(csrf_protect)])
def resend(request: Request, email: str = Form(""), session: Session = Depends(db),
           cfg: Settings = Depends(settings)):
    try:
        accounts.limit_form_use(session, "verify", client_address(request))
        accounts.resend_verification(session, cfg, email)
    except accounts.Throttled as exc:
        return _throttled(request, "account/link_failed.html", exc, purpose="verify", message="")
    except accounts.InvalidInput as exc:
        session.commit()
        return page(request, "account/link_failed.html", 400, purpose="verify", message="", error=str(exc))
    session.commit()
    return _check_mail(request, accounts.normalise_email(email), "verify")


@router.get("/verify/{token}")
def verify_form(token: str, request: Request, session: Session = Depends(db)):
    """Opening the link only shows a button: a GET must neither use the link up nor sign anyone in
    (an attacker's link would sign the victim into the attacker's account)."""
    try:
        contact = accounts.verify_token_owner(session, token)
    except accounts.LinkInvalid as exc:
        return page(request, "account/link_failed.html", 400, purpose="verify", message=str(exc))
    return page(request, "account/verify_confirm.html", token=token, email=contact.email)


@router.post("/verify/{token}", dependencies=[Depends(csrf_protect)])
def verify(token: str, request: Request, session: Session = Depends(db), cfg: Settings = Depends(settings)):
    """Confirm the address; the person then signs in with the password (confirming never signs in)."""
    try:
        accounts.verify_email(session, cfg, token)
    except accounts.LinkInvalid as exc:
        session.rollback()
        return page(request, "account/link_failed.html", 400, purpose="verify", message=str(exc))
    session.commit()
    return RedirectResponse("/login?notice=verified-sign-in", status_code=303)


@router.get("/reset")
def reset_form(request: Request):
    return page(request, "account/reset_request.html")


@router.post("/reset", dependencies=[Depends(csrf_protect)])
def reset_request(request: Request, email: str = Form(""), session: Session = Depends(db),
                  cfg: Settings = Depends(settings)):
    try:
        accounts.limit_form_use(session, "reset", client_address(request))
        address = accounts.normalise_email(email)
    except accounts.Throttled as exc:
        return _throttled(request, "account/reset_request.html", exc, email=email)
    except accounts.InvalidInput as exc:
        session.commit()
        return page(request, "account/reset_request.html", 400, email=email, error=str(exc))
    session.commit()
    response = _check_mail(request, address, "reset")
    # The mail is queued after the answer is sent: how long the answer takes cannot tell whether
    # the address has an account (both ways queue one mail anyway).
    response.background = BackgroundTask(_request_reset, request.app.state.sessions, cfg, address,
                                         browser_language(request))
    return response


def _request_reset(sessions, cfg: Settings, address: str, language: str | None) -> None:
    try:
        with sessions() as session, session.begin():
            accounts.request_password_reset(session, cfg, address, language)
    except Exception:  # the answer is sent already; the person can ask again
        log.exception("queuing the password reset mail failed")


@router.get("/reset/{token}")
def new_password_form(token: str, request: Request, session: Session = Depends(db)):
    try:
        contact = accounts.reset_token_owner(session, token)
    except accounts.LinkInvalid as exc:
        return page(request, "account/link_failed.html", 400, purpose="reset", message=str(exc))
    return page(request, "account/reset_password.html", token=token, email=contact.email)


@router.post("/reset/{token}", dependencies=[Depends(csrf_protect)])
def new_password(token: str, request: Request, password: str = Form(""), confirm: str = Form(""),
                 session: Session = Depends(db), cfg: Settings = Depends(settings)):
    try:
        contact = accounts.reset_token_owner(session, token)
        if password != confirm:
            raise accounts.InvalidInput(N_("The two passwords are not the same."))
        contact = accounts.reset_password(session, token, password)
    except accounts.LinkInvalid as exc:
        session.rollback()
        return page(request, "account/link_failed.html", 400, purpose="reset", message=str(exc))
    except accounts.InvalidInput as exc:
        session.rollback()
        return page(request, "account/reset_password.html", 400, token=token, email=contact.email, error=str(exc))
    return signed_in(request, session, cfg, contact, "/account?notice=password-reset")


def cfg_zone(request: Request) -> str:
    """The zone times are shown in for people who chose none."""
    return request.app.state.settings.sla.timezone


def _account_page(request: Request, session: Session, user: Contact, status: int = 200, error: str = ""):
    verified = user.email_verified_at is not None
    tickets = session.scalar(select(func.count(Ticket.id)).where(Ticket.requester_id == user.id)) if verified else 0
    return page(request, "account/account.html", status, account=user, verified=verified, tickets=tickets,
                has_password=bool(user.password_hash), error=error,
                notice=NOTICES.get(request.query_params.get("notice", ""), ""),
                languages=i18n.LANGUAGES, time_zones=i18n.TIME_ZONES, default_zone=cfg_zone(request))


@router.get("/account")
def account(request: Request, user: Contact = Depends(require_user), session: Session = Depends(db)):
    return _account_page(request, session, user)


@router.post("/account", dependencies=[Depends(csrf_protect)])
def update_account(request: Request, action: str = Form(""), notify_replies: str | None = Form(None),
                   notify_status: str | None = Form(None), current_password: str = Form(""),
                   new_password: str = Form(""), confirm_password: str = Form(""),
                   away: str = Form(""), language: str = Form(""), time_zone: str = Form(""),
                   user: Contact = Depends(require_user), session: Session = Depends(db),
                   cfg: Settings = Depends(settings)):
    if action == "preferences":
        accounts.set_preferences(user, notify_replies is not None, notify_status is not None)
        session.commit()
        return RedirectResponse("/account?notice=preferences", status_code=303)
    if action == "away" and user.role in ("agent", "admin"):
        user.away = away == "yes"  # no new tickets by automatic assignment while away
        session.commit()
        return RedirectResponse("/account?notice=preferences", status_code=303)
    if action == "language":
        try:
            accounts.set_language_and_zone(user, language, time_zone[:64])
        except accounts.InvalidInput as exc:
            session.rollback()
            return _account_page(request, session, user, 400, error=str(exc))
        session.commit()
        return RedirectResponse("/account?notice=language", status_code=303)
    if action == "verify":
        accounts.send_verification(session, cfg, user)
        session.commit()
        return RedirectResponse("/account?notice=verify-sent", status_code=303)
    if action != "password":
        raise HTTPException(400, "Unknown action.")
    try:
        if new_password != confirm_password:
            raise accounts.InvalidInput(N_("The two new passwords are not the same."))
        accounts.change_password(session, user, current_password, new_password,
                                 keep=getattr(request.state, "web_session", None))
    except accounts.Throttled as exc:
        response = _account_page(request, session, user, 429, error=str(exc))
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    except accounts.InvalidInput as exc:
        session.commit()  # a wrong current password counts
        return _account_page(request, session, user, 400, error=str(exc))
    if getattr(request.state, "via_bearer", False):
        session.commit()
        return RedirectResponse("/account?notice=password-changed", status_code=303)
    return signed_in(request, session, cfg, user, "/account?notice=password-changed")


def _callback_uri(cfg: Settings) -> str:
    return f"{cfg.base_url}{OIDC_PATH}/callback"


def _oidc_or_404(cfg: Settings) -> oidc.OidcConfig:
    conf = oidc.oidc_config(cfg)
    if conf is None:
        raise HTTPException(404, "Sign-in through an identity provider is not set up here.")
    return conf


@router.get(OIDC_PATH)
def oidc_start(request: Request, next: str = "", cfg: Settings = Depends(settings)):
    conf = _oidc_or_404(cfg)
    try:
        url, pending = oidc.begin_login(conf, _callback_uri(cfg), local_path(next))
    except oidc.OidcError as exc:
        log.warning("OIDC sign-in cannot start: %s", exc)
        return _login_page(request, cfg, 502, next_path=next,
                           error=N_("The sign-in provider cannot be reached right now. Please try again later."))
    response = RedirectResponse(url, status_code=303)
    response.set_cookie(OIDC_COOKIE, oidc.seal_pending(cfg.web.secret_key, pending), max_age=oidc.PENDING_SECONDS,
                        path=OIDC_PATH, httponly=True, samesite="lax", secure=_https(cfg))
    return response


@router.get(f"{OIDC_PATH}/callback")
def oidc_callback(request: Request, session: Session = Depends(db), cfg: Settings = Depends(settings)):
    conf = _oidc_or_404(cfg)
    pending = oidc.open_pending(cfg.web.secret_key, request.cookies.get(OIDC_COOKIE))
    if pending is None:
        return _login_page(request, cfg, 400, error=N_("This sign-in took too long or did not start here. "
                                                       "Please try again."))
    try:
        identity = oidc.complete_login(conf, pending, request.query_params, _callback_uri(cfg))
        contact = oidc.account_for_identity(session, conf, identity)
    except oidc.OidcRefused as exc:
        session.rollback()
        log.info("OIDC sign-in refused: %s", exc)
        return _login_page(request, cfg, 403, next_path=pending.next_path, error=str(exc))
    except oidc.OidcError as exc:
        session.rollback()
        log.warning("OIDC sign-in failed: %s", exc)
        return _login_page(request, cfg, 502, next_path=pending.next_path,
                           error=N_("Sign-in through the provider failed. Please try again, or use your password."))
    if not contact.active:
        session.rollback()
        return _login_page(request, cfg, 403, error=N_("This account is switched off. Please write to support."))
    response = signed_in(request, session, cfg, contact, landing(contact, pending.next_path))
    response.delete_cookie(OIDC_COOKIE, path=OIDC_PATH, secure=_https(cfg), httponly=True, samesite="lax")
    return response
