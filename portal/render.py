"""Rendering server-side pages with what every page needs: the signed-in person, a CSRF token,
and the language and time zone the page is read in."""
from __future__ import annotations

from typing import Any

from fastapi import Request

from core import i18n
from portal.deps import csrf_token_for


def browser_language(request: Request) -> str | None:
    """The shipped language the browser's Accept-Language prefers, or None."""
    return i18n.best_language(request.headers.get("accept-language"))


def page_language(request: Request, user: Any) -> str:
    """The signed-in person's language, else the browser's best shipped match, else English."""
    return getattr(user, "language", None) or browser_language(request) or i18n.DEFAULT_LANGUAGE


def page(request: Request, template: str, status_code: int = 200, **context: Any):
    """A TemplateResponse for templates/web/<template> with `user`, `csrf_token`, `lang` and `tz`
    in its context."""
    user = context.setdefault("user", getattr(request.state, "user", None))
    context["csrf_token"] = csrf_token_for(request)
    context.setdefault("lang", page_language(request, user))
    context.setdefault("tz", i18n.time_zone_of(user, request.app.state.settings.sla.timezone))
    return request.app.state.templates.TemplateResponse(request, template, context, status_code=status_code)
