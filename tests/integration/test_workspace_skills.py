"""Assignment by skill matches related names on both databases: a ticket needing 'network' goes to
the agent with 'networking', not to the admin."""
from __future__ import annotations

from core.accounts import add_user
from core.ai.triage import choose_assignee
from core.models import AgentSkill


def test_a_skill_in_another_word_form_finds_the_agent(desk):
    with desk.sessions() as s, s.begin():
        add_user(s, "admin@example.test", "admin")
        netty = add_user(s, "netty@example.test", "agent")
        printy = add_user(s, "printy@example.test", "agent")
        s.flush()
        s.add_all([AgentSkill(contact_id=netty.id, skill="networking"), AgentSkill(contact_id=printy.id, skill="printers")])
    with desk.sessions() as s:
        assert choose_assignee(s, ["network"])[0].email == "netty@example.test"
        assert choose_assignee(s, ["printing", "network"])[0].email in ("netty@example.test", "printy@example.test")
        assert choose_assignee(s, ["printer"])[0].email == "printy@example.test"
        agent, why = choose_assignee(s, ["billing"])
        assert agent.email == "admin@example.test" and "admin" in why
