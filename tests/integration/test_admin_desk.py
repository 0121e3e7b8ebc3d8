"""The admin's desk on both databases: the managed skill list (add, rename, merge, picked as chips),
agents' away state (no automatic assignment), and mailbox health from real polls (a real Dovecot
that answers, a port where nothing listens)."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from core.accounts import add_user
from core.ai.triage import choose_assignee
from core.config import load_settings
from core.models import AgentSkill, Contact, Skill, TicketSkill
from ingest.imap import mailbox_pollers
from tests.integration.test_api_tickets import World, make_world
from tests.integration.test_imap_mailboxes import _imap_env
from tests.support.dovecot import Dovecot
from tests.support.net import free_port

HTML = {"accept": "text/html"}


@pytest.fixture
def world(desk) -> World:
    w = make_world(desk)
    with w.client:
        yield w


def _skills(world: World) -> dict[str, list[str]]:
    with world.desk.sessions() as s:
        found: dict[str, list[str]] = {"_list": list(s.scalars(select(Skill.name).order_by(Skill.name)))}
        for email, skill in s.execute(select(Contact.email, AgentSkill.skill).join(
                AgentSkill, AgentSkill.contact_id == Contact.id).order_by(AgentSkill.skill)):
            found.setdefault(email, []).append(skill)
        found["_tickets"] = list(s.scalars(select(TicketSkill.skill).order_by(TicketSkill.skill)))
        return found


def test_skills_are_added_renamed_and_merged_everywhere(world):
    agent_id = world.user_ids["agent"]
    with world.desk.sessions() as s, s.begin():
        s.add_all([Skill(name="printers"), Skill(name="printing"), Skill(name="vpn"),
                   AgentSkill(contact_id=agent_id, skill="printers"), AgentSkill(contact_id=agent_id, skill="printing"),
                   TicketSkill(ticket_id=world.ticket_a, skill="printing")])
    assert world.call("admin", "POST", "/admin/skills", data={"name": " Billing "},
                      follow_redirects=False).status_code == 303
    assert world.call("admin", "POST", "/admin/skills/rename", data={"old": "vpn", "new": "network"},
                      follow_redirects=False).status_code == 303
    assert world.call("admin", "POST", "/admin/skills/merge", data={"source": "printing", "target": "printers"},
                      follow_redirects=False).status_code == 303
    got = _skills(world)
    assert got["_list"] == ["billing", "network", "printers"]
    assert got["agent@example.test"] == ["printers"] and got["_tickets"] == ["printers"]
    clash = world.call("admin", "POST", "/admin/skills/rename", data={"old": "network", "new": "printers"}, headers=HTML)
    assert clash.status_code == 400 and "merge" in clash.text
    bad = world.call("admin", "POST", "/admin/skills", data={"name": "two words"}, headers=HTML)
    assert bad.status_code == 400 and "short word" in bad.text
    page = world.call("admin", "GET", "/admin/skills", headers=HTML).text
    assert re.search(r'data-skill="printers"><td>printers</td><td>1</td><td>1</td>', page)


def test_skills_are_picked_as_chips_and_an_away_agent_gets_no_automatic_assignment(world):
    with world.desk.sessions() as s, s.begin():
        s.add_all([Skill(name="billing"), Skill(name="vpn")])
    agent_id = world.user_ids["agent"]
    page = world.call("admin", "GET", "/admin/users?role=agent", headers=HTML).text
    assert f'<input type="checkbox" name="skill" value="billing"' in page
    saved = world.call("admin", "POST", f"/admin/users/{agent_id}", follow_redirects=False, data={
        "role": "agent", "active": "yes", "skill": ["billing", "vpn"], "skills": "Mainframe"})
    assert saved.status_code == 303
    got = _skills(world)
    assert got["agent@example.test"] == ["billing", "mainframe", "vpn"] and "mainframe" in got["_list"]
    with world.desk.sessions() as s:
        assert choose_assignee(s, ["billing"])[0].id == agent_id
    world.call("admin", "POST", f"/admin/users/{agent_id}",
               data={"role": "agent", "active": "yes", "skill": ["billing"], "away": "yes"})
    with world.desk.sessions() as s:
        chosen, why = choose_assignee(s, ["billing"])
        assert s.get(Contact, agent_id).away and chosen.id == world.user_ids["admin"] and "admin" in why
    assert '<span class="badge">away</span>' in world.call("admin", "GET", "/admin/users?role=agent", headers=HTML).text


def test_mailbox_health_shows_the_last_poll_and_the_last_error(world):
    with Dovecot() as dovecot:
        account = dovecot.add_user()
        closed = free_port()
        world.desk.settings = load_settings(environ={
            "POSTDESK_DATABASE__URL": world.desk.settings.database.url,
            "POSTDESK_WEB__SECRET_KEY": world.desk.settings.web.secret_key,
            **_imap_env("POSTDESK_IMAP", account),
            "POSTDESK_IMAP__MAILBOXES__SALES__HOST": "127.0.0.1", "POSTDESK_IMAP__MAILBOXES__SALES__PORT": str(closed),
            "POSTDESK_IMAP__MAILBOXES__SALES__USERNAME": "sales"})
        for poller in mailbox_pollers(world.desk.settings, world.desk.sessions):
            poller.poll()
    world.client.app.state.settings = world.desk.settings
    page = world.call("admin", "GET", "/admin/mailboxes", headers=HTML).text
    rows = {m[0]: m[1] for m in re.findall(r'<tr data-mailbox="([^"]+)">(.*?)</tr>', page, re.S)}
    assert "<strong class=\"\">ok</strong>" in rows["imap"]
    assert "⚠ failing" in rows["imap.mailboxes.sales"] and "(1 in a row)" in rows["imap.mailboxes.sales"]
    assert "support@example.test" in page


def test_an_agent_marks_themselves_away_on_their_account_page(world):
    assert "I am away" in world.call("agent", "GET", "/account", headers=HTML).text
    assert "I am away" not in world.call("customer_a", "GET", "/account", headers=HTML).text
    done = world.call("agent", "POST", "/account", data={"action": "away", "away": "yes"}, follow_redirects=False)
    assert done.status_code == 303
    with world.desk.sessions() as s:
        assert s.get(Contact, world.user_ids["agent"]).away
    world.call("customer_a", "POST", "/account", data={"action": "away", "away": "yes"})
    with world.desk.sessions() as s:
        assert not s.get(Contact, world.user_ids["customer_a"]).away
    world.call("agent", "POST", "/account", data={"action": "away"})
    with world.desk.sessions() as s:
        assert not s.get(Contact, world.user_ids["agent"]).away
