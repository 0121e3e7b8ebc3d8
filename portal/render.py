"""Rendering server-side pages with what every page needs: the signed-in person and a CSRF token."""
from __future__ import annotations

from typing import Any

from fastapi import Request

from portal.deps import csrf_token_for


def page(request: Request, template: str, status_code: int = 200, **context: Any):
    """A TemplateResponse for templates/web/<template> with `user` and `csrf_token` in its context."""
    context.setdefault("user", getattr(request.state, "user", None))
    context["csrf_token"] = csrf_token_for(request)
    return request.app.state.templates.TemplateResponse(request, template, context, status_code=status_code)
