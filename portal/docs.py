"""/docs (Swagger UI) and /redoc with their scripts and styles served from this site: the assets
come from the fastapi-offline package, so the pages work without internet and under our CSP
(script-src 'self'), which admits the pages' one inline start-up script by its hash only."""
from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS_URL = "/docs/assets"
ASSETS = Path(fastapi_offline.__file__).resolve().parent / "static"
_INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.S)


# ReDoc's "powered by" footer shows its logo from its CDN: decorative, simply missing when offline.
REDOC_LOGO_HOST = "https://cdn.redoc.ly"


def _with_script_hashes(page: HTMLResponse, images: str = "") -> HTMLResponse:
    """Allow exactly the page's own inline scripts (by hash); everything else stays 'self' only."""
    hashes = " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(s).digest()).decode()}'"
                      for s in _INLINE_SCRIPT.findall(page.body))
    page.headers["Content-Security-Policy"] = (
        f"default-src 'self'; img-src 'self' data: {images}; style-src 'self' 'unsafe-inline'; script-src 'self' {hashes}; "
        "worker-src 'self' blob:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
    return page


def add_docs(app: FastAPI) -> None:
    """Routes for /docs, /docs/oauth2-redirect, /redoc and their assets (create the app with docs_url=None)."""
    app.mount(ASSETS_URL, StaticFiles(directory=str(ASSETS)), name="docs-assets")
    title = app.title

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return _with_script_hashes(get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json", title=f"{title} - Swagger UI",
            oauth2_redirect_url="/docs/oauth2-redirect", swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_URL}/swagger-ui.css", swagger_favicon_url=f"{ASSETS_URL}/favicon.png"))

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return _with_script_hashes(get_swagger_ui_oauth2_redirect_html())

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return _with_script_hashes(get_redoc_html(
            openapi_url=app.openapi_url or "/openapi.json", title=f"{title} - ReDoc",
            redoc_js_url=f"{ASSETS_URL}/redoc.standalone.js", redoc_favicon_url=f"{ASSETS_URL}/favicon.png",
            with_google_fonts=False), images=REDOC_LOGO_HOST)
