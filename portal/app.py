"""FastAPI app factory: create_app(settings, sessions). Server-rendered pages plus JSON."""
from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session, sessionmaker
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.config import Settings
from core.ai.provider import make_provider
from portal.api import tickets as tickets_api
from portal.pages import public

TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "web"


def create_app(settings: Settings, sessions: sessionmaker[Session]) -> FastAPI:
    app = FastAPI(title="Postdesk", version="0.1.0")
    app.state.settings = settings
    app.state.sessions = sessions
    app.state.templates = Jinja2Templates(directory=str(TEMPLATES))
    app.state.triage_provider = make_provider(settings.ai)
    app.include_router(public.router)
    app.include_router(tickets_api.router)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        if request.url.path.startswith("/api/") or "text/html" not in request.headers.get("accept", ""):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)
        return app.state.templates.TemplateResponse(
            request, "error.html", {"status": exc.status_code, "detail": exc.detail},
            status_code=exc.status_code)

    return app


