"""Accounts on both databases: register → mailed link → verified and signed in → signed out (over
a real socket, as users start Postdesk), then the finer cases through the app itself: one answer
for wrong password and unknown account, throttling and its recovery, CSRF, session rotation,
reset ending every session, mail tickets claimed by the verified account, the honeypot, the JSON
API with bearer tokens, and the first admin."""
from __future__ import annotations

import email
import email.policy
import re
import statistics
import time
from datetime import timedelta
from email.message import EmailMessage

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, func, select, update
from sqlalchemy.orm import Session

from core import accounts
from core.accounts import add_user, ensure_first_admin, verify_password
from core.models import AccountToken, Contact, Outbox, Throttle, Ticket, WebSession, utcnow
from core.sessions import session_for
from portal.app import create_app
from portal.deps import session_cookie_name
from portal.pages.account import local_path
from tests.conftest import make_settings
from tests.integration.test_receive_mail import mail, receive
from tests.support.server import PostdeskProcess

HTML = {"accept": "text/html"}
PASSWORD = "tulip-Harbour-93"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


# ---- helpers -----------------------------------------------------------------------------------

@pytest.fixture
def app(desk):
    return create_app(desk.settings, desk.sessions)


def csrf_of(client, path: str = "/login") -> str:
    page = client.get(path, headers=HTML)
    assert page.status_code == 200, page.text
    return CSRF_RE.search(page.text).group(1)


def submit(client, action: str, data: dict, page: str | None = None):
    """POST a form as a browser does: the CSRF token from the page that shows the form."""
    return client.post(action, data={**data, "csrf_token": csrf_of(client, page or action)}, headers=HTML,
                       follow_redirects=False)


def sign_in(client, address: str, password: str = PASSWORD, next_path: str = ""):
    return submit(client, "/login", {"email": address, "password": password, "next": next_path})


def mails(sessions, purpose: str | None = None) -> list[EmailMessage]:
    with sessions() as s:
        stmt = select(Outbox).order_by(Outbox.id)
        rows = s.scalars(stmt.where(Outbox.purpose == purpose) if purpose else stmt).all()
    return [email.message_from_bytes(r.raw, policy=email.policy.default) for r in rows]


def link_path(message: EmailMessage, kind: str) -> str:
    found = re.search(rf"https?://[^/\s]+(/{kind}/[A-Za-z0-9_-]+)", message.get_body(("plain",)).get_content())
    assert found, message.get_content()
    return found.group(1)


def make_account(desk, address: str, password: str = PASSWORD, verified: bool = True, role: str = "customer") -> int:
    with desk.sessions() as s, s.begin():
        person = add_user(s, address, role, password=password)
        person.email_verified_at = utcnow() if verified else None
        s.flush()
        return person.id


def cookie_of(client, desk) -> str | None:
    return client.cookies.get(session_cookie_name(desk.settings))


def session_alive(desk, token: str, kind: str = "cookie") -> bool:
    with desk.sessions() as s:
        return session_for(s, token, kind=kind) is not None


def age_throttle(desk, prefix: str, minutes: int = 16) -> None:
    """Move the throttle windows back in time instead of waiting for them to pass."""
    with desk.sessions() as s, s.begin():
        s.execute(update(Throttle).where(Throttle.key.startswith(prefix))
                  .values(window_start=utcnow() - timedelta(minutes=minutes)))


def same_page(a: str, b: str, *variable: str) -> bool:
    """Equal once CSRF tokens and the given values (e.g. the typed address) are masked."""
    def mask(text: str) -> str:
        text = CSRF_RE.sub('name="csrf_token" value=""', text)
        for value in variable:
            text = text.replace(value, "…")
        return text
    return mask(a) == mask(b)


# ---- the whole journey over a real socket --------------------------------------------------------

def test_register_verify_sign_in_and_out_over_http(db_url, tmp_path):
    engine = create_engine(db_url)
    with PostdeskProcess(tmp_path / "run", {"POSTDESK_DATABASE__URL": db_url}, only="web") as server, \
            httpx.Client(base_url=server.base_url, headers=HTML, timeout=30) as browser:
        token = CSRF_RE.search(browser.get("/register").text).group(1)
        answer = browser.post("/register", data={"csrf_token": token, "email": "Ann@Example.org",
                                                 "password": PASSWORD, "name": "Ann"})
        assert answer.status_code == 200 and "Check your mail" in answer.text and "ann@example.org" in answer.text

        with Session(engine) as s:
            ann = s.scalar(select(Contact).where(Contact.email == "ann@example.org"))
            assert ann.email_verified_at is None and ann.password_hash.startswith("$argon2id$")
            row = s.scalar(select(Outbox).where(Outbox.purpose == "verify"))
            assert row.ticket_id is None and row.rcpt_to == "ann@example.org"
            stored = s.scalars(select(AccountToken.token_hash)).all()
        verify = email.message_from_bytes(row.raw, policy=email.policy.default)
        assert verify["Subject"] == "Confirm your email address" and verify["Auto-Submitted"] == "auto-generated"
        path = link_path(verify, "verify")
        assert path.rsplit("/", 1)[1] not in stored  # only the hash is kept

        confirm = browser.get(path)  # opening the link only shows the button: no sign-in by GET
        assert confirm.status_code == 200 and "Confirm my address" in confirm.text
        assert "postdesk_session" not in browser.cookies
        confirmed = browser.post(path, data={"csrf_token": CSRF_RE.search(confirm.text).group(1)})
        assert confirmed.status_code == 303 and confirmed.headers["location"] == "/login?notice=verified-sign-in"
        assert "postdesk_session" not in browser.cookies
        login = browser.get("/login?notice=verified-sign-in")
        assert "Your address is confirmed. Please sign in." in login.text
        browser.post("/login", data={"csrf_token": CSRF_RE.search(login.text).group(1),
                                     "email": "ann@example.org", "password": PASSWORD, "next": "/account"})
        page = browser.get("/account")
        assert page.status_code == 200 and "ann@example.org" in page.text
        cookie = browser.cookies.get("postdesk_session")
        assert cookie
        with Session(engine) as s:
            assert s.get(Contact, ann.id).email_verified_at is not None
            assert s.scalar(select(func.count(Outbox.id)).where(Outbox.purpose == "welcome")) == 1

        token = CSRF_RE.search(page.text).group(1)
        out = browser.post("/logout", data={"csrf_token": token})
        assert out.status_code == 303 and out.headers["location"] == "/"
        assert "postdesk_session" not in browser.cookies
        with httpx.Client(base_url=server.base_url, headers=HTML, cookies={"postdesk_session": cookie}) as stale:
            again = stale.get("/account")
        assert again.status_code == 303 and again.headers["location"] == "/login?next=/account"
    engine.dispose()


# ---- signing in ----------------------------------------------------------------------------------

def test_wrong_password_and_unknown_account_get_the_same_answer(app, desk):
    make_account(desk, "ann@example.org")
    client = TestClient(app)
    sign_in(client, "warm-up@example.org", "whatever-it-is")  # the dummy hash is made once

    def attempt(address: str):
        started = time.perf_counter()
        answer = sign_in(client, address, "not-the-password")
        return answer, time.perf_counter() - started

    known, unknown = [], []
    for _ in range(5):  # interleaved, so a burst of load elsewhere on the machine hits both sides
        known.append(attempt("ann@example.org"))
        unknown.append(attempt("nobody@example.org"))
    assert {a.status_code for a, _ in known + unknown} == {401}
    assert "Wrong email address or password." in known[0][0].text
    assert same_page(known[0][0].text, unknown[0][0].text, "ann@example.org", "nobody@example.org")
    ratio = statistics.median(t for _, t in unknown) / statistics.median(t for _, t in known)
    assert 0.33 < ratio < 3, ratio  # both verify an argon2 hash
    assert cookie_of(client, desk) is None


def test_sign_in_sets_a_safe_cookie_and_rotates_the_session(app, desk):
    make_account(desk, "ann@example.org")
    client = TestClient(app)
    first = sign_in(client, "ann@example.org", next_path="/my/tickets?page=2")
    assert first.status_code == 303 and first.headers["location"] == "/my/tickets?page=2"
    set_cookie = first.headers["set-cookie"]
    assert set_cookie.startswith("postdesk_session=")
    for attribute in ("HttpOnly", "Path=/", "SameSite=lax"):
        assert attribute in set_cookie
    assert "Secure" not in set_cookie  # plain http in this test
    old = cookie_of(client, desk)

    second = sign_in(client, "ann@example.org")  # signing in again, e.g. after a fixation attempt
    assert second.status_code == 303 and second.headers["location"] == "/my/tickets"  # a customer's start page
    new = cookie_of(client, desk)
    assert new and new != old
    assert not session_alive(desk, old) and session_alive(desk, new)
    stale = TestClient(app, cookies={"postdesk_session": old})
    assert stale.get("/account", headers=HTML, follow_redirects=False).status_code == 303


def test_cookie_is_secure_and_host_bound_over_https(desk, db_url, tmp_path):
    settings = make_settings(db_url, tmp_path, web={"base_url": "https://desk.example.test",
                                                    "secret_key": desk.settings.web.secret_key})
    make_account(desk, "ann@example.org")
    client = TestClient(create_app(settings, desk.sessions), base_url="https://testserver")
    answer = sign_in(client, "ann@example.org")
    assert answer.status_code == 303
    set_cookie = answer.headers["set-cookie"]
    assert set_cookie.startswith("__Host-postdesk=") and "Secure" in set_cookie and "Path=/" in set_cookie
    assert "Domain" not in set_cookie


def test_next_parameter_stays_on_this_site(app, desk):
    assert local_path("/my/tickets?x=1#top") == "/my/tickets?x=1#top"
    for outside in ("https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)",
                    "evil.example", "/\tx", ""):
        assert local_path(outside) == "", outside
    make_account(desk, "ann@example.org")
    answer = sign_in(TestClient(app), "ann@example.org", next_path="//evil.example/phish")
    assert answer.headers["location"] == "/my/tickets"
    make_account(desk, "agent@example.test", role="agent")
    assert sign_in(TestClient(app), "agent@example.test").headers["location"] == "/agent/queue"


def test_throttling_answers_429_and_recovers_after_the_window(app, desk):
    make_account(desk, "ann@example.org")
    client = TestClient(app)
    for _ in range(accounts.ACCOUNT_LIMIT):
        assert sign_in(client, "ann@example.org", "guess-guess-guess").status_code == 401
    blocked = sign_in(client, "ann@example.org")  # even the right password waits
    assert blocked.status_code == 429 and "Too many failed sign-ins" in blocked.text
    assert 0 < int(blocked.headers["retry-after"]) <= 15 * 60
    api = client.post("/api/auth/login", json={"email": "ann@example.org", "password": PASSWORD})
    assert api.status_code == 429 and "Too many" in api.json()["detail"] and api.headers["retry-after"]
    assert sign_in(client, "bob@example.org", "unknown-too").status_code == 401  # other accounts are not blocked

    age_throttle(desk, "login:account:")
    assert sign_in(client, "ann@example.org").status_code == 303


def test_many_failures_from_one_address_are_throttled_per_client(app, desk):
    make_account(desk, "ann@example.org")
    with desk.sessions() as s, s.begin():  # 19 failures for other addresses from this client already
        s.add(Throttle(key="login:ip:testclient", window_start=utcnow(), count=accounts.IP_LIMIT - 1))
    client = TestClient(app)
    assert sign_in(client, "guess@example.org", "nope-nope-nope").status_code == 401
    blocked = sign_in(client, "ann@example.org")
    assert blocked.status_code == 429 and "Too many failed sign-ins" in blocked.text
    age_throttle(desk, "login:ip:")
    assert sign_in(client, "ann@example.org").status_code == 303


def test_inactive_account_cannot_sign_in(app, desk):
    ann = make_account(desk, "ann@example.org")
    with desk.sessions() as s, s.begin():
        s.get(Contact, ann).active = False
    client = TestClient(app)
    assert sign_in(client, "ann@example.org", "wrong-password-1").status_code == 401
    refused = sign_in(client, "ann@example.org")
    assert refused.status_code == 403 and "switched off" in refused.text and cookie_of(client, desk) is None
    api = client.post("/api/auth/login", json={"email": "ann@example.org", "password": PASSWORD})
    assert api.status_code == 403


# ---- CSRF ----------------------------------------------------------------------------------------

def test_post_without_or_with_a_foreign_csrf_token_is_refused(app, desk):
    make_account(desk, "ann@example.org")
    client = TestClient(app)
    assert sign_in(client, "ann@example.org").status_code == 303
    stranger = TestClient(app)
    foreign = csrf_of(stranger, "/login")
    forms = {"/login": {"email": "ann@example.org", "password": PASSWORD},
             "/register": {"email": "x@example.org", "password": PASSWORD},
             "/reset": {"email": "ann@example.org"}, "/verify": {"email": "ann@example.org"},
             "/logout": {}, "/account": {"action": "preferences"}}
    for path, data in forms.items():
        for token in (None, foreign):
            form = data if token is None else {**data, "csrf_token": token}
            answer = client.post(path, data=form, headers=HTML, follow_redirects=False)
            assert answer.status_code == 403, (path, token)
            assert "did not come from this site" in answer.text
    assert session_alive(desk, cookie_of(client, desk))  # the refused logout did nothing
    with desk.sessions() as s:
        assert s.scalar(select(func.count(Outbox.id))) == 0


# ---- registration --------------------------------------------------------------------------------

def test_earlier_mail_tickets_become_the_account_s_once_verified(app, desk):
    first = receive(desk, mail("Printer on fire", sender="ann@example.org"))
    second = receive(desk, mail("Still burning", sender="ann@example.org", msgid="<other@example.org>"))
    with desk.sessions() as s:
        intake = s.scalar(select(Contact).where(Contact.email == "ann@example.org"))
    client = TestClient(app)
    answer = submit(client, "/register", {"email": "ANN@example.org", "password": PASSWORD, "name": "Ann"})
    assert answer.status_code == 200 and "Check your mail" in answer.text
    with desk.sessions() as s:
        assert s.scalar(select(func.count(Contact.id)).where(Contact.email == "ann@example.org")) == 1
        assert s.get(Contact, intake.id).password_hash  # the same row, now with a password

    # Decision: a customer signs in only after confirming the address; trying sends a fresh link.
    refused = sign_in(client, "ann@example.org")
    assert refused.status_code == 403 and "confirm your email address first" in refused.text
    assert cookie_of(client, desk) is None and len(mails(desk.sessions, "verify")) == 2

    link = link_path(mails(desk.sessions, "verify")[-1], "verify")
    assert submit(client, link, {}).status_code == 303
    assert sign_in(client, "ann@example.org").status_code == 303
    verified = client.get("/account", headers=HTML)
    assert verified.status_code == 200 and 'data-testid="verify-notice"' not in verified.text
    assert re.search(r'data-testid="tickets">2 ', verified.text)
    with desk.sessions() as s:
        owners = {s.get(Ticket, r.ticket_id).requester_id for r in (first, second)}
    assert owners == {intake.id}
    welcome = mails(desk.sessions, "welcome")[0]
    assert "The 2 requests you sent us earlier by mail are now in your account." in welcome.get_body(("plain",)).get_content()


def test_unverified_sign_in_when_allowed_shows_a_notice_and_no_earlier_tickets(app, desk, monkeypatch):
    monkeypatch.setattr(accounts, "UNVERIFIED_MAY_SIGN_IN", True)
    receive(desk, mail("Printer on fire", sender="ann@example.org"))
    client = TestClient(app)
    submit(client, "/register", {"email": "ann@example.org", "password": PASSWORD})
    assert sign_in(client, "ann@example.org").status_code == 303
    page = client.get("/account", headers=HTML)
    assert 'data-testid="verify-notice"' in page.text and 'data-testid="tickets"' not in page.text
    assert client.get("/api/auth/me").json()["verified"] is False
    resent = submit(client, "/account", {"action": "verify"}, page="/account")
    assert resent.headers["location"] == "/account?notice=verify-sent"
    assert len(mails(desk.sessions, "verify")) == 2


def test_registering_a_taken_address_answers_the_same_and_mails_the_owner(app, desk):
    ann = make_account(desk, "ann@example.org")
    client = TestClient(app)
    fresh = submit(client, "/register", {"email": "new@example.org", "password": PASSWORD})
    taken = submit(client, "/register", {"email": "ann@example.org", "password": "other-Password-77"})
    assert fresh.status_code == taken.status_code == 200
    assert same_page(fresh.text, taken.text, "new@example.org", "ann@example.org")
    note = mails(desk.sessions, "account-exists")
    assert [m["To"].addresses[0].addr_spec for m in note] == ["ann@example.org"]
    assert "you already have one, so nothing was changed" in note[0].get_body(("plain",)).get_content()
    link_path(note[0], "reset")
    with desk.sessions() as s:
        assert verify_password(s.get(Contact, ann).password_hash, PASSWORD)  # unchanged
        assert s.scalar(select(func.count(Outbox.id)).where(Outbox.rcpt_to == "ann@example.org",
                                                           Outbox.purpose == "verify")) == 0


def test_staff_address_without_password_is_not_taken_over_by_registering(app, desk):
    with desk.sessions() as s, s.begin():
        add_user(s, "agent@example.test", "agent")
    answer = submit(TestClient(app), "/register", {"email": "agent@example.test", "password": PASSWORD})
    assert answer.status_code == 200 and "Check your mail" in answer.text
    with desk.sessions() as s:
        assert s.scalar(select(Contact).where(Contact.email == "agent@example.test")).password_hash is None
    assert [m["Subject"] for m in mails(desk.sessions)] == ["You already have an account"]


def test_honeypot_pretends_success_and_creates_nothing(app, desk):
    answer = submit(TestClient(app), "/register", {"email": "bot@example.org", "password": PASSWORD,
                                                   "website": "http://spam.example"})
    assert answer.status_code == 200 and "Check your mail" in answer.text
    with desk.sessions() as s:
        assert s.scalar(select(func.count(Contact.id))) == 0
        assert s.scalar(select(func.count(Outbox.id))) == 0


@pytest.mark.parametrize("password, problem", [
    ("short1", "at least 8 characters"),
    ("Password123!", "most commonly used"),
    ("iloveyou", "most commonly used"),
    ("annie-the-great", "must not contain your email address"),
])
def test_weak_passwords_are_refused_with_a_reason(app, desk, password, problem):
    answer = submit(TestClient(app), "/register", {"email": "annie@example.org", "password": password})
    assert answer.status_code == 400 and problem in answer.text
    assert 'value="annie@example.org"' in answer.text  # the form keeps what was typed
    with desk.sessions() as s:
        assert s.scalar(select(func.count(Contact.id))) == 0


def test_expired_verification_link_says_so_and_a_new_one_works(app, desk):
    client = TestClient(app)
    submit(client, "/register", {"email": "ann@example.org", "password": PASSWORD})
    old = link_path(mails(desk.sessions, "verify")[0], "verify")
    with desk.sessions() as s, s.begin():
        s.execute(update(AccountToken).values(expires_at=utcnow() - timedelta(minutes=1)))
    expired = client.get(old, headers=HTML)
    assert expired.status_code == 400 and "This link has expired." in expired.text
    assert 'action="/verify"' in expired.text  # the way to a new link
    again = submit(client, "/verify", {"email": "ann@example.org"})
    assert again.status_code == 200 and "Check your mail" in again.text
    new = link_path(mails(desk.sessions, "verify")[-1], "verify")
    assert new != old
    done = submit(client, new, {})
    assert done.status_code == 303 and cookie_of(client, desk) is None  # confirmed, not signed in
    used = client.get(new, headers=HTML)
    assert used.status_code == 400 and "already confirmed" in used.text


# ---- password reset and change -------------------------------------------------------------------

def test_reset_sets_a_new_password_and_ends_every_other_session(app, desk):
    ann = make_account(desk, "ann@example.org")
    laptop, phone = TestClient(app), TestClient(app)
    assert sign_in(laptop, "ann@example.org").status_code == 303
    assert sign_in(phone, "ann@example.org").status_code == 303
    bearer = phone.post("/api/auth/login", json={"email": "ann@example.org", "password": PASSWORD}).json()

    forgetful = TestClient(app)
    asked = submit(forgetful, "/reset", {"email": "ann@example.org"})
    unknown = submit(forgetful, "/reset", {"email": "nobody@example.org"})
    assert asked.status_code == unknown.status_code == 200
    assert same_page(asked.text, unknown.text, "ann@example.org", "nobody@example.org")
    resets = mails(desk.sessions, "reset")
    assert len(resets) == 1 and resets[0]["To"].addresses[0].addr_spec == "ann@example.org"
    path = link_path(resets[0], "reset")

    form = forgetful.get(path, headers=HTML)
    assert form.status_code == 200 and "Choose a new password" in form.text
    token = CSRF_RE.search(form.text).group(1)
    mismatch = forgetful.post(path, data={"csrf_token": token, "password": "New-pass-4321", "confirm": "other"},
                              headers=HTML, follow_redirects=False)
    assert mismatch.status_code == 400 and "not the same" in mismatch.text
    done = forgetful.post(path, data={"csrf_token": token, "password": "New-pass-4321", "confirm": "New-pass-4321"},
                          headers=HTML, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/account?notice=password-reset"

    assert not session_alive(desk, cookie_of(laptop, desk)) and not session_alive(desk, cookie_of(phone, desk))
    assert phone.get("/api/auth/me", headers={"authorization": f"Bearer {bearer['access_token']}"}).status_code == 401
    assert session_alive(desk, cookie_of(forgetful, desk))
    with desk.sessions() as s:
        assert s.scalar(select(func.count(WebSession.token_hash)).where(WebSession.contact_id == ann)) == 1
    assert sign_in(TestClient(app), "ann@example.org").status_code == 401
    assert sign_in(TestClient(app), "ann@example.org", "New-pass-4321").status_code == 303
    reused = forgetful.get(path, headers=HTML)
    assert reused.status_code == 400 and "already used" in reused.text


def test_person_known_from_mail_claims_the_account_through_a_reset_link(app, desk):
    receive(desk, mail("Printer on fire", sender="ann@example.org"))
    client = TestClient(app)
    assert submit(client, "/reset", {"email": "ann@example.org"}).status_code == 200
    path = link_path(mails(desk.sessions, "reset")[0], "reset")
    token = CSRF_RE.search(client.get(path, headers=HTML).text).group(1)
    done = client.post(path, data={"csrf_token": token, "password": "New-pass-4321", "confirm": "New-pass-4321"},
                       headers=HTML)
    assert done.status_code == 200 and 'data-testid="tickets">1 ' in done.text  # the link proved the mailbox
    with desk.sessions() as s:
        ann = s.scalar(select(Contact).where(Contact.email == "ann@example.org"))
        assert ann.email_verified_at is not None and verify_password(ann.password_hash, "New-pass-4321")


def test_account_page_changes_preferences_and_password(app, desk):
    ann = make_account(desk, "ann@example.org")
    client, other = TestClient(app), TestClient(app)
    sign_in(client, "ann@example.org")
    sign_in(other, "ann@example.org")
    page = client.get("/account", headers=HTML)
    assert 'data-testid="role">customer' in page.text and "confirmed on" in page.text

    saved = submit(client, "/account", {"action": "preferences", "notify_replies": "1"}, page="/account")
    assert saved.status_code == 303 and saved.headers["location"] == "/account?notice=preferences"
    with desk.sessions() as s:
        person = s.get(Contact, ann)
        assert (person.notify_replies, person.notify_status) == (True, False)

    wrong = submit(client, "/account", {"action": "password", "current_password": "not-it-at-all",
                                        "new_password": "Fresh-pass-9876", "confirm_password": "Fresh-pass-9876"},
                   page="/account")
    assert wrong.status_code == 400 and "current password is not right" in wrong.text
    before = cookie_of(client, desk)
    changed = submit(client, "/account", {"action": "password", "current_password": PASSWORD,
                                          "new_password": "Fresh-pass-9876", "confirm_password": "Fresh-pass-9876"},
                     page="/account")
    assert changed.status_code == 303 and changed.headers["location"] == "/account?notice=password-changed"
    assert cookie_of(client, desk) != before and session_alive(desk, cookie_of(client, desk))
    assert not session_alive(desk, before) and not session_alive(desk, cookie_of(other, desk))
    assert sign_in(TestClient(app), "ann@example.org", "Fresh-pass-9876").status_code == 303


# ---- JSON API ------------------------------------------------------------------------------------

def test_api_register_login_bearer_and_logout(app, desk):
    api = TestClient(app)
    created = api.post("/api/auth/register", json={"email": "Ann@Example.org", "password": PASSWORD, "name": "Ann"})
    assert created.status_code == 201
    assert created.json() | {"detail": ""} == {"id": None, "email": "ann@example.org", "detail": ""}
    assert len(mails(desk.sessions, "verify")) == 1
    taken = api.post("/api/auth/register", json={"email": "ann@example.org", "password": PASSWORD})
    assert taken.status_code == 201 and taken.json() == created.json()   # alike: the mail says which
    assert len(mails(desk.sessions, "account-exists")) == 1
    weak = api.post("/api/auth/register", json={"email": "bob@example.org", "password": "password1"})
    assert weak.status_code == 422 and "commonly used" in weak.json()["detail"]

    early = api.post("/api/auth/login", json={"email": "ann@example.org", "password": PASSWORD})
    assert early.status_code == 403 and "confirm your email address first" in early.json()["detail"]
    assert submit(TestClient(app), link_path(mails(desk.sessions, "verify")[-1], "verify"), {}).status_code == 303

    wrong = api.post("/api/auth/login", json={"email": "ann@example.org", "password": "nope-nope-nope"})
    unknown = api.post("/api/auth/login", json={"email": "zed@example.org", "password": "nope-nope-nope"})
    assert wrong.status_code == unknown.status_code == 401 and wrong.json() == unknown.json()
    login = api.post("/api/auth/login", json={"email": "ann@example.org", "password": PASSWORD})
    assert login.status_code == 200 and login.json()["token_type"] == "bearer"
    auth = {"authorization": f"Bearer {login.json()['access_token']}"}
    assert "set-cookie" not in login.headers or "postdesk_session" not in login.headers["set-cookie"]

    me = api.get("/api/auth/me", headers=auth)
    assert me.status_code == 200
    assert me.json() | {"id": 0} == {"id": 0, "email": "ann@example.org", "name": "Ann", "role": "customer",
                                     "verified": True, "notify_replies": True, "notify_status": True,
                                     "language": None, "time_zone": None}
    page = api.get("/account", headers={**auth, **HTML})
    assert page.status_code == 200 and "ann@example.org" in page.text

    assert api.post("/api/auth/logout", headers=auth).status_code == 204
    assert api.get("/api/auth/me", headers=auth).status_code == 401
    assert api.get("/api/auth/me").json()["detail"].startswith("Sign in first")


# ---- the first admin -----------------------------------------------------------------------------

def test_first_admin_is_created_once_with_a_password_shown_once(app, desk):
    with desk.sessions() as s, s.begin():
        created = ensure_first_admin(s, desk.settings)
    assert created is not None
    admin, password = created
    assert admin.email == "admin@example.test" and admin.role == "admin" and len(password) >= 16
    with desk.sessions() as s, s.begin():
        stored = s.get(Contact, admin.id).password_hash
        assert password not in stored and verify_password(stored, password)
        assert ensure_first_admin(s, desk.settings) is None
    login = TestClient(app).post("/api/auth/login", json={"email": "admin@example.test", "password": password})
    assert login.status_code == 200
