"""Assignment that spreads work, on both databases: a skill in another word form finds its agent;
without a matching skill the least-loaded agents take turns; agents who are away get nothing; the
admin only when no agent is available."""
from __future__ import annotations

from sqlalchemy import select

from core.accounts import add_user
from core.ai.triage import choose_assignee
from core.models import AgentSkill, Contact, Event, Ticket, utcnow
from core.workspace.availability import set_away
from tests.integration.test_agent_pages import HTML, post_form, signed_in
from tests.integration.test_customer_pages import app  # noqa: F401


def _people(desk) -> dict[str, int]:
    with desk.sessions() as s, s.begin():
        admin = add_user(s, "admin@example.test", "admin")
        netty = add_user(s, "netty@example.test", "agent")
        printy = add_user(s, "printy@example.test", "agent")
        s.flush()
        s.add_all([AgentSkill(contact_id=netty.id, skill="networking"),
                   AgentSkill(contact_id=printy.id, skill="printers")])
        return {"admin": admin.id, "netty": netty.id, "printy": printy.id}


def _assign(desk, skills: list[str]) -> str:
    """Choose and record an assignment as triage does (an open ticket and its 'assigned' event)."""
    with desk.sessions() as s, s.begin():
        agent, _ = choose_assignee(s, skills)
        ticket = Ticket(reference=f"PD-{utcnow().timestamp()}", subject="x", requester_id=agent.id,
                        assignee_id=agent.id, status="new")
        s.add(ticket)
        s.flush()
        s.add(Event(ticket_id=ticket.id, kind="assigned", field="assignee", new_value=agent.email, source="rule"))
        return agent.email


def test_a_skill_in_another_word_form_finds_the_agent(desk):
    _people(desk)
    with desk.sessions() as s:
        assert choose_assignee(s, ["network"])[0].email == "netty@example.test"
        assert choose_assignee(s, ["printer"])[0].email == "printy@example.test"


def test_without_a_matching_skill_the_least_loaded_agents_take_turns(desk):
    _people(desk)
    assert [_assign(desk, ["billing"]) for _ in range(4)] == [
        "netty@example.test", "printy@example.test", "netty@example.test", "printy@example.test"]


def test_agents_away_get_nothing_and_the_admin_only_when_no_agent_is_available(desk):
    ids = _people(desk)
    with desk.sessions() as s, s.begin():
        set_away(s, s.get(Contact, ids["netty"]), True)
    with desk.sessions() as s:
        assert choose_assignee(s, ["network"])[0].email == "printy@example.test"
    with desk.sessions() as s, s.begin():
        set_away(s, s.get(Contact, ids["printy"]), True)
    with desk.sessions() as s:
        agent, why = choose_assignee(s, ["network"])
        assert agent.email == "admin@example.test" and "admin" in why
    with desk.sessions() as s, s.begin():
        set_away(s, s.get(Contact, ids["netty"]), False)
    with desk.sessions() as s:
        assert choose_assignee(s, [])[0].email == "netty@example.test"


def test_an_agent_marks_themselves_away_on_the_queue(app, desk):
    agent = signed_in(app, desk, "agent@example.test", "agent")
    assert post_form(agent, "/agent/queue", "/agent/away", {"away": "yes"}).status_code == 303
    page = agent.get("/agent/queue", headers=HTML).text
    assert "I am back" in page
    with desk.sessions() as s:
        me = s.scalar(select(Contact).where(Contact.email == "agent@example.test"))
        add_user(s, "admin@example.test", "admin")
        s.commit()
        assert choose_assignee(s, [])[0].email == "admin@example.test"
        assert me is not None
    post_form(agent, "/agent/queue", "/agent/away", {"away": "no"})
    assert "I am away" in agent.get("/agent/queue", headers=HTML).text


def test_a_configured_synonym_finds_the_agent(desk):
    _people(desk)
    with desk.sessions() as s:
        assert choose_assignee(s, ["wifi"], ("network = lan, wifi",))[0].email == "netty@example.test"
        assert choose_assignee(s, ["toner"], ("printers = toner",))[0].email == "printy@example.test"
