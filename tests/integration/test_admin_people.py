"""The admin's people page on both databases: invitations (mail with a set-password link that
expires), search, role filter and paging."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from core.models import AccountToken, Contact, Outbox, aware
from tests.integration.test_api_tickets import World, make_world

HTML = {"accept": "text/html"}


@pytest.fixture
def world(desk) -> World:
    w = make_world(desk)
    with w.client:
        yield w


def _invite_link(world: World, address: str) -> str:
    with world.desk.sessions() as s:
        row = s.scalar(select(Outbox).where(Outbox.rcpt_to == address, Outbox.purpose == "invite"))
    text = row.raw.decode()
    return re.search(r"/reset/[A-Za-z0-9_-]+", text)[0]


def test_an_invited_agent_chooses_a_password_and_signs_in(world):
    answer = world.call("admin", "POST", "/admin/users/invite", follow_redirects=False,
                        data={"email": " Nina@Example.TEST ", "role": "agent", "name": "Nina"})
    assert answer.status_code == 303 and answer.headers["location"] == "/admin/users?done=invited"
    with world.desk.sessions() as s:
        nina = s.scalar(select(Contact).where(Contact.email == "nina@example.test"))
        assert (nina.role, nina.name, nina.active, nina.password_hash) == ("agent", "Nina", True, None)
        expires = s.scalar(select(AccountToken.expires_at).where(AccountToken.contact_id == nina.id))
    link = _invite_link(world, "nina@example.test")
    browser = world.client
    browser.cookies.clear()
    form = browser.get(link, headers=HTML)
    assert form.status_code == 200 and "nina@example.test" in form.text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text)[1]
    done = browser.post(link, data={"csrf_token": csrf, "password": "copper-meadow-4411",
                                    "confirm": "copper-meadow-4411"}, headers=HTML, follow_redirects=False)
    assert done.status_code == 303
    browser.cookies.clear()
    page = browser.get("/login", headers=HTML)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)[1]
    signed_in = browser.post("/login", data={"csrf_token": csrf, "email": "nina@example.test",
                                             "password": "copper-meadow-4411"}, headers=HTML, follow_redirects=False)
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/agent/queue"
    assert browser.get(link, headers=HTML).status_code == 400          # used once


def test_an_invitation_link_expires(world):
    world.call("admin", "POST", "/admin/users/invite", data={"email": "late@example.test", "role": "admin"})
    with world.desk.sessions() as s, s.begin():
        for token in s.scalars(select(AccountToken)):
            token.expires_at = aware(token.expires_at) - timedelta(days=8)    # 8 days later, in effect
    world.client.cookies.clear()
    expired = world.client.get(_invite_link(world, "late@example.test"), headers=HTML)
    assert expired.status_code == 400 and "expired" in expired.text


@pytest.mark.parametrize("form, words", [
    ({"email": "not an address", "role": "agent"}, "address"),
    ({"email": "cust@example.test", "role": "customer"}, "invite an agent or an admin"),
])
def test_a_bad_invitation_is_refused_with_its_reason(world, form, words):
    answer = world.call("admin", "POST", "/admin/users/invite", data=form, headers=HTML)
    assert answer.status_code == 400 and words in answer.text and 'role="alert"' in answer.text
    with world.desk.sessions() as s:
        assert s.scalar(select(Outbox).where(Outbox.purpose == "invite")) is None


def test_people_search_role_filter_and_paging(world):
    with world.desk.sessions() as s, s.begin():
        s.add_all(Contact(email=f"shopper{i:03d}@retail.example", name=f"Shopper {i}", role="customer")
                  for i in range(120))
        s.add(Contact(email="zed@support.example", name="Zed Retailer", role="agent"))
    first = world.call("admin", "GET", "/admin/users?q=retail", headers=HTML).text
    assert 'data-testid="people-total">121<' in first and "page 1 of 3" in first
    assert first.index("zed@support.example") < first.index("shopper000@retail.example")   # staff first, by name match
    third = world.call("admin", "GET", "/admin/users?q=retail&page=3", headers=HTML).text
    assert third.count('data-user="shopper') == 21 and 'rel="prev"' in third and 'rel="next"' not in third
    agents = world.call("admin", "GET", "/admin/users?q=RETAIL&role=agent", headers=HTML).text
    assert 'data-testid="people-total">1<' in agents and 'data-user="zed@support.example"' in agents
    assert 'data-testid="people-total">0<' in world.call("admin", "GET", "/admin/users?q=%25_", headers=HTML).text
