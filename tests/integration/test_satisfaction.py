"""Satisfaction on both databases: the resolution mail (through a real SMTP sink) carries two signed
links; a click answers without signing in, a link used twice is still one answer, a comment can
follow; the answer shows on the ticket and in the reports."""
from __future__ import annotations

import dataclasses
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from core.models import Satisfaction
from core.outbound import deliver_due
from portal.app import create_app
from tests.integration.test_api_tickets import World, make_world

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


def test_a_one_click_rating_used_twice_is_one_answer_and_shows_on_the_ticket_and_in_reports(world, sink):
    links = _resolution_links(world, sink)
    stranger = TestClient(world.client.app)                     # no session: the link is the credential
    first = stranger.get(links["good"], headers=HTML)
    assert first.status_code == 200 and re.search(r"as\s+<strong>good</strong>", first.text)
    assert stranger.get(links["good"], headers=HTML).status_code == 200
    assert _answers(world) == [("good", "")]
    stranger.get(links["bad"], headers=HTML)                    # a change of mind replaces the answer
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


def test_only_the_requester_gets_rating_links_and_only_on_resolution(world, sink):
    world.call("agent", "PATCH", f"/api/tickets/{world.ticket_a}", json={"status": "waiting"})
    deliver_due(world.desk.sessions, world.desk.settings)
    assert all("/rate/" not in m.get_body(("plain",)).get_content() for m in sink.wait_for(1))


def test_a_forged_or_unknown_rating_link_changes_nothing(world, sink):
    links = _resolution_links(world, sink)
    token = links["good"].split("/")[2]
    ticket, person, sig = token.split(".")
    client = TestClient(world.client.app)
    assert client.get(f"/rate/{ticket}.{int(person) + 1}.{sig}/good").status_code == 404   # someone else's answer
    assert client.get(f"/rate/{ticket}.{person}.{'0' * 32}/good").status_code == 404
    assert client.get(f"/rate/{token}/excellent").status_code == 404
    assert client.get("/rate/not-a-token/good").status_code == 404
    csrf_page = client.get(links["good"], headers=HTML)
    assert _answers(world) == [("good", "")]
    with world.desk.sessions() as s:
        assert s.scalar(select(func.count(Satisfaction.id))) == 1
    assert csrf_page.status_code == 200
    no_csrf = client.post(f"/rate/{token}/comment", data={"text": "x"})
    assert no_csrf.status_code == 403 and _answers(world) == [("good", "")]
