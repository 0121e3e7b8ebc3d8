"""Satisfaction on both databases: the resolution mail (through a real SMTP sink) carries two signed
links; a click answers without signing in (the link's page posts the answer: a scanner's GET or
HEAD records nothing), a link used twice is still one answer, a comment can follow; the answer
shows on the ticket, in its JSON and in the reports."""
from __future__ import annotations

import dataclasses
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from core.models import Satisfaction, utcnow
from core.outbound import deliver_due
from portal.app import create_app
from tests.integration.test_api_tickets import World, aware_iso, make_world

HTML = {"accept": "text/html"}


@pytest.fixture
def world(desk, sink) -> World:
    desk.settings = dataclasses.replace(desk.settings, outbound=dataclasses.replace(
        desk.settings.outbound, host="127.0.0.1", port=sink.port, coalesce_seconds=0))  # status mails at once
    w = make_world(desk)
    w.client = TestClient(create_app(desk.settings, desk.sessions))
    with w.client:
        yield w


def _answers(world: World) -> list[tuple[str, str]]:
    with world.desk.sessions() as s:
        return [(a.score, a.comment) for a in s.scalars(select(Satisfaction))]


def _resolution_links(world: World, sink) -> dict[str, str]:
    answer = world.call("agent", "PATCH", f"/api/tickets/{world.ticket_a}",
                        json={"status": "resolved", "resolution": "Refunded."})
    assert answer.status_code == 200
    deliver_due(world.desk.sessions, world.desk.settings)
    mails = [m for m in sink.wait_for(1) if m["To"].addresses[0].addr_spec == "ann@example.org"
             and "now: resolved" in m.get_body(("plain",)).get_content()]
    assert len(mails) == 1
    text = mails[0].get_body(("plain",)).get_content()
    html = mails[0].get_body(("html",)).get_content()
    links = dict(re.findall(r"(Good|Bad):\s+(http\S+)", text))
    assert set(links) == {"Good", "Bad"} and all(link in html for link in links.values())
    return {k.lower(): v.removeprefix(world.desk.settings.base_url) for k, v in links.items()}


def click(client: TestClient, link: str):
    """What a browser does with a rating link: open it, then post the form its page sends by itself
    (static/rate.js) or on its button; a link already answered shows the thank-you page at once."""
    opened = client.get(link, headers=HTML)
    assert opened.status_code == 200, opened.text
    form = re.search(r'<form id="rate-form" method="post" action="([^"]+)" data-auto-submit>', opened.text)
    if form is None:
        return opened
    assert form[1] == link and '<script src="/static/rate.js" defer></script>' in opened.text
    assert "<script>" not in opened.text                        # nothing inline: the CSP runs only our files
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', opened.text)[1]
    return client.post(form[1], data={"csrf_token": csrf}, headers=HTML)


def test_fetching_a_rating_link_without_posting_its_page_records_nothing(world, sink):
    links = _resolution_links(world, sink)
    scanner = TestClient(world.client.app)
    for link in links.values():
        assert scanner.head(link).status_code in (200, 405)
        page = scanner.get(link, headers=HTML)
        assert page.status_code == 200 and "Rate our help as" in page.text
        assert page.headers["cache-control"] == "no-store"
    assert _answers(world) == []
    assert scanner.post(links["good"], data={}).status_code == 403     # a post without the page's token
    assert _answers(world) == []


def test_a_one_click_rating_used_twice_is_one_answer_and_shows_on_the_ticket_and_in_reports(world, sink):
    links = _resolution_links(world, sink)
    stranger = TestClient(world.client.app)                     # no session: the link is the credential
    first = click(stranger, links["good"])
    assert first.status_code == 200 and re.search(r"as\s+<strong>good</strong>", first.text)
    again = click(stranger, links["good"])                      # answered: the thank-you page, no form
    assert again.status_code == 200 and re.search(r"as\s+<strong>good</strong>", again.text)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', again.text)[1]
    assert stranger.post(links["good"], data={"csrf_token": csrf}, headers=HTML).status_code == 200  # sent twice
    assert _answers(world) == [("good", "")]
    click(stranger, links["bad"])                               # a change of mind replaces the answer
    assert _answers(world) == [("bad", "")]
    token = links["bad"].split("/")[2]
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', stranger.get(links["bad"], headers=HTML).text)[1]
    commented = stranger.post(f"/rate/{token}/comment", data={"csrf_token": csrf, "text": "Took three days."},
                              headers=HTML)
    assert commented.status_code == 200 and "Your comment is saved." in commented.text
    assert _answers(world) == [("bad", "Took three days.")]
    ticket_page = world.call("agent", "GET", f"/agent/tickets/{world.ticket_a}", headers=HTML).text
    assert "Satisfaction: <strong>bad</strong> from ann@example.org" in ticket_page and "Took three days." in ticket_page
    reports = world.call("agent", "GET", "/agent/reports", headers=HTML).text
    assert 'data-testid="satisfaction">0 of 1<' in reports


def test_the_ticket_json_carries_the_rating_for_staff_and_the_requester_only(world, sink):
    path = f"/api/tickets/{world.ticket_a}"
    assert world.call("agent", "GET", path).json()["satisfaction"] is None
    assert world.call("agent", "POST", f"{path}/followers", json={"email": "bob@example.org"}).status_code == 201
    links = _resolution_links(world, sink)
    stranger = TestClient(world.client.app)
    page = click(stranger, links["bad"])
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)[1]
    stranger.post(f"/rate/{links['bad'].split('/')[2]}/comment", data={"csrf_token": csrf, "text": "Slow."})
    for role in ("agent", "admin", "customer_a"):
        rated = world.call(role, "GET", path).json()["satisfaction"]
        assert {k: rated[k] for k in ("rating", "comment")} == {"rating": "bad", "comment": "Slow."}, role
        assert aware_iso(rated["rated_at"]) <= utcnow()
    follower = world.call("customer_b", "GET", path)            # may read the ticket, not Ann's answer
    assert follower.status_code == 200 and follower.json()["satisfaction"] is None
    listed = world.call("agent", "GET", "/api/tickets?sort=id").json()["items"]
    assert {t["id"]: (t["satisfaction"] or {}).get("rating") for t in listed} == \
        {world.ticket_a: "bad", world.ticket_b: None}
    mine = world.call("customer_b", "GET", "/api/tickets").json()["items"]
    assert all(t["satisfaction"] is None for t in mine)


def test_only_the_requester_gets_rating_links_and_only_on_resolution(world, sink):
    world.call("agent", "PATCH", f"/api/tickets/{world.ticket_a}", json={"status": "waiting"})
    deliver_due(world.desk.sessions, world.desk.settings)
    assert all("/rate/" not in m.get_body(("plain",)).get_content() for m in sink.wait_for(1))


def test_a_forged_or_unknown_rating_link_changes_nothing(world, sink):
    links = _resolution_links(world, sink)
    token = links["good"].split("/")[2]
    ticket, person, sig = token.split(".")
    client = TestClient(world.client.app)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get(links["good"], headers=HTML).text)[1]
    for path in (f"/rate/{ticket}.{int(person) + 1}.{sig}/good", f"/rate/{ticket}.{person}.{'0' * 32}/good",
                 f"/rate/{token}/excellent", "/rate/not-a-token/good"):     # someone else's, forged, unknown
        assert client.get(path).status_code == 404
        assert client.post(path, data={"csrf_token": csrf}).status_code == 404
    assert _answers(world) == []
    csrf_page = click(client, links["good"])
    assert _answers(world) == [("good", "")]
    with world.desk.sessions() as s:
        assert s.scalar(select(func.count(Satisfaction.id))) == 1
    assert csrf_page.status_code == 200
    no_csrf = client.post(f"/rate/{token}/comment", data={"text": "x"})
    assert no_csrf.status_code == 403 and _answers(world) == [("good", "")]
