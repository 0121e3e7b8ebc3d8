"""Errors answered to a browser as a page of the site (with its navigation), to API clients as JSON."""
from __future__ import annotations

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError

from portal.deps import current_user
from portal.render import page

NOT_FOUND = "There is no page at this address."


def wants_page(request: Request) -> bool:
    """A browser asking for a page (not the JSON API, not a script's fetch)."""
    return not request.url.path.startswith("/api/") and "text/html" in request.headers.get("accept", "")


def _signed_in(request: Request) -> None:
    """Who is signed in, for the navigation: routes that never ran (404) did not look it up."""
    if hasattr(request.state, "user"):
        return
    with request.app.state.sessions() as session:
        try:
            current_user(request, session, request.app.state.settings)
        finally:
            session.commit()


async def error_page(request: Request, status: int, detail: str):
    """The site's error page for `status` (the signed-in person's navigation included)."""
    try:
        await run_in_threadpool(_signed_in, request)
    except Exception:  # the error page must render even when the database does not answer
        request.state.user = None
    if status == 404 and detail == "Not Found":
        detail = NOT_FOUND
    return page(request, "error.html", status, status=status, detail=detail)


async def invalid_input_page(request: Request, exc: RequestValidationError):
    """A malformed address (/agent/tickets/abc) names no page: 404; a malformed form: 422."""
    in_path = any(e.get("loc", ("",))[0] == "path" for e in exc.errors())
    if in_path:
        return await error_page(request, 404, NOT_FOUND)
    return await error_page(request, 422, "Some of what was sent is not valid. Go back, check it and try again.")
