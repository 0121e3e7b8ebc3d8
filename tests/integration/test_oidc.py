"""Sign-in through OpenID Connect, on both databases: `postdesk serve --only web` against a small
provider started by the test, driven by an HTTP client that follows the redirects and keeps
cookies as a browser does. PKCE, state and nonce are checked, and so is every ID token."""
from __future__ import annotations

import time
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from core.accounts import hash_password
from core.models import Contact, Ticket, WebSession
from core.oidc import subject_key
from portal.app import create_app
from tests.conftest import make_settings
from tests.support.oidc_provider import OidcProvider
from tests.support.server import PostdeskProcess

HTML = {"accept": "text/html"}


@pytest.fixture
def idp():
    with OidcProvider() as provider:
        yield provider


@pytest.fixture
def server(db_url, tmp_path, idp):
    env = {"POSTDESK_DATABASE__URL": db_url, "POSTDESK_OUTBOUND__OUTBOX_DIR": str(tmp_path / "outbox"), **idp.env()}
    with PostdeskProcess(tmp_path / "run", env, only="web") as proc:
        yield proc


@pytest.fixture
def engine(db_url):
    e = create_engine(db_url)
    yield e
    e.dispose()


def browser(server) -> httpx.Client:
    return httpx.Client(base_url=server.base_url, headers=HTML, follow_redirects=True, timeout=30)


def test_new_person_signs_in_through_the_provider(server, idp, engine):
    with browser(server) as b:
        login = b.get("/login")
        assert 'data-testid="oidc"' in login.text
        page = b.get("/login/oidc", params={"next": "/account"})
        cookies = dict(b.cookies)
    assert page.status_code == 200 and page.url.path == "/account" and page.url.host == "127.0.0.1"
    assert "olga@example.org" in page.text and "confirmed on" in page.text
    assert "postdesk_session" in cookies and "postdesk_oidc" not in cookies

    asked = idp.authorize_requests[-1]
    assert asked["redirect_uri"] == f"{server.base_url}/login/oidc/callback"
    assert asked["code_challenge_method"] == "S256" and len(asked["state"]) >= 32 and len(asked["nonce"]) >= 32
    assert set(asked["scope"].split()) == {"openid", "email", "profile"}
    assert len(idp.token_requests[-1]["code_verifier"]) >= 43

    with Session(engine) as s:
        olga = s.scalar(select(Contact).where(Contact.email == "olga@example.org"))
        assert olga.oidc_subject == subject_key(idp.issuer, "idp-user-1") and olga.name == "Olga Provider"
        assert olga.email_verified_at is not None and olga.password_hash is None and olga.role == "customer"
        assert s.scalar(select(func.count(WebSession.token_hash)).where(WebSession.contact_id == olga.id)) == 1


def test_contact_known_from_mail_is_linked_by_verified_address_then_by_subject(server, idp, engine):
    with Session(engine) as s, s.begin():  # Ann wrote to us by mail before; someone registered her address
        ann = Contact(email="ann@example.org", name="Ann", role="customer", password_hash=hash_password("by-whom-8"))
        s.add(ann)
        s.flush()
        s.add(Ticket(reference="PD-0000AAAA", subject="Printer on fire", requester_id=ann.id))
        ann_id = ann.id
    idp.user = {"sub": "ann-at-idp", "email": "Ann@Example.org", "email_verified": True, "name": "Ann B."}
    with browser(server) as b:
        page = b.get("/login/oidc", params={"next": "/account"})
    assert page.url.path == "/account" and 'data-testid="tickets">1 ' in page.text
    with Session(engine) as s:
        assert s.scalar(select(func.count(Contact.id)).where(Contact.email == "ann@example.org")) == 1
        linked = s.scalar(select(Contact).where(Contact.email == "ann@example.org"))
        assert linked.id == ann_id and linked.oidc_subject == subject_key(idp.issuer, "ann-at-idp")
        assert linked.password_hash is None  # set before the address was confirmed: perhaps not by Ann

    # The provider changed her address: the subject still finds the same account.
    idp.user = {**idp.user, "email": "ann.new@example.org"}
    with browser(server) as b:
        again = b.get("/login/oidc", params={"next": "/account"})
    assert again.url.path == "/account" and "ann@example.org" in again.text


def test_provider_without_a_confirmed_address_is_refused(server, idp, engine):
    idp.user = {"sub": "someone", "email": "victim@example.org", "email_verified": False}
    with browser(server) as b:
        page = b.get("/login/oidc")
        assert page.status_code == 403 and "did not confirm an email address" in page.text
        assert "postdesk_session" not in b.cookies
    with Session(engine) as s:  # (the first admin, created at start, is the only contact)
        assert s.scalar(select(func.count(Contact.id)).where(Contact.email == "victim@example.org")) == 0


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_id_tokens_that_fail_a_check_are_refused(server, idp, engine):
    now = int(time.time())
    broken = {"wrong audience": {"aud": "another-client"}, "wrong issuer": {"iss": "http://evil.example"},
              "expired": {"exp": now - 600, "iat": now - 900}, "replayed nonce": {"nonce": "from-another-login"}}
    for why, overrides in broken.items():
        idp.id_token_overrides = overrides
        with browser(server) as b:
            page = b.get("/login/oidc")
            assert page.status_code == 502, why
            assert "Sign-in through the provider failed" in page.text and "postdesk_session" not in b.cookies
    idp.id_token_overrides = {}
    idp.sign_with_rogue_key = True
    with browser(server) as b:
        assert b.get("/login/oidc").status_code == 502
    idp.sign_with_rogue_key = False
    with browser(server) as b:
        assert b.get("/login/oidc").url.path == "/my/tickets"  # and a sound token still works
    assert "ID token refused" in server.output()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_callback_with_a_forged_state_or_without_the_pending_cookie_is_refused(server, idp):
    with httpx.Client(base_url=server.base_url, headers=HTML, timeout=30) as b:
        to_provider = b.get("/login/oidc")
        assert to_provider.status_code == 303 and to_provider.headers["location"].startswith(idp.issuer)
        back = httpx.get(to_provider.headers["location"]).headers["location"]
        query = {k: v[0] for k, v in parse_qs(urlsplit(back).query).items()}
        forged = b.get("/login/oidc/callback?" + urlencode({**query, "state": "attacker-state"}))
        assert forged.status_code == 403 and "did not start here" in forged.text
    with httpx.Client(base_url=server.base_url, headers=HTML, timeout=30) as other_browser:
        lost = other_browser.get(urlsplit(back).path + "?" + urlsplit(back).query)
        assert lost.status_code == 400 and "did not start here" in lost.text


def test_without_an_issuer_there_is_no_provider_sign_in(desk):
    client = TestClient(create_app(desk.settings, desk.sessions))
    assert 'data-testid="oidc"' not in client.get("/login", headers=HTML).text
    assert client.get("/login/oidc", headers=HTML, follow_redirects=False).status_code == 404
    assert client.get("/login/oidc/callback?code=x&state=y", follow_redirects=False).status_code == 404


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_unreachable_provider_gives_a_clear_answer(desk, db_url, tmp_path):
    from tests.support.net import free_port

    settings = make_settings(db_url, tmp_path, oidc={"issuer": f"http://127.0.0.1:{free_port()}",
                                                     "client_id": "postdesk", "client_secret": "s"})
    client = TestClient(create_app(settings, desk.sessions))
    page = client.get("/login/oidc", headers=HTML, follow_redirects=False)
    assert page.status_code == 502 and "cannot be reached" in page.text
