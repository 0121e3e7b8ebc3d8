"""Languages and time zones through the real app on SQLite and PostgreSQL: pages in the signed-in
person's language, else the browser's, else English; the account form that chooses language and
zone; times in the reader's zone while the API stays UTC."""
from __future__ import annotations

import re
from datetime import datetime, timezone

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from core.models import Contact, Ticket
from portal.app import create_app
from tests.integration.test_customer_pages import csrf_of, new_ticket, signed_in


@pytest.fixture
def app(desk):
    return create_app(desk.settings, desk.sessions)


def _set(desk, email: str, **values) -> None:
    with desk.sessions() as s:
        s.execute(update(Contact).where(Contact.email == email).values(**values))
        s.commit()


def test_signed_in_person_with_language_de_reads_pages_in_german(app, desk):
    ann = signed_in(app, desk, "ann@example.org")
    new_ticket(desk, "ann@example.org", "Drucker brennt", status="in_progress")
    _set(desk, "ann@example.org", language="de")
    page = ann.get("/my/tickets")
    assert page.status_code == 200
    assert '<html lang="de">' in page.text
    assert "Meine Tickets" in page.text and "in Bearbeitung" in page.text and "Letzte Änderung" in page.text
    assert "Last update" not in page.text
    # the person's choice wins over what the browser asks for
    assert "Meine Tickets" in ann.get("/my/tickets", headers={"Accept-Language": "en-US"}).text


def test_anonymous_visitor_gets_the_accept_language_match(app):
    browser = TestClient(app, headers={"Accept": "text/html"})
    german = browser.get("/new", headers={"Accept-Language": "de-DE,de;q=0.9"})
    assert '<html lang="de">' in german.text
    assert "Ticket eröffnen" in german.text and "Ihre E-Mail-Adresse" in german.text
    preferred = browser.get("/new", headers={"Accept-Language": "fr-FR, de;q=0.5, en;q=0.3"})
    assert "Ticket eröffnen" in preferred.text  # French is not shipped: the next choice, German


@pytest.mark.parametrize("header", ["fr-FR,fr;q=0.9", "", "xx-!!, *;q=0.1", "de;q=0"])
def test_unshipped_or_no_language_falls_back_to_english(app, header):
    browser = TestClient(app, headers={"Accept": "text/html", "Accept-Language": header})
    page = browser.get("/new")
    assert '<html lang="en">' in page.text and "Open a ticket" in page.text


def test_form_errors_and_error_pages_speak_german_and_stay_escaped(app):
    browser = TestClient(app, headers={"Accept": "text/html", "Accept-Language": "de"})
    missing = browser.get("/no-such-page")
    assert missing.status_code == 404 and "Seite nicht gefunden" in missing.text
    form = browser.get("/new")
    answer = browser.post("/new", data={"csrf_token": csrf_of(form.text), "name": "<b>x</b>", "email": "not-an-address",
                                        "subject": "", "description": ""})
    assert answer.status_code in (400, 422)
    assert "<b>x</b>" not in answer.text and "&lt;b&gt;x&lt;/b&gt;" in answer.text


def test_account_form_sets_language_and_time_zone_and_refuses_bad_values(app, desk):
    ann = signed_in(app, desk, "ann@example.org")
    form = ann.get("/account")
    assert "Language and time zone" in form.text and 'value="de"' in form.text
    saved = ann.post("/account", data={"csrf_token": csrf_of(form.text), "action": "language",
                                       "language": "de", "time_zone": "Europe/Berlin"})
    assert saved.status_code == 200 and "Ihre Sprache und Zeitzone sind gespeichert." in saved.text
    assert '<html lang="de">' in saved.text
    bad_zone = ann.post("/account", data={"csrf_token": csrf_of(saved.text), "action": "language",
                                          "language": "de", "time_zone": "Mars/Olympus_Mons"})
    assert bad_zone.status_code == 400 and "Unbekannte Zeitzone" in bad_zone.text
    bad_language = ann.post("/account", data={"csrf_token": csrf_of(saved.text), "action": "language",
                                              "language": "xx", "time_zone": ""})
    assert bad_language.status_code == 400 and "Wählen Sie eine der angebotenen Sprachen." in bad_language.text
    with desk.sessions() as s:
        person = s.query(Contact).filter_by(email="ann@example.org").one()
        assert (person.language, person.time_zone) == ("de", "Europe/Berlin")  # the bad values changed nothing


def test_times_show_in_the_readers_zone_while_the_api_stays_utc(app, desk):
    ann = signed_in(app, desk, "ann@example.org")
    number = new_ticket(desk, "ann@example.org", "Summer time")
    with desk.sessions() as s:
        s.execute(update(Ticket).where(Ticket.id == number).values(
            created_at=datetime(2024, 7, 1, 12, 30, tzinfo=timezone.utc)))
        s.commit()
    utc_page = ann.get(f"/my/tickets/{number}").text
    assert "2024-07-01 12:30 UTC" in utc_page
    _set(desk, "ann@example.org", time_zone="Europe/Berlin")
    berlin = ann.get(f"/my/tickets/{number}").text
    assert "2024-07-01 14:30 CEST" in berlin and "12:30 UTC" not in berlin
    assert 'datetime="2024-07-01T12:30:00' in berlin  # the machine-readable time stays UTC
    api = ann.get(f"/api/tickets/{number}", headers={"Accept": "application/json"}).json()
    assert api["created_at"].startswith("2024-07-01T12:30:00")


def test_api_me_reads_and_changes_language_and_time_zone(app, desk):
    ann = signed_in(app, desk, "ann@example.org")
    csrf = csrf_of(ann.get("/account").text)
    headers = {"Accept": "application/json", "X-CSRF-Token": csrf}
    assert ann.get("/api/auth/me", headers=headers).json()["language"] is None
    changed = ann.patch("/api/auth/me", json={"language": "de", "time_zone": "America/New_York"}, headers=headers)
    assert changed.status_code == 200
    assert (changed.json()["language"], changed.json()["time_zone"]) == ("de", "America/New_York")
    refused = ann.patch("/api/auth/me", json={"time_zone": "Not/AZone"}, headers=headers)
    assert refused.status_code == 400 and "time zone" in refused.json()["detail"]


def test_web_form_stores_the_browsers_language_for_later_mails(app, desk):
    browser = TestClient(app, headers={"Accept": "text/html", "Accept-Language": "de-AT,de;q=0.8"})
    form = browser.get("/new")
    sent = browser.post("/new", data={"csrf_token": csrf_of(form.text), "name": "Bea", "email": "bea@example.org",
                                      "subject": "Frage", "description": "Wie geht das?"})
    assert sent.status_code == 200 and "Vielen Dank" in sent.text
    with desk.sessions() as s:
        assert s.query(Contact).filter_by(email="bea@example.org").one().language == "de"


def test_agent_queue_in_german_and_in_the_agents_zone(app, desk):
    agent = signed_in(app, desk, "agent@example.test", role="agent")
    number = new_ticket(desk, "ann@example.org", "Drucker brennt", status="in_progress")
    with desk.sessions() as s:
        s.execute(update(Ticket).where(Ticket.id == number).values(
            created_at=datetime(2024, 7, 1, 12, 30, tzinfo=timezone.utc)))
        s.commit()
    english = agent.get("/agent/queue").text
    assert "No ticket matches" not in english and "Clear filters" in english and "2024-07-01 12:30 UTC" in english
    _set(desk, "agent@example.test", language="de", time_zone="Europe/Berlin")
    page = agent.get("/agent/queue")
    assert page.status_code == 200 and '<html lang="de">' in page.text
    assert "Warteschlange" in page.text and "Filter zurücksetzen" in page.text and "in Bearbeitung" in page.text
    assert '<span data-testid="total">1</span> Ticket passt' in page.text
    assert "Clear filters" not in page.text and "Keyboard shortcuts" not in page.text
    assert "2024-07-01 14:30 CEST" in page.text and "12:30 UTC" not in page.text
    assert 'datetime="2024-07-01T12:30:00' in page.text  # the machine-readable time stays UTC
    # element ids and form field names are untouched
    assert 'id="f-status" name="status"' in page.text and 'data-testid="status-counts"' in page.text


@pytest.mark.parametrize("path, german", [
    ("/admin/users", "Agent oder Admin einladen"), ("/admin/config", "Aktive Konfiguration"),
    ("/admin/quarantine", "E-Mails in Quarantäne"), ("/admin/automatic", "Automatische E-Mails"),
    ("/admin/jobs", "Gescheiterte Aufträge"), ("/admin/sla", "Warnen bei diesem Anteil eines Ziels (%)"),
    ("/admin/skills", "Neue Fähigkeit"), ("/admin/mailboxes", "Support-Adressen und Postfächer"),
    ("/admin/blocked", "Gesperrte Absender"), ("/agent/stats", "Pro Tag eröffnete Tickets"),
    ("/agent/reports", "Pro Agent"), ("/agent/canned-replies", "Neuer Textbaustein"),
    ("/agent/held", "E-Mails, die auf Freigabe warten"), ("ticket", "Antwort an den Kunden"),
])
def test_staff_pages_in_german(app, desk, path, german):
    admin = signed_in(app, desk, "boss@example.test", role="admin")
    _set(desk, "boss@example.test", language="de", time_zone="Europe/Berlin")
    if path == "ticket":
        path = f"/agent/tickets/{new_ticket(desk, 'ann@example.org', 'Drucker brennt')}"
    page = admin.get(path)
    assert page.status_code == 200 and '<html lang="de">' in page.text
    assert german in page.text


def test_german_agent_reads_history_words_and_notices_in_german(app, desk):
    agent = signed_in(app, desk, "agent@example.test", role="agent")
    number = new_ticket(desk, "ann@example.org", "Drucker brennt")
    english = agent.get(f"/agent/tickets/{number}").text
    assert "<td>created</td>" in english and "<td>web</td>" in english  # English shows the stored words
    _set(desk, "agent@example.test", language="de")
    page = agent.get(f"/agent/tickets/{number}")
    assert "<td>erstellt</td>" in page.text and "<td>Web</td>" in page.text and "<td>created</td>" not in page.text
    # the scripts' sentences come from the page, placeholders left for the script to fill in
    assert 'data-i18n-viewing="{name} sieht sich das Ticket an."' in page.text
    assert 'data-i18n-drafting="Antwort wird entworfen …"' in page.text
    token = csrf_of(page.text)
    tagged = agent.post(f"/agent/tickets/{number}/tags", data={"csrf_token": token, "tags": "drucker"})
    assert "Schlagwörter: — → drucker" in tagged.text and "Schlagwörter gespeichert." in tagged.text
    # a notice made in Python with a value, and an error from a refused merge, both in German
    refused = agent.post(f"/agent/tickets/{number}/merge", data={"csrf_token": token, "into": "<b>999</b>"})
    assert "Es gibt kein Ticket #&lt;b&gt;999&lt;/b&gt;, mit dem zusammengeführt werden könnte." in refused.text
    away = agent.post("/agent/away", data={"csrf_token": token, "away": "yes"})
    assert "Sie sind abwesend: Ihnen werden keine neuen Tickets zugewiesen." in away.text
    assert "You are away" not in away.text
