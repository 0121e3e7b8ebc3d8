"""Accounts as the outside probe attacked them: lock-out of the owner, reset timing by unequal work."""
from __future__ import annotations

import email
import email.policy

from fastapi.testclient import TestClient
from sqlalchemy import select

from core.accounts import add_user
from core.models import Outbox
from core.security.devices import DEVICE_COOKIE
from portal.app import create_app
from tests.integration.test_accounts import CSRF_RE, HTML, PASSWORD

OWNER = "olga@example.org"


def _browser(desk, address: str) -> TestClient:
    return TestClient(create_app(desk.settings, desk.sessions), client=(address, 40000))


def _sign_in(client: TestClient, password: str):
    token = CSRF_RE.search(client.get("/login", headers=HTML).text).group(1)
    return client.post("/login", data={"csrf_token": token, "email": OWNER, "password": password},
                       headers=HTML, follow_redirects=False)


def test_guessing_from_elsewhere_does_not_lock_the_owner_out_of_a_trusted_browser(desk):
    with desk.sessions() as s, s.begin():
        add_user(s, OWNER, "customer", password=PASSWORD)
    owner, attacker, new_browser = (_browser(desk, a) for a in ("192.0.2.10", "198.51.100.66", "192.0.2.11"))
    assert _sign_in(owner, PASSWORD).status_code == 303
    assert owner.cookies.get(DEVICE_COOKIE)
    owner.post("/logout", data={"csrf_token": CSRF_RE.search(owner.get("/", headers=HTML).text).group(1)},
               headers=HTML)

    guesses = [_sign_in(attacker, f"guess-{n}-wrong").status_code for n in range(7)]
    assert guesses[:5] == [401] * 5 and guesses[5:] == [429, 429]
    assert _sign_in(new_browser, PASSWORD).status_code == 429   # an unknown browser waits, as before
    assert _sign_in(owner, PASSWORD).status_code == 303          # the owner's browser is trusted


def test_a_forged_device_cookie_is_not_trusted(desk):
    with desk.sessions() as s, s.begin():
        add_user(s, OWNER, "customer", password=PASSWORD)
    attacker = _browser(desk, "198.51.100.66")
    attacker.cookies.set(DEVICE_COOKIE, "made-up.0123456789abcdef0123456789abcdef", path="/login")
    guesses = [_sign_in(attacker, f"guess-{n}-wrong").status_code for n in range(6)]
    assert guesses[-1] == 429


def _mails(desk) -> list:
    with desk.sessions() as s:
        return [(r.purpose, r.rcpt_to, email.message_from_bytes(r.raw, policy=email.policy.default))
                for r in s.scalars(select(Outbox).order_by(Outbox.id))]


def test_reset_does_the_same_work_for_an_unknown_address_and_mails_it_a_note(desk):
    with desk.sessions() as s, s.begin():
        add_user(s, OWNER, "customer", password=PASSWORD)
    client = _browser(desk, "192.0.2.20")
    answers = []
    for address in (OWNER, "nobody@example.org"):
        token = CSRF_RE.search(client.get("/reset", headers=HTML).text).group(1)
        answers.append(client.post("/reset", data={"csrf_token": token, "email": address}, headers=HTML))
    assert [a.status_code for a in answers] == [200, 200]
    assert answers[0].text.replace(OWNER, "X") == answers[1].text.replace("nobody@example.org", "X")
    sent = _mails(desk)
    assert [(purpose, to) for purpose, to, _ in sent] == [("reset", OWNER), ("no-account", "nobody@example.org")]
    note = sent[1][2].get_body(("plain",)).get_content()
    assert "no active account" in note and "/register" in note and "/reset/" not in note


def test_the_reset_answer_is_sent_before_any_account_work(desk):
    """Whatever the work costs, the answer's timing cannot depend on it: it is complete before it starts."""
    import asyncio
    from urllib.parse import urlencode

    from portal.deps import ANON_COOKIE

    with desk.sessions() as s, s.begin():
        add_user(s, OWNER, "customer", password=PASSWORD)
    browser = _browser(desk, "192.0.2.30")
    token = CSRF_RE.search(browser.get("/reset", headers=HTML).text).group(1)
    body = urlencode({"csrf_token": token, "email": OWNER}).encode()
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/reset", "raw_path": b"/reset", "query_string": b"", "root_path": "",
             "headers": [(b"host", b"testserver"), (b"content-type", b"application/x-www-form-urlencoded"),
                         (b"accept", b"text/html"), (b"content-length", str(len(body)).encode()),
                         (b"cookie", f"{ANON_COOKIE}={browser.cookies.get(ANON_COOKIE)}".encode())],
             "client": ("192.0.2.30", 40000), "server": ("testserver", 80)}
    mails_when_answered = []

    async def receive():
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message):
        if message["type"] == "http.response.body" and not message.get("more_body"):
            mails_when_answered.append(len(_mails(desk)))

    asyncio.run(browser.app(scope, receive, send))
    assert mails_when_answered == [0] and [p for p, _, _ in _mails(desk)] == ["reset"]
