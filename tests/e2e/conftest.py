"""Browser fixtures: Debian's Chromium driven by Playwright, `postdesk serve` as users start it
(on SQLite and PostgreSQL through `db_url`), its outbound mail caught by a real SMTP sink.

Screenshots of each flow's pages go to one directory under pytest's base temp (or to
$POSTDESK_E2E_SCREENSHOTS); the path is printed in the terminal summary.
"""
from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.support.server import PostdeskProcess

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
_screenshot_dirs: list[Path] = []
expect.set_options(timeout=10_000)  # a loaded CI machine; the flows pass in well under that


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """One Chromium for the e2e package; closed before other packages' tests run."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def secret_key() -> str:
    return "e2e-secret-" + uuid.uuid4().hex


@pytest.fixture
def server(db_url, tmp_path, sink, secret_key) -> Iterator[PostdeskProcess]:
    """`postdesk serve` on free ports; links in its mails point at its own web port."""
    env = {"POSTDESK_DATABASE__URL": db_url, "POSTDESK_OUTBOUND__HOST": "127.0.0.1",
           "POSTDESK_OUTBOUND__PORT": str(sink.port), "POSTDESK_WEB__SECRET_KEY": secret_key,
           "POSTDESK_AI__PROVIDER": "offline"}
    proc = PostdeskProcess(tmp_path / "run", env)
    proc.env["POSTDESK_WEB__BASE_URL"] = proc.base_url
    with proc:
        yield proc


@pytest.fixture
def page(browser, server) -> Iterator[Page]:
    """A fresh browser context (no cookies) per test. Fails the test on what a person would not see
    but still suffers: an uncaught script error, a CSP refusal, a server error, a missing asset."""
    context = browser.new_context(base_url=server.base_url, locale="en-GB")
    context.set_default_timeout(10_000)
    tab = context.new_page()
    problems: list[str] = []

    def on_console(msg) -> None:
        if msg.type == "error" and "Content Security Policy" in msg.text:
            problems.append(f"{tab.url}: {msg.text}")

    def on_response(response) -> None:
        kind = response.request.resource_type
        if response.status >= 500 or (response.status >= 400 and kind in ("stylesheet", "script", "image", "font")):
            problems.append(f"{response.request.method} {response.url} ({kind}) answered {response.status}")

    tab.on("pageerror", lambda exc: problems.append(f"{tab.url}: {exc}"))
    tab.on("console", on_console)
    tab.on("response", on_response)
    yield tab
    context.close()
    assert not problems, "problems on the pages:\n" + "\n".join(problems)


@pytest.fixture(scope="session")
def screenshot_dir(tmp_path_factory) -> Path:
    """POSTDESK_E2E_SCREENSHOTS when set (pytest keeps only its last three base temps), else a temp dir."""
    wanted = os.environ.get("POSTDESK_E2E_SCREENSHOTS")
    if wanted:
        path = Path(wanted).resolve()
        path.mkdir(parents=True, exist_ok=True)
    else:
        path = tmp_path_factory.mktemp("e2e-screenshots")
    _screenshot_dirs.append(path)
    return path


@pytest.fixture
def screenshot(request, screenshot_dir) -> Callable[[Page, str], Path]:
    """Save a full-page screenshot named after the test (and database) and a step."""
    def take(tab: Page, step: str) -> Path:
        name = re.sub(r"[^A-Za-z0-9_.]+", "-", f"{request.node.name}-{step}").strip("-")
        path = screenshot_dir / f"{name}.png"
        tab.screenshot(path=str(path), full_page=True)
        return path
    return take


def pytest_terminal_summary(terminalreporter) -> None:
    for path in _screenshot_dirs:
        if any(path.glob("*.png")):
            terminalreporter.write_line(f"e2e screenshots: {path}")
