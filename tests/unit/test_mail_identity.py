"""mail_fingerprint: the same mail over any path is one; any change by its author is another."""
from __future__ import annotations

from core.mail.identity import mail_fingerprint

MAIL = (b"From: Ann <ann@example.org>\r\nTo: support@example.test\r\nSubject: Printer\r\n"
        b"Message-ID: <p1@example.org>\r\nDate: Wed, 02 Dec 2026 07:00:00 +0000\r\n\r\nIt broke.\r\n")


def test_trace_headers_line_endings_and_mbox_line_do_not_make_another_mail():
    relayed = (b"Received: from relay.example.net (relay [192.0.2.1])\r\n\tby mx.example.test; Wed, 2 Dec 2026\r\n"
               b"Return-Path: <ann@example.org>\r\nDelivered-To: support@example.test\r\n"
               b"Authentication-Results: mx.example.test; spf=pass\r\nX-Spam-Status: No, score=0.1\r\n" + MAIL)
    imap_copy = b"From ann@example.org Wed Dec  2 07:00:00 2026\n" + MAIL.replace(b"\r\n", b"\n") + b"\n\n"
    assert mail_fingerprint(relayed) == mail_fingerprint(MAIL) == mail_fingerprint(imap_copy)


def test_same_message_id_with_other_content_is_another_mail():
    assert mail_fingerprint(MAIL.replace(b"It broke.", b"It works again.")) != mail_fingerprint(MAIL)
    assert mail_fingerprint(MAIL.replace(b"Subject: Printer", b"Subject: Scanner")) != mail_fingerprint(MAIL)
    assert mail_fingerprint(MAIL + b"X-Mailer: Foo\r\n") != mail_fingerprint(MAIL)


def test_a_header_block_that_never_ends_is_read_whole():
    assert mail_fingerprint(b"Subject: only headers\r\nX-A: b") != mail_fingerprint(b"Subject: only headers\r\nX-A: c")
