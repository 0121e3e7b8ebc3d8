"""A customer's language reaches their mail: `postdesk serve` as users start it, mail in over real
SMTP, the acknowledgement caught by the real SMTP sink; on both databases."""
from __future__ import annotations

import smtplib

from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from core.models import Contact
from core.tickets import contact_for
from tests.integration.test_walking_skeleton import _mail, server  # noqa: F401  (the fixture)


def test_acknowledgement_is_german_for_a_customer_whose_language_is_de(server, db_url, sink):  # noqa: F811
    engine = create_engine(db_url)
    with Session(engine) as s:
        contact_for(s, "eva@example.org", "Eva").language = "de"
        s.commit()
    with smtplib.SMTP("127.0.0.1", server.smtp_port) as smtp:
        smtp.send_message(_mail("Drucker brennt", "Es raucht.", sender="eva@example.org"))
    ack = sink.wait_for(1)[0]
    assert ack["Subject"] == "[#1] Drucker brennt"  # the tag threading depends on stays as it is
    text = ack.get_body(("plain",)).get_content()
    html = ack.get_body(("html",)).get_content()
    for part in (text, html):
        assert "Hallo Eva," in part and "vielen Dank für Ihre Nachricht" in part
        assert "Dies ist eine automatische Eingangsbestätigung." in part
        assert "thank you for writing" not in part
    assert "Postdesk-Support" in text
    engine.dispose()


def test_first_mail_with_content_language_de_sets_the_language(server, db_url, sink):  # noqa: F811
    mail = _mail("Rechnung falsch", "Bitte prüfen.", sender="udo@example.org")
    mail["Content-Language"] = "de-DE"
    with smtplib.SMTP("127.0.0.1", server.smtp_port) as smtp:
        smtp.send_message(mail)
    ack = sink.wait_for(1)[0]
    assert "vielen Dank für Ihre Nachricht" in ack.get_body(("plain",)).get_content()
    engine = create_engine(db_url)
    with Session(engine) as s:
        assert s.scalar(select(Contact.language).where(Contact.email == "udo@example.org")) == "de"
    engine.dispose()


def test_mail_without_content_language_stays_english_and_unset(server, db_url, sink):  # noqa: F811
    with smtplib.SMTP("127.0.0.1", server.smtp_port) as smtp:
        smtp.send_message(_mail("Printer", "Help.", sender="liz@example.org"))
    ack = sink.wait_for(1)[0]
    assert "thank you for writing to us" in ack.get_body(("plain",)).get_content()
    engine = create_engine(db_url)
    with Session(engine) as s:
        assert s.scalar(select(Contact.language).where(Contact.email == "liz@example.org")) is None
    engine.dispose()
