"""Headers as a lenient client reads them: the sender from Reply-To/Sender when From fails, headers
after an unindented continuation or junk line, raw 8-bit legacy charsets, UTF-7, folded subjects."""
from __future__ import annotations

import pytest

from core.mail.parse import parse_mail


@pytest.mark.parametrize("headers, address, name", [
    ("Reply-To: Ann <ann@example.org>", "ann@example.org", "Ann"),
    ("From: <>\nSender: Bob <bob@example.org>", "bob@example.org", "Bob"),
    ("From: Carl Smith\nReply-To: carl@example.org", "carl@example.org", "Carl Smith"),
    ("From: @@@ broken ;;\nSender: dora@example.org\nReply-To: Dora <dora.r@example.org>", "dora.r@example.org", "Dora"),
    ("From: Erin <erin@example.org>\nReply-To: other@example.org", "erin@example.org", "Erin"),
])
def test_sender_falls_back_from_from_to_reply_to_to_sender(headers, address, name):
    mail = parse_mail(f"{headers}\nTo: support@example.test\nSubject: Hi\n\nHello\n".encode())
    assert (mail.from_address, mail.from_name) == (address, name)


def test_no_sender_anywhere_leaves_it_to_the_envelope():
    assert parse_mail(b"To: support@example.test\nSubject: Hi\n\nHello\n").from_address == ""


def test_an_unindented_continuation_line_keeps_the_headers_after_it():
    raw = (b"From: Ann <ann@example.org>\r\nSubject: A subject wrapped by a broken mailer\r\nwithout its indentation\r\n"
           b"To: support@example.test\r\nMessage-ID: <wrap@example.org>\r\n\r\nBody.\r\n")
    mail = parse_mail(raw)
    assert mail.subject == "A subject wrapped by a broken mailer without its indentation"
    assert (mail.to, mail.message_id, mail.text.strip()) == (("support@example.test",), "wrap@example.org", "Body.")


def test_junk_before_the_first_header_is_skipped():
    raw = b"220 relay.example.net ESMTP ready\nFrom: Ann <ann@example.org>\nSubject: Printer\nTo: x@example.test\n\nHi\n"
    mail = parse_mail(raw)
    assert (mail.from_address, mail.subject, mail.text.strip()) == ("ann@example.org", "Printer", "Hi")


def test_a_body_missing_its_blank_line_is_not_eaten_by_the_headers():
    mail = parse_mail(b"From: ann@example.org\nSubject: Printer\nHello, my printer\nis broken.\n")
    assert mail.subject == "Printer" and "Hello, my printer" in mail.text


def test_raw_shift_jis_header_bytes_are_detected():
    raw = b"From: ann@example.jp\nSubject: " + "お問い合わせの件について".encode("shift_jis") + b"\n\nbody\n"
    assert parse_mail(raw).subject == "お問い合わせの件について"


def test_raw_latin1_header_bytes_stay_western():
    raw = b"From: ann@example.de\nSubject: " + "Grüße aus Köln".encode("latin-1") + b"\n\nbody\n"
    assert parse_mail(raw).subject == "Grüße aus Köln"


def test_utf7_is_decoded_in_headers_and_bodies():
    body = "Grüße – ok".encode("utf-7")
    raw = (b"From: ann@example.org\nSubject: =?utf-7?Q?" + "Grüße".encode("utf-7").replace(b"+", b"+") + b"?=\n"
           b"Content-Type: text/plain; charset=UTF-7\n\n" + body + b"\n")
    mail = parse_mail(raw)
    assert mail.subject == "Grüße" and mail.text.strip() == "Grüße – ok"


@pytest.mark.parametrize("folded", [b"Subject: Printer\r\n\tis broken\r\n", b"Subject: Printer\r\n     is broken\r\n",
                                    b"Subject: Printer \r\n is broken\r\n", b"Subject: Printer\tis broken\r\n"])
def test_folded_subjects_read_as_one_line(folded):
    assert parse_mail(b"From: ann@example.org\r\n" + folded + b"\r\nbody\r\n").subject == "Printer is broken"
