"""Request bodies are counted while they stream in: a body without Content-Length (chunked) is
cut off at the limit with 413, instead of being read and parsed in full first."""
from __future__ import annotations

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTooLarge(HTTPException):
    """Raised from `receive` once a body passes its limit; FastAPI re-raises HTTPExceptions as they are."""

    def __init__(self, limit: int) -> None:
        size = f"{limit // (1024 * 1024)} MB" if limit >= 1024 * 1024 else f"{limit // 1024} KiB"
        super().__init__(413, f"The request body is larger than {size}.")


class BodyLimit:
    """Pure ASGI middleware: at most `api_limit` bytes for /api/ routes, `form_limit` for the rest."""

    def __init__(self, app: ASGIApp, api_limit: int, form_limit: int) -> None:
        self.app, self.api_limit, self.form_limit = app, api_limit, form_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.api_limit if scope["path"].startswith("/api/") else self.form_limit
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)  # nothing more is read from the socket
            return message

        await self.app(scope, counted, send)
