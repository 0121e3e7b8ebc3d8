"""Two `postdesk serve --only web` processes on one database behave as one, as behind a load
balancer that sends each request anywhere: a session begun on one is valid on the other, a form
rendered by one is accepted by the other, failed sign-ins are counted across both, and what is
written through one is read through the other. Sessions, CSRF secrets and throttling live in the
database; the signing key is the configured one (or, on one host, the shared var/secret_key)."""
from __future__ import annotations

import re

import httpx
import pytest

from core.accounts import add_user
from core.models import Ticket
from tests.integration.test_receive_mail import mail, receive
from tests.support.server import PostdeskProcess

PASSWORD = "correct horse battery staple"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
HTML = {"accept": "text/html"}


class Browser:
    """One cookie jar talking to whichever process a request is sent to (cookies do not depend on
    the port, so both processes on 127.0.0.1 receive the same ones, as behind a load balancer)."""

    def __init__(self, *servers: PostdeskProcess) -> None:
        self.bases = [s.base_url for s in servers]
        self.client = httpx.Client(headers=HTML, timeout=30)

    def get(self, via: int, path: str) -> httpx.Response:
        return self.client.get(self.bases[via] + path)

    def post(self, via: int, path: str, data: dict) -> httpx.Response:
        return self.client.post(self.bases[via] + path, data=data)

    def form_token(self, via: int, path: str) -> str:
        page = self.get(via, path)
        assert page.status_code == 200, page.text
        return CSRF_RE.search(page.text).group(1)

    def close(self) -> None:
        self.client.close()


def _people_and_a_ticket(desk) -> int:
    with desk.sessions() as s, s.begin():
        add_user(s, "admin@example.test", "admin", password=PASSWORD)
        add_user(s, "agent@example.test", "agent", password=PASSWORD)
    return receive(desk, mail("Printer on fire", "It smokes.")).ticket_id


@pytest.fixture
def two_web_processes(desk, tmp_path):
    env = {"POSTDESK_DATABASE__URL": desk.settings.database.url,
           "POSTDESK_WEB__SECRET_KEY": "one-secret-for-every-web-process",
           "POSTDESK_OUTBOUND__OUTBOX_DIR": str(tmp_path / "outbox"), "POSTDESK_AI__PROVIDER": "offline"}
    with PostdeskProcess(tmp_path / "a", {**env, "POSTDESK_PATHS__VAR_DIR": str(tmp_path / "a" / "var")},
                         only="web") as a, \
            PostdeskProcess(tmp_path / "b", {**env, "POSTDESK_PATHS__VAR_DIR": str(tmp_path / "b" / "var")},
                            only="web") as b:
        yield a, b


def test_session_form_throttle_and_writes_cross_between_two_web_processes(desk, two_web_processes):
    ticket_id = _people_and_a_ticket(desk)
    browser = Browser(*two_web_processes)
    A, B = 0, 1
    try:
        # The sign-in form from A, posted to B; the session cookie B sets opens pages on A.
        token = browser.form_token(A, "/login")
        signed_in = browser.post(B, "/login", {"email": "agent@example.test", "password": PASSWORD,
                                               "csrf_token": token, "next": ""})
        assert signed_in.status_code == 303 and signed_in.headers["location"] == "/agent/queue"
        queue = browser.get(A, "/agent/queue")
        assert queue.status_code == 200 and f'data-ticket="{ticket_id}"' in queue.text

        # A signed-in form rendered by A is accepted by B; the reply stored through B shows on A.
        token = browser.form_token(A, f"/agent/tickets/{ticket_id}")
        replied = browser.post(B, f"/agent/tickets/{ticket_id}/reply",
                               {"text": "Unplug it and step back.", "csrf_token": token})
        assert replied.status_code == 303, replied.text
        assert "Unplug it and step back." in browser.get(A, f"/agent/tickets/{ticket_id}").text
        with desk.sessions() as s:
            assert s.get(Ticket, ticket_id).status == "in_progress"

        # Signing out on B ends the session on A too, even for a copy of the cookie kept elsewhere.
        session_cookie = browser.client.cookies["postdesk_session"]
        token = browser.form_token(A, "/agent/queue")
        assert browser.post(B, "/logout", {"csrf_token": token}).status_code == 303
        with httpx.Client(headers={**HTML, "cookie": f"postdesk_session={session_cookie}"}) as kept:
            stale = kept.get(browser.bases[A] + "/agent/queue")
        assert stale.status_code == 303 and stale.headers["location"].startswith("/login")
    finally:
        browser.close()

    # Failed sign-ins count in the database: 3 on A and 2 on B use up the account's 5.
    guesser = Browser(*two_web_processes)
    try:
        token = guesser.form_token(A, "/login")
        for via in (A, B, A, B, A):
            wrong = guesser.post(via, "/login", {"email": "admin@example.test", "password": "not it",
                                                 "csrf_token": token})
            assert wrong.status_code == 401
        for via in (B, A):
            throttled = guesser.post(via, "/login", {"email": "admin@example.test", "password": PASSWORD,
                                                     "csrf_token": token})
            assert throttled.status_code == 429 and int(throttled.headers["retry-after"]) > 0
    finally:
        guesser.close()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_without_a_configured_key_processes_sharing_var_share_the_generated_one(desk, tmp_path):
    """On one host the default works too: the first process writes var/secret_key, the next reads it."""
    _people_and_a_ticket(desk)
    env = {"POSTDESK_DATABASE__URL": desk.settings.database.url, "POSTDESK_PATHS__VAR_DIR": str(tmp_path / "var"),
           "POSTDESK_OUTBOUND__OUTBOX_DIR": str(tmp_path / "outbox"), "POSTDESK_WEB__SECRET_KEY": ""}
    with PostdeskProcess(tmp_path / "a", env, only="web") as a, PostdeskProcess(tmp_path / "b", env, only="web") as b:
        browser = Browser(a, b)
        try:
            token = browser.form_token(0, "/login")
            signed_in = browser.post(1, "/login", {"email": "agent@example.test", "password": PASSWORD,
                                                   "csrf_token": token})
            assert signed_in.status_code == 303
        finally:
            browser.close()
    assert (tmp_path / "var" / "secret_key").is_file()
