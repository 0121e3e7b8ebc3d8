"""The admin's pages on both databases: people (role, active, skills), the configuration without
its secrets, quarantined mail replayed through the real intake worker, dead jobs retried."""
from __future__ import annotations

import dataclasses
import re

import pytest
from sqlalchemy import select

from core import jobs
from core.config import ImapMailbox
from core.models import AgentSkill, Contact, Job, RawMail, Ticket
from ingest import spool, worker
from tests.integration.test_agent_pages import HTML, app, post_form, signed_in  # noqa: F401 (fixture)
from tests.integration.test_receive_mail import mail


@pytest.fixture
def admin(app, desk):  # noqa: F811
    return signed_in(app, desk, "boss@example.test", "admin")


def person(desk, address: str) -> Contact:
    with desk.sessions() as s:
        return s.scalar(select(Contact).where(Contact.email == address))


def skills(desk, contact_id: int) -> list[str]:
    with desk.sessions() as s:
        return sorted(s.scalars(select(AgentSkill.skill).where(AgentSkill.contact_id == contact_id)))


def test_admin_lists_people_by_role_and_sets_role_active_and_skills(app, admin, desk):  # noqa: F811
    signed_in(app, desk, "ann@example.org", "customer")
    bob = signed_in(app, desk, "bob@example.test", "agent")
    agents = admin.get("/admin/users?role=agent", headers=HTML).text
    assert re.findall(r'data-user="([^"]+)"', agents) == ["bob@example.test"]
    everyone = re.findall(r'data-user="([^"]+)"', admin.get("/admin/users", headers=HTML).text)
    assert set(everyone) == {"ann@example.org", "bob@example.test", "boss@example.test"}

    ann = person(desk, "ann@example.org")
    done = post_form(admin, "/admin/users", f"/admin/users/{ann.id}",
                     {"role": "agent", "active": "yes", "skills": "Printers, vpn ,printers"})
    assert done.status_code == 303
    assert person(desk, "ann@example.org").role == "agent" and skills(desk, ann.id) == ["printers", "vpn"]
    shown = admin.get("/admin/users?role=agent", headers=HTML).text   # typed skills join the list: chips now
    assert 'name="skill" value="printers" checked' in shown and 'name="skill" value="vpn" checked' in shown

    bob_id = person(desk, "bob@example.test").id
    deactivated = post_form(admin, "/admin/users", f"/admin/users/{bob_id}", {"role": "agent", "skills": ""})
    assert deactivated.status_code == 303
    assert person(desk, "bob@example.test").active is False and skills(desk, bob_id) == []
    assert bob.get("/agent/queue", headers=HTML, follow_redirects=False).status_code == 303  # signed out

    refused = post_form(admin, "/admin/users", f"/admin/users/{ann.id}",
                        {"role": "agent", "active": "yes", "skills": "<script>"})
    assert refused.status_code == 400 and "&lt;script&gt;" in refused.text
    assert skills(desk, ann.id) == ["printers", "vpn"]
    assert post_form(admin, "/admin/users", f"/admin/users/{ann.id}",
                     {"role": "wizard", "active": "yes"}).status_code == 400


def test_admin_cannot_lock_themselves_out(admin, desk):
    me = person(desk, "boss@example.test")
    for change in ({"role": "agent", "active": "yes"}, {"role": "admin"}):
        refused = post_form(admin, "/admin/users", f"/admin/users/{me.id}", change)
        assert refused.status_code == 400 and "your own admin role" in refused.text
    assert (person(desk, "boss@example.test").role, person(desk, "boss@example.test").active) == ("admin", True)


def test_config_page_shows_addresses_and_hosts_but_never_secrets(app, desk):  # noqa: F811
    from portal.app import create_app

    cfg = desk.settings
    cfg = dataclasses.replace(
        cfg, smtp=dataclasses.replace(cfg.smtp, addresses=("support@example.test", "help@example.test")),
        imap=dataclasses.replace(cfg.imap, host="imap.example.test", username="desk@example.test",
                                 password="imap-PASSWORD-1", folder="Support", mailboxes=(ImapMailbox(
                                     host="imap2.example.test", username="sales@example.test",
                                     password="imap-PASSWORD-4", name="sales"),)),
        outbound=dataclasses.replace(cfg.outbound, host="smtp.example.test", username="relay",
                                     password="smtp-PASSWORD-2"),
        ai=dataclasses.replace(cfg.ai, provider="auto", api_key="mistral-KEY-3"))
    admin = signed_in(create_app(cfg, desk.sessions), desk, "boss@example.test", "admin")
    page = admin.get("/admin/config", headers=HTML)
    assert page.status_code == 200
    for shown in ("support@example.test", "help@example.test", "imap.example.test:993", "desk@example.test",
                  "Support", "smtp.example.test:25", "mistral", "imap2.example.test:993", "sales@example.test",
                  "[imap.mailboxes.sales]"):
        assert shown in page.text, shown
    for secret in ("imap-PASSWORD-1", "smtp-PASSWORD-2", "mistral-KEY-3", "imap-PASSWORD-4", cfg.web.secret_key):
        assert secret not in page.text


def _quarantined(desk, subject: str, error: str) -> int:
    stored = spool.put(desk.sessions, mail(subject, "body"), "smtp", "ann@example.org", ("support@example.test",))
    with desk.sessions() as s, s.begin():
        row = s.get(RawMail, stored.id)
        row.state, row.attempts, row.last_error = "quarantined", 3, error
    return stored.id


def test_quarantine_lists_held_mail_and_replay_puts_it_back_for_the_worker(admin, desk):
    first = _quarantined(desk, "First", "OperationalError: database is locked")
    second = _quarantined(desk, "Second", "ValueError: <b>odd</b>")
    page = admin.get("/admin/quarantine", headers=HTML).text
    assert re.findall(r'data-raw="(\d+)"', page) == [str(second), str(first)]
    assert "database is locked" in page and "&lt;b&gt;odd&lt;/b&gt;" in page and "<td>smtp</td>" in page

    done = post_form(admin, "/admin/quarantine", f"/admin/quarantine/{first}/replay", {})
    assert done.status_code == 303 and done.headers["location"] == "/admin/quarantine?done=replayed"
    with desk.sessions() as s:
        assert [(r.id, r.state, r.attempts) for r in s.scalars(select(RawMail).order_by(RawMail.id))] == [
            (first, "pending", 0), (second, "quarantined", 3)]
    worker.drain(desk.sessions, desk.settings)  # what the running intake worker does every second
    with desk.sessions() as s:
        assert s.get(RawMail, first).state == "done"
        assert s.scalar(select(Ticket.subject)) == "First"

    assert post_form(admin, "/admin/quarantine", "/admin/quarantine/replay-all", {}).status_code == 303
    with desk.sessions() as s:
        assert s.get(RawMail, second).state == "pending"
    again = post_form(admin, "/admin/quarantine", "/admin/quarantine/replay-all", {})
    assert again.headers["location"] == "/admin/quarantine?done=none"
    assert "Nothing is quarantined." in admin.get("/admin/quarantine", headers=HTML).text


def test_dead_job_is_listed_and_retry_makes_it_due_now(admin, desk):
    with desk.sessions() as s, s.begin():
        dead_id = jobs.enqueue(s, "triage", None)
        alive_id = jobs.enqueue(s, "triage", None)
        dead = s.get(Job, dead_id)
        dead.state, dead.attempts, dead.last_error = "dead", 5, "ProviderError: 503 from Mistral"
    page = admin.get("/admin/jobs", headers=HTML).text
    assert re.findall(r'data-job="(\d+)"', page) == [str(dead_id)] and "503 from Mistral" in page
    done = post_form(admin, "/admin/jobs", f"/admin/jobs/{dead_id}/retry", {})
    assert done.headers["location"] == "/admin/jobs?done=retried"
    with desk.sessions() as s:
        job = s.get(Job, dead_id)
        assert (job.state, job.attempts) == ("pending", 0)
    assert {c.id for c in jobs.claim(desk.sessions)} == {dead_id, alive_id}  # due now, claimed again
    refused = post_form(admin, "/admin/jobs", f"/admin/jobs/{alive_id}/retry", {})
    assert refused.headers["location"] == "/admin/jobs?done=not-dead"
