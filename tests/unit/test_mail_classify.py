"""classify(): one verdict per mail, with its evidence and what it says about our mail."""
from __future__ import annotations

import pytest

from core.mail.classify import (AUTO_REPLY, DELIVERY_REPORT, FEEDBACK_REPORT, LIST_MAIL, OUR_OWN_MAIL, PERSON,
                                PROVIDER_NOTIFICATION, classify)
from core.mail.parse import parse_mail
from tests.support.automatic_mail import arf_report, hotmail_complaint, ses_notification, vacation_reply

OURS = "pd.7.abc.def@example.test"
LOOP = "example.test;0123456789abcdef"


def verdict(raw: bytes, envelope_from: str | None = None):
    return classify(parse_mail(raw), raw, envelope_from=envelope_from, loop_value=LOOP,
                    own_addresses=frozenset({"support@example.test"}))


def test_arf_complaint_names_the_complainant_and_our_message():
    got = verdict(arf_report(OURS, "carl@example.org"))
    assert (got.kind, got.complainants, got.original_message_ids) == (FEEDBACK_REPORT, ("carl@example.org",), (OURS,))
    assert got.evidence == ("feedback report (ARF)", "feedback-type: abuse")
    assert got.do_not_mail == ("carl@example.org",) and not got.opens_ticket


def test_arf_without_report_type_and_without_rcpt_field_reads_the_returned_mail():
    got = verdict(arf_report(OURS, "dora@example.org", report_type=False, rcpt_field=False))
    assert (got.kind, got.complainants, got.original_message_ids) == (FEEDBACK_REPORT, ("dora@example.org",), (OURS,))


def test_redacted_complainant_is_not_acted_on():
    got = verdict(arf_report(OURS, "redacted@example.net"))
    assert got.kind == FEEDBACK_REPORT and got.complainants == ()


def test_hotmail_style_complaint_without_any_report_is_a_feedback_report():
    got = verdict(hotmail_complaint(OURS, "erin@hotmail.com"))
    assert (got.kind, got.complainants, got.original_message_ids) == (FEEDBACK_REPORT, ("erin@hotmail.com",), (OURS,))
    assert "Hotmail JMRP" in got.reason


@pytest.mark.parametrize("sns_envelope", [False, True])
def test_ses_bounce_notification_fails_the_recipient(sns_envelope):
    got = verdict(ses_notification("Bounce", OURS, "gone@example.org", sns_envelope=sns_envelope))
    assert (got.kind, got.failed_recipients, got.status) == (PROVIDER_NOTIFICATION, ("gone@example.org",), "5.1.1")
    assert got.original_message_ids == (OURS,) and "Amazon SES" in got.reason


def test_ses_transient_bounce_only_delays():
    got = verdict(ses_notification("Bounce", OURS, "full@example.org", bounce_type="Transient"))
    assert (got.failed_recipients, got.delayed_recipients, got.do_not_mail) == ((), ("full@example.org",), ())


def test_ses_complaint_names_the_complainant():
    got = verdict(ses_notification("Complaint", OURS, "fred@example.org", sns_envelope=True))
    assert (got.kind, got.complainants) == (PROVIDER_NOTIFICATION, ("fred@example.org",))


def test_a_person_quoting_a_notification_is_a_person():
    raw = (b"From: Ann <ann@example.org>\nTo: support@example.test\nSubject: what is this?\n\n"
           b"I got this, what does it mean?\n{\"notificationType\": \"Bounce\", \"mail\": {\"source\": \"x@y.z\"}}\n")
    assert verdict(raw).kind == PERSON


@pytest.mark.parametrize("subject", [
    "Out of Office: Printer", "Automatic reply: [#7] Printer", "Abwesenheitsnotiz: Drucker",
    "Réponse automatique : imprimante", "Respuesta automática: impresora", "Risposta automatica: stampante",
    "Automatisch antwoord: printer", "Resposta automática: impressora", "Automatiskt svar: skrivare",
    "Automatyczna odpowiedź: drukarka", "Автоответ: принтер", "Автоматический ответ: принтер",
    "自動応答: プリンター", "自动回复: 打印机", "Ann Smith is out of the office.", "Mail loop detected",
])
def test_vacation_replies_without_rfc3834_headers_are_auto_replies(subject):
    got = verdict(vacation_reply(subject, in_reply_to=OURS))
    assert (got.kind, got.original_message_ids) == (AUTO_REPLY, (OURS,)), subject


@pytest.mark.parametrize("headers, evidence", [
    ("Auto-Submitted: auto-replied\n", "auto-submitted: auto-replied"),
    ("X-Autoreply: yes\n", "auto-reply header"),
    ("X-Autorespond: vacation\n", "auto-reply header"),
    ("X-Auto-Response-Suppress: OOF, AutoReply\n", "x-auto-response-suppress"),
    ("Precedence: auto_reply\n", "precedence: auto_reply"),
])
def test_auto_reply_headers(headers, evidence):
    got = verdict(vacation_reply("Re: Printer", headers=headers))
    assert (got.kind, got.reason) == (AUTO_REPLY, evidence)


def test_null_envelope_sender_alone_is_automatic_but_still_opens_a_ticket():
    got = verdict(vacation_reply("Re: Printer"), envelope_from="")
    assert (got.kind, got.reason, got.opens_ticket) == (LIST_MAIL, "null return path", True)
    assert verdict(vacation_reply("Automatic reply: Printer"), envelope_from="").kind == AUTO_REPLY


@pytest.mark.parametrize("subject", ["Absence request for Friday", "Re: Out of office hours support?",
                                     "Automatic replies keep coming from your system"])
def test_a_person_writing_about_absence_is_a_person(subject):
    raw = f"From: Ann <ann@example.org>\nTo: support@example.test\nSubject: {subject}\n\nHello\n".encode()
    assert verdict(raw).kind == PERSON, subject


def test_our_own_mail_back_names_its_own_signed_id():
    raw = (f"From: Ann <ann@example.org>\nTo: support@example.test\nSubject: Fwd: [#7] Printer\n"
           f"Message-ID: <{OURS}>\nX-Postdesk-Loop: {LOOP}\n\nforwarded\n").encode()
    got = verdict(raw)
    assert (got.kind, got.original_message_ids, got.reason) == (OUR_OWN_MAIL, (OURS,), "our own mail came back")


def test_list_and_generated_notifications_open_tickets_but_are_automatic():
    for headers in ("List-Id: <users.lists.example.org>\n", "Precedence: bulk\n", "Auto-Submitted: auto-generated\n"):
        got = verdict(vacation_reply("Weekly digest", headers=headers))
        assert (got.kind, got.opens_ticket, got.automatic) == (LIST_MAIL, True, True), headers


def test_dsn_wins_over_its_auto_submitted_header():
    raw = (b"From: MAILER-DAEMON@mx.example.org\nTo: support@example.test\nSubject: Undelivered Mail\n"
           b"Auto-Submitted: auto-replied\nMIME-Version: 1.0\n"
           b"Content-Type: multipart/report; report-type=delivery-status; boundary=B\n\n"
           b"--B\nContent-Type: text/plain\n\nfailed.\n\n--B\nContent-Type: message/delivery-status\n\n"
           b"Reporting-MTA: dns; mx.example.org\n\nFinal-Recipient: rfc822; zed@example.org\nAction: failed\n"
           b"Status: 5.1.1\n\n--B\nContent-Type: text/rfc822-headers\n\nMessage-ID: <" + OURS.encode() + b">\n\n--B--\n")
    got = verdict(raw)
    assert (got.kind, got.failed_recipients, got.original_message_ids, got.status) == (
        DELIVERY_REPORT, ("zed@example.org",), (OURS,), "5.1.1")


def test_a_person_is_a_person():
    got = verdict(b"From: Ann <ann@example.org>\nTo: support@example.test\nSubject: Printer\n\nIt broke.\n")
    assert (got.kind, got.automatic, got.opens_ticket, got.reason, got.evidence) == (PERSON, False, True, "", ())


def test_exchange_2003_ndr_without_a_report_part_is_a_delivery_report():
    raw = (b"From: System Administrator <postmaster@mail.example.com>\nTo: support@example.test\n"
           b"Subject: Undeliverable: [#12] We got your request\nContent-Type: multipart/mixed; boundary=b\n\n"
           b"--b\nContent-Type: text/plain\n\nYour message did not reach some or all of the intended recipients.\n\n"
           b"      Subject:  [#12] We got your request\n\nThe following recipient(s) could not be reached:\n\n"
           b"      'john@example.com' on 3/12/2024 10:00 AM\n            The e-mail account does not exist.\n"
           b"            <mail.example.com #5.1.1>\n\n--b\nContent-Type: message/rfc822\n\n"
           b"From: support@example.test\nTo: john@example.com\nMessage-ID: <" + OURS.encode() + b">\n\nhi\n--b--\n")
    got = verdict(raw)
    assert (got.kind, got.failed_recipients, got.original_message_ids) == (DELIVERY_REPORT, ("john@example.com",),
                                                                            (OURS,))


def test_sendmail_bounce_forwarded_by_a_person_is_still_a_delivery_report():
    raw = (b"From: Ann <ann@example.org>\nTo: support@example.test\nSubject: Fwd: Returned mail: see transcript\n\n"
           b"---------- Forwarded message ---------\nFrom: Mail Delivery Subsystem <MAILER-DAEMON@mx.example.org>\n"
           b"Subject: Returned mail: see transcript for details\n\n"
           b"   ----- The following addresses had permanent fatal errors -----\n<bob@example.net>\n"
           b"    (reason: 550 5.1.1 User unknown)\n")
    got = verdict(raw)
    assert (got.kind, got.failed_recipients) == (DELIVERY_REPORT, ("bob@example.net",))
