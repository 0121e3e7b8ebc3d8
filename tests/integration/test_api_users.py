"""The users JSON API on both databases: admins list people and change role, activity, name and
skills; nobody else may; the last active admin cannot be demoted or deactivated."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from core.models import AgentSkill, Contact
from tests.integration.test_api_tickets import make_world


@pytest.fixture
def world(desk):
    w = make_world(desk)
    with w.client:
        yield w


def test_only_admins_list_people(world):
    assert world.call("anonymous", "GET", "/api/users").status_code == 401
    for role in ("customer_a", "customer_b", "agent"):
        assert world.call(role, "GET", "/api/users").status_code == 403, role
    listed = world.call("admin", "GET", "/api/users")
    assert listed.status_code == 200, listed.text
    page = listed.json()
    assert page["total"] == 4 and page["page"] == 1 and page["per_page"] == 50
    assert [u["role"] for u in page["items"]] == ["admin", "agent", "customer", "customer"]
    ann = next(u for u in page["items"] if u["email"] == "ann@example.org")
    assert set(ann) >= {"id", "email", "name", "role", "active", "skills", "created_at"}
    assert ann["active"] is True and ann["skills"] == [] and ann["created_at"].endswith(("Z", "+00:00"))


def test_people_filtered_by_role_activity_and_search(world):
    def emails(query: str) -> list[str]:
        answer = world.call("admin", "GET", f"/api/users?{query}")
        assert answer.status_code == 200, answer.text
        return [u["email"] for u in answer.json()["items"]]

    assert emails("role=agent&role=admin") == ["admin@example.test", "agent@example.test"]
    assert emails("search=BOB") == ["bob@example.org"] and emails("search=Customer+A") == ["ann@example.org"]
    assert emails("search=%25") == []                # LIKE wildcards are literal
    assert emails("active=false") == []
    assert emails("per_page=1&page=2") == ["agent@example.test"]
    assert world.call("admin", "GET", "/api/users?role=boss").status_code == 422
    assert world.call("admin", "GET", "/api/users?per_page=500").status_code == 422


def test_an_admin_changes_role_name_and_skills(world):
    agent_id = world.user_ids["agent"]
    changed = world.call("admin", "PATCH", f"/api/users/{agent_id}",
                         json={"name": " Agnes ", "skills": ["Printers", "billing", "printers "]})
    assert changed.status_code == 200, changed.text
    assert changed.json() | {"created_at": ""} == {
        "id": agent_id, "email": "agent@example.test", "name": "Agnes", "role": "agent", "active": True,
        "skills": ["billing", "printers"], "created_at": ""}
    promoted = world.call("admin", "PATCH", f"/api/users/{world.user_ids['customer_a']}", json={"role": "agent"})
    assert promoted.json()["role"] == "agent"
    cleared = world.call("admin", "PATCH", f"/api/users/{agent_id}", json={"skills": []})
    assert cleared.json()["skills"] == []
    with world.desk.sessions() as s:
        assert s.scalars(select(AgentSkill.skill).where(AgentSkill.contact_id == agent_id)).all() == []
        assert s.get(Contact, world.user_ids["customer_a"]).role == "agent"


def test_a_deactivated_person_is_signed_out_of_the_api(world):
    assert world.call("customer_a", "GET", "/api/tickets").status_code == 200
    answer = world.call("admin", "PATCH", f"/api/users/{world.user_ids['customer_a']}", json={"active": False})
    assert answer.status_code == 200 and answer.json()["active"] is False
    assert world.call("customer_a", "GET", "/api/tickets").status_code == 401


def test_an_admin_cannot_demote_or_deactivate_themselves(world):
    admin_id = world.user_ids["admin"]
    for body in ({"role": "agent"}, {"active": False}):
        refused = world.call("admin", "PATCH", f"/api/users/{admin_id}", json=body)
        assert refused.status_code == 409 and "your own admin role" in refused.json()["detail"]
    assert world.call("admin", "PATCH", f"/api/users/{admin_id}", json={"name": "Boss"}).status_code == 200
    promoted = world.call("admin", "PATCH", f"/api/users/{world.user_ids['agent']}", json={"role": "admin"})
    assert promoted.status_code == 200
    demoted = world.call("agent", "PATCH", f"/api/users/{admin_id}", json={"role": "agent"})  # by the new admin
    assert demoted.status_code == 200 and demoted.json()["role"] == "agent"


@pytest.mark.parametrize("body", [{"role": "boss"}, {"active": "perhaps"}, {"skills": ["x" * 33]},
                                  {"skills": [""]}, {"skills": ["two words"]}, {"email": "new@example.org"},
                                  {"name": "n" * 201}])
def test_bad_changes_are_422(world, body):
    answer = world.call("admin", "PATCH", f"/api/users/{world.user_ids['agent']}", json=body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"]


def test_changing_people_needs_an_admin_and_an_existing_person(world):
    path = f"/api/users/{world.user_ids['customer_b']}"
    assert world.call("anonymous", "PATCH", path, json={"name": "X"}).status_code == 401
    for role in ("customer_a", "customer_b", "agent"):
        assert world.call(role, "PATCH", path, json={"role": "admin"}).status_code == 403, role
    assert world.call("admin", "PATCH", "/api/users/999999", json={"name": "X"}).status_code == 404
