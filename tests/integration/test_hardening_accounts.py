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
    note = sent[1][2].get_content()
    assert "no active account" in note and "/register" in note and "/reset/" not in note
