"""Automatic mails written for the tests (RFC 5965 ARF, Hotmail JMRP, Amazon SES/SNS JSON,
RFC 3464 DSN, vacation replies), each about a mail of ours named by its Message-ID."""
from __future__ import annotations

import json


def _returned(original_msgid: str, recipient: str) -> str:
    return (f"From: Support <support@example.test>\nTo: {recipient}\nSubject: [#1] We got your request\n"
            f"Message-ID: <{original_msgid}>\nDate: Wed, 02 Dec 2026 07:00:00 +0000\n\nThanks, we are on it.\n")


def arf_report(original_msgid: str, recipient: str, *, report_type: bool = True, rcpt_field: bool = True,
               msgid: str = "<arf1@fbl.example.net>") -> bytes:
    """RFC 5965 §2 layout (with or without report-type, as Yahoo sends it)."""
    param = "report-type=feedback-report; " if report_type else ""
    rcpt = f"Original-Rcpt-To: {recipient}\n" if rcpt_field else ""
    return (f"From: Feedback Loop <fbl@fbl.example.net>\nTo: abuse@example.test\nSubject: FW: [#1] We got your request\n"
            f"Message-ID: {msgid}\nDate: Wed, 02 Dec 2026 08:00:00 +0000\nMIME-Version: 1.0\n"
            f"Content-Type: multipart/report; {param}boundary=\"part\"\n\n"
            f"--part\nContent-Type: text/plain\n\nThis is an email abuse report for a message received from "
            f"192.0.2.1.\n\n--part\nContent-Type: message/feedback-report\n\nFeedback-Type: abuse\n"
            f"User-Agent: ExampleFBL/1.0\nVersion: 1\nOriginal-Mail-From: <support@example.test>\n{rcpt}"
            f"Arrival-Date: Wed, 02 Dec 2026 07:00:05 +0000\nSource-IP: 192.0.2.1\n\n"
            f"--part\nContent-Type: message/rfc822\nContent-Disposition: inline\n\n"
            f"{_returned(original_msgid, recipient)}\n--part--\n").encode()


def hotmail_complaint(original_msgid: str, recipient: str) -> bytes:
    """Hotmail/Outlook's JMRP layout: no report at all, the mail returned with X-HmXmrOriginalRecipient."""
    return (f"From: staff@hotmail.com\nTo: abuse@example.test\nSubject: complaint about message from 192.0.2.1\n"
            f"Message-ID: <jmrp1@hotmail.com>\nDate: Wed, 02 Dec 2026 08:00:00 +0000\nMIME-Version: 1.0\n"
            f"Content-Type: multipart/mixed; boundary=\"jmrp\"\n\n--jmrp\nContent-Type: text/plain\n\n"
            f"This is a Junk Mail Reporting Program report.\n\n--jmrp\nContent-Type: message/rfc822\n"
            f"Content-Disposition: attachment\n\nX-HmXmrOriginalRecipient: <{recipient}>\n"
            f"{_returned(original_msgid, 'someone@hotmail.com')}\n--jmrp--\n").encode()


def ses_notification(kind: str, original_msgid: str, recipient: str, *, sns_envelope: bool = False,
                     bounce_type: str = "Permanent") -> bytes:
    """An Amazon SES notification as an SNS e-mail subscription delivers it (JSON body, long lines)."""
    mail = {"timestamp": "2026-12-02T07:00:00.000Z", "source": "support@example.test",
            "messageId": "0100018c-ses-own-id-000000", "destination": [recipient],
            "headers": [{"name": "Message-ID", "value": f"<{original_msgid}>"}],
            "commonHeaders": {"from": ["support@example.test"], "to": [recipient], "messageId": f"<{original_msgid}>",
                              "subject": "[#1] We got your request"}}
    if kind == "Bounce":
        payload = {"notificationType": "Bounce", "mail": mail, "bounce": {
            "bounceType": bounce_type, "bounceSubType": "General", "timestamp": "2026-12-02T07:00:01.000Z",
            "bouncedRecipients": [{"emailAddress": recipient, "action": "failed", "status": "5.1.1",
                                   "diagnosticCode": "smtp; 550 5.1.1 user unknown"}]}}
    else:
        payload = {"notificationType": "Complaint", "mail": mail, "complaint": {
            "complainedRecipients": [{"emailAddress": recipient}], "complaintFeedbackType": "abuse",
            "timestamp": "2026-12-02T07:00:01.000Z"}}
    body = json.dumps(payload)
    if sns_envelope:
        body = json.dumps({"Type": "Notification", "MessageId": "sns-1", "TopicArn": "arn:aws:sns:eu-west-1:1:ses",
                           "Message": body, "Timestamp": "2026-12-02T07:00:02.000Z"})
    body += ("\n\n--\nIf you wish to stop receiving notifications from this topic, please click or visit the link "
             "below to unsubscribe:\nhttps://sns.eu-west-1.amazonaws.com/unsubscribe.html?SubscriptionArn=x\n")
    return (f"From: AWS Notifications <no-reply@sns.amazonaws.com>\nTo: support@example.test\n"
            f"Subject: AWS Notification Message\nMessage-ID: <sns-{kind.lower()}-{abs(hash(body))}@sns.amazonaws.com>\n"
            f"Date: Wed, 02 Dec 2026 08:00:00 +0000\nContent-Type: text/plain; charset=UTF-8\n\n{body}").encode()


def vacation_reply(subject: str, sender: str = "ann@example.org", headers: str = "", in_reply_to: str = "",
                   msgid: str = "<ooo1@example.org>") -> bytes:
    reply = f"In-Reply-To: <{in_reply_to}>\n" if in_reply_to else ""
    return (f"From: Ann <{sender}>\nTo: support@example.test\nSubject: {subject}\nMessage-ID: {msgid}\n{reply}{headers}"
            f"Date: Wed, 02 Dec 2026 08:00:00 +0000\n\nI am out of the office until Monday.\n").encode()
