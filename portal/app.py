"""FastAPI app factory: create_app(settings, sessions). Server-rendered pages plus JSON."""
from __future__ import annotations

import time
from http.cookies import SimpleCookie
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session, sessionmaker
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core import i18n
from core.ai.breaker import guarded
from core.ai.provider import make_offline, make_provider
from core.config import Settings
from core.metrics import HTTP_SECONDS
from core.mail.parse import SIGNATURE_TYPES
from portal.api import auth as auth_api, tickets as tickets_api, users as users_api
from portal.body_limit import BodyLimit
from portal.deps import ANON_COOKIE, new_anon_id
from portal.docs import add_docs
from portal.error_pages import error_page, invalid_input_page, wants_page
from portal.pages import account, admin, agent, customer, ops, public, trust
from portal.api import export as export_api
from portal.pages import mailboxes, reports, satisfaction, service_levels, skills
from portal.api import workspace as workspace_api
from portal.pages import workspace as workspace_pages

TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "web"
STATIC = Path(__file__).resolve().parent / "static"
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
                               "script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
}
# Whatever an attachment claims to be, a browser must not run it as a page of this site.
ATTACHMENT_CSP = "default-src 'none'; sandbox"
HSTS = "max-age=31536000; includeSubDomains"

# The method label of the request metric: anything else is "other", so invented methods add no series.
METRIC_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class PortalHeaders:
    """Pure ASGI middleware (Starlette's BaseHTTPMiddleware runs each response through an extra task
    and stream, per middleware, on every request): times the request for /metrics, gives an anonymous
    visitor the cookie that binds their forms' CSRF tokens, and adds the security headers."""

    def __init__(self, app: ASGIApp, https: bool) -> None:
        self.app, self.https = app, https

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        new_anon = None if HTTPConnection(scope).cookies.get(ANON_COOKIE) else new_anon_id()
        if new_anon:
            scope.setdefault("state", {})["anon_id"] = new_anon
        status = 500

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableHeaders(scope=message)
                if new_anon:
                    cookie = SimpleCookie()
                    cookie[ANON_COOKIE] = new_anon
                    cookie[ANON_COOKIE].update({"path": "/", "httponly": True, "samesite": "lax",
                                                "secure": self.https})
                    headers.append("set-cookie", cookie.output(header="").strip())
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
                if "/attachments/" in scope["path"] and status < 400:  # error pages keep the site's policy
                    headers["Content-Security-Policy"] = ATTACHMENT_CSP
                if self.https:
                    headers.setdefault("Strict-Transport-Security", HSTS)
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            method = scope["method"] if scope["method"] in METRIC_METHODS else "other"
            HTTP_SECONDS.labels(method, route, f"{status // 100}xx").observe(time.perf_counter() - started)


def create_app(settings: Settings, sessions: sessionmaker[Session]) -> FastAPI:
    app = FastAPI(title="Postdesk", version="0.1.0",
                  description="Email-first helpdesk. JSON API; the web pages are server-rendered.",
                  docs_url=None, redoc_url=None)
    add_docs(app)
    app.state.settings = settings
    app.state.sessions = sessions
    app.state.templates = Jinja2Templates(directory=str(TEMPLATES))
    i18n.install(app.state.templates.env, trimmed=True)
    app.state.templates.env.globals["SIGNATURE_TYPES"] = SIGNATURE_TYPES  # detached signatures show as "Signed"
    app.state.triage_provider = guarded(make_provider(settings.ai), settings.ai)
    app.state.offline_provider = make_offline(settings.ai)
    app.include_router(export_api.router)  # before tickets_api, whose /{ticket_id} would take export.csv
    for module in (public, ops, account, customer, agent, trust, admin, tickets_api, auth_api, users_api):
        app.include_router(module.router)
    for module in (service_levels, reports, satisfaction, skills, mailboxes):
        app.include_router(module.router)
    for module in (workspace_api, workspace_pages):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    https = settings.base_url.startswith("https://")

    app.add_middleware(BodyLimit, api_limit=tickets_api.MAX_JSON_BYTES, form_limit=public.MAX_FORM_BYTES)
    app.add_middleware(PortalHeaders, https=https)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        location = (exc.headers or {}).get("Location")
        if exc.status_code in (302, 303) and location:
            return RedirectResponse(location, status_code=exc.status_code)
        if not wants_page(request):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
        response = await error_page(request, exc.status_code, str(exc.detail))
        response.headers.update(exc.headers or {})
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid_input(request: Request, exc: RequestValidationError):
        if wants_page(request):
            return await invalid_input_page(request, exc)
        problems = [{"field": ".".join(str(p) for p in e.get("loc", ())[1:]), "message": e.get("msg", "")}
                    for e in exc.errors()]
        return JSONResponse({"detail": "invalid input", "errors": problems}, status_code=422)

    return app
