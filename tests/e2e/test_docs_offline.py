"""The API documentation works without internet: every asset comes from this site, under its CSP."""
from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_swagger_ui_and_redoc_render_with_the_internet_cut_off(page, server):
    elsewhere: list[str] = []

    def only_this_site(route) -> None:
        if urlsplit(route.request.url).hostname in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    page.context.route("**/*", only_this_site)
    page.goto("/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Postdesk")
    expect(page.locator(".opblock-summary-path").filter(has_text="/api/tickets").first).to_be_visible()
    page.goto("/redoc")
    expect(page.get_by_role("heading", name="Postdesk").first).to_be_visible(timeout=20_000)
    assert [url for url in elsewhere if not url.startswith("https://cdn.redoc.ly/")] == []  # its footer logo only
