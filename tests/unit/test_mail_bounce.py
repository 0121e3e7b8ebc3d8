"""bounce_report: which recipients failed, for which of our messages; ARF and people are not bounces."""
from __future__ import annotations

from core.mail.bounce import BounceReport, bounce_report
from core.mail.parse import parse_mail


def report(raw: str) -> BounceReport | None:
    data = raw.replace("\n", "\r\n").encode()
    return bounce_report(parse_mail(data), data)


DSN = """\
From: Mail Delivery System <MAILER-DAEMON@mx.example.net>
To: support@example.com
Subject: Undelivered Mail Returned to Sender
Message-ID: <dsn-1@mx.example.net>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="r"

--r
Content-Type: text/plain

I'm sorry to have to inform you that your message could not be delivered.

--r
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net

Original-Recipient: rfc822;Customer@Example.ORG
Final-Recipient: rfc822; customer@mail.example.org
Action: failed
Status: 5.0.0
Diagnostic-Code: smtp; 550 5.1.1 <customer@mail.example.org>: Recipient address rejected

Final-Recipient: rfc822; other@example.org
Action: {action}
Status: {status}

--r
Content-Type: text/rfc822-headers

From: Support <support@example.com>
To: customer@example.org
Subject: [#42] Your printer
Message-ID: <pd.42.abcdef12.0123456789abcdef@example.com>

--r--
"""


def test_dsn_names_failed_recipients_status_and_our_message():
    found = report(DSN.format(action="failed", status="5.2.2"))
    assert found == BounceReport(failed_recipients=("customer@example.org", "other@example.org"),
                                 original_message_id="pd.42.abcdef12.0123456789abcdef@example.com",
                                 status="5.1.1")


def test_delayed_recipients_are_reported_apart_from_failed_ones():
    found = report(DSN.format(action="delayed", status="4.4.7"))
    assert found.failed_recipients == ("customer@example.org",)
    assert found.delayed_recipients == ("other@example.org",)


def test_qmail_bounce_without_dsn():
    found = report("""\
From: MAILER-DAEMON@mail.example.net
To: support@example.com
Subject: failure notice

Hi. This is the qmail-send program at mail.example.net.
I'm afraid I wasn't able to deliver your message to the following addresses.
This is a permanent error; I've given up. Sorry it didn't work out.

<gone@example.net>:
Sorry, no mailbox here by that name. (#5.1.1)

--- Below this line is a copy of the message.

Return-Path: <support@example.com>
From: support@example.com
To: gone@example.net
Message-ID: <pd.7.aaaa.bbbb@example.com>
""")
    assert found == BounceReport(("gone@example.net",), "pd.7.aaaa.bbbb@example.com", "5.1.1")


def test_exim_bounce_uses_x_failed_recipients():
    found = report("""\
From: Mail Delivery System <Mailer-Daemon@exim.example.net>
To: support@example.com
Subject: Mail delivery failed: returning message to sender
X-Failed-Recipients: nobody-here@example.net
Auto-Submitted: auto-replied

This message was created automatically by mail delivery software.

A message that you sent could not be delivered to one or more of its
recipients. This is a permanent error. The following address(es) failed:

  nobody-here@example.net
    SMTP error from remote mail server after RCPT TO:<nobody-here@example.net>:
    550 5.1.1 User unknown
""")
    assert found.failed_recipients == ("nobody-here@example.net",)
    assert found.status == "5.1.1"


def test_a_warning_that_delivery_is_still_tried_is_a_delay():
    found = report("""\
From: postmaster@example.net
To: support@example.com
Subject: Delivery Status Notification (Delay)

This is an automatically generated Delivery Status Notification.
Delivery to the following recipients has been delayed:

     slow@example.net

The server will continue trying to deliver the message for 2 more days.
""")
    assert (found.failed_recipients, found.delayed_recipients) == ((), ("slow@example.net",))


def test_arf_feedback_report_is_not_a_bounce():
    assert report("""\
From: abuse@isp.example
To: support@example.com
Subject: Abuse report
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="f"

--f
Content-Type: text/plain

This is an email abuse report.
--f
Content-Type: message/feedback-report

Feedback-Type: abuse
Original-Rcpt-To: <customer@example.org>
--f--
""") is None


def test_a_person_writing_about_an_undelivered_mail_is_not_a_bounce():
    assert report("""\
From: Carla Customer <carla@example.org>
To: support@example.com
Subject: Re: Undeliverable: my order
In-Reply-To: <pd.1.aaaa.bbbb@example.com>

Hi, my mail to sales could not be delivered, the address does not exist. Can you help?
""") is None


def test_an_ordinary_mail_is_not_a_bounce():
    assert report("From: ann@example.org\nTo: support@example.com\nSubject: Printer\n\nIt is broken.\n") is None
