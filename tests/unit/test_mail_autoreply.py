"""automatic_reason: robots are stored but never answered; people are answered."""
from __future__ import annotations

import pytest

from core.mail.autoreply import automatic_reason
from core.mail.parse import parse_mail

OWN = frozenset({"support@example.com"})
LOOP = "example.com;0123456789abcdef"


def reason(headers: str, body: str = "Hello", envelope_from: str | None = None) -> str:
    raw = f"To: support@example.com\n{headers}\n\n{body}\n".replace("\n", "\r\n").encode()
    return automatic_reason(parse_mail(raw), envelope_from, LOOP, OWN)


@pytest.mark.parametrize("headers", [
    "From: Ann <ann@example.org>\nSubject: Printer broken",
    "From: Ann <ann@example.org>\nSubject: Re: [#42] Printer broken\nIn-Reply-To: <pd.42.a.b@example.com>",
    "From: Ann <ann@example.org>\nSubject: Absence request for Friday",
    "From: Ann <ann@example.org>\nSubject: Re: Undeliverable: my order\nIn-Reply-To: <x@example.org>",
    "From: Ann <ann@example.org>\nSubject: Printer\nAuto-Submitted: no",
])
def test_people_are_answered(headers):
    assert reason(headers, "My mail could not be delivered to sales, can you help?") == ""


@pytest.mark.parametrize("headers, expected", [
    ("From: Ann <ann@example.org>\nSubject: Out of office\nAuto-Submitted: auto-replied", "auto-submitted: auto-replied"),
    ("From: Ann <ann@example.org>\nSubject: Automatic reply: Printer", "auto-reply subject"),
    ("From: Ann <ann@example.org>\nSubject: Abwesenheitsnotiz: Drucker", "auto-reply subject"),
    ("From: Ann <ann@example.org>\nSubject: Réponse automatique : imprimante", "auto-reply subject"),
    ("From: Ann <ann@example.org>\nSubject: Re: Printer\nX-Autoreply: yes", "auto-reply header"),
    ("From: Ann <ann@example.org>\nSubject: Printer\nX-Auto-Response-Suppress: All", "x-auto-response-suppress"),
    ("From: news@shop.example\nSubject: Offers\nList-Unsubscribe: <mailto:u@shop.example>", "mailing list"),
    ("From: news@shop.example\nSubject: Offers\nPrecedence: bulk", "precedence"),
    ("From: Ann <ann@example.org>\nSubject: Printer\nReturn-Path: <>", "null return path"),
    ("From: noreply@shop.example\nSubject: Your order", "robot sender"),
    ("From: support@example.com\nSubject: Printer", "sent from our own address"),
    (f"From: Ann <ann@example.org>\nSubject: Printer\nX-Postdesk-Loop: {LOOP}", "our own mail came back"),
    ("From: abuse@isp.example\nSubject: Report\nContent-Type: multipart/report; report-type=feedback-report; "
     "boundary=b", "feedback report (ARF)"),
    ("From: Ann <ann@example.org>\nSubject: Read: Printer\nContent-Type: multipart/report; "
     "report-type=disposition-notification; boundary=b", "read receipt"),
    ("From: postmaster@mx.example.net\nSubject: Delivery Notification\nContent-Type: multipart/report; "
     "report-type=delivery-status; boundary=b", "delivery status notification"),
    ("From: Symantec_AntiVirus@gw.example.net\nSubject: Delivery failure notification", "bounce"),
])
def test_automatic_mail_is_recognised(headers, expected):
    bounce_words = expected in ("bounce", "delivery status notification")
    body = "Your message could not be delivered to the following recipients:" if bounce_words else "Away until Monday."
    assert reason(headers, body) == expected


def test_a_null_envelope_sender_on_the_smtp_door_is_automatic():
    assert reason("From: Ann <ann@example.org>\nSubject: Hi", envelope_from="<>") == "null return path"
