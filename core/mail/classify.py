"""What is this mail? Decided once, before routing, with the evidence: from a person, an
auto-reply, a delivery report, a feedback report, a provider notification, list mail, or our
own mail coming back. Intake reads the verdict instead of asking the mail again.

Order matters: our own loop token first (nothing of ours is ever answered), then the reports,
whose machine-readable parts say exactly what happened (a DSN often carries Auto-Submitted
too), then the looser signs of auto-replies, then list and bulk mail (which includes
notifications marked Auto-Submitted: auto-generated: a monitoring alert or a ServiceNow incident
may well be a case to work on), and last mail that list or mail software wrote itself.
"""
from __future__ import annotations

from dataclasses import dataclass

from core.mail.autoreply import auto_reply_evidence, list_evidence, system_sender_evidence
from core.mail.bounce import bounce_report, original_message_id, report_type
from core.mail.feedback import feedback_report, provider_notification
from core.mail.parse import ParsedMail

PERSON = "person"
AUTO_REPLY = "auto-reply"
DELIVERY_REPORT = "delivery-report"
FEEDBACK_REPORT = "feedback-report"
PROVIDER_NOTIFICATION = "provider-notification"
LIST_MAIL = "list-mail"
OUR_OWN_MAIL = "our-own-mail"
KINDS = (PERSON, AUTO_REPLY, DELIVERY_REPORT, FEEDBACK_REPORT, PROVIDER_NOTIFICATION, LIST_MAIL, OUR_OWN_MAIL)


@dataclass(frozen=True)
class Verdict:
    """What a mail is, why we think so, and what it says about our mail and recipients."""
    kind: str
    evidence: tuple[str, ...] = ()
    original_message_ids: tuple[str, ...] = ()  # the mail(s) of ours it concerns, most telling first
    failed_recipients: tuple[str, ...] = ()     # hard bounces: mail them no more
    delayed_recipients: tuple[str, ...] = ()
    complainants: tuple[str, ...] = ()          # "this is spam": mail them no more
    status: str = ""                            # RFC 3463 status of a delivery report

    @property
    def automatic(self) -> bool:
        """Sent by software: never answered automatically."""
        return self.kind != PERSON

    @property
    def opens_ticket(self) -> bool:
        """People and list mail (a customer may write through a list or a group address) open
        tickets; reports, auto-replies and our own mail only ever join one."""
        return self.kind in (PERSON, LIST_MAIL)

    @property
    def reason(self) -> str:
        """Why it is automatic, in a few words ('' for a person's mail)."""
        return "" if self.kind == PERSON else (self.evidence[0] if self.evidence else self.kind)

    @property
    def do_not_mail(self) -> tuple[str, ...]:
        """Addresses this mail says we must stop writing to (hard bounces and complaints)."""
        return tuple(dict.fromkeys((*self.failed_recipients, *self.complainants)))


def classify(mail: ParsedMail, raw: bytes, *, envelope_from: str | None = None, loop_value: str = "",
             own_addresses: frozenset[str] = frozenset()) -> Verdict:
    """The verdict on one mail. `envelope_from` only when the door saw an envelope (SMTP),
    `loop_value` our X-Postdesk-Loop token, `own_addresses` our support addresses."""
    return (_our_own_mail(mail, loop_value, own_addresses) or _provider_notification(mail)
            or _feedback_report(mail, raw) or _delivery_report(mail, raw) or _auto_reply(mail, raw, envelope_from)
            or _list_mail(mail, envelope_from) or _system_mail(mail) or Verdict(PERSON))


def _replied_to(mail: ParsedMail) -> tuple[str, ...]:
    return tuple(dict.fromkeys((*mail.in_reply_to, *reversed(mail.references))))


def _our_own_mail(mail: ParsedMail, loop_value: str, own: frozenset[str]) -> Verdict | None:
    if loop_value and loop_value in mail.header_all("X-Postdesk-Loop"):
        evidence = "our own mail came back"
    elif mail.from_address and mail.from_address in own:
        evidence = "sent from our own address"
    else:
        return None
    ids = (mail.message_id, *_replied_to(mail)) if mail.message_id else _replied_to(mail)
    return Verdict(OUR_OWN_MAIL, (evidence,), tuple(dict.fromkeys(ids)))


def _provider_notification(mail: ParsedMail) -> Verdict | None:
    notice = provider_notification(mail)
    if notice is None:
        return None
    evidence = f"{notice.provider} notification: {notice.event}" + (f" ({notice.detail})" if notice.detail else "")
    return Verdict(PROVIDER_NOTIFICATION, (evidence,), _ids(notice.original_message_id),
                   notice.failed_recipients, notice.delayed_recipients, notice.complainants, notice.status)


def _feedback_report(mail: ParsedMail, raw: bytes) -> Verdict | None:
    report = feedback_report(mail, raw)
    if report is None:
        return None
    evidence = ("feedback report (ARF)" if report.layout == "ARF" else f"feedback report ({report.layout})",
                f"feedback-type: {report.feedback_type}")
    return Verdict(FEEDBACK_REPORT, evidence, _ids(report.original_message_id), complainants=report.complainants)


def _delivery_report(mail: ParsedMail, raw: bytes) -> Verdict | None:
    report = bounce_report(mail, raw)
    if report is None:
        return None
    structured = report_type(mail) in ("delivery-status", "global-delivery-status")
    evidence = ("delivery status notification" if structured else "bounce", f"status {report.status}")
    return Verdict(DELIVERY_REPORT, evidence, _ids(report.original_message_id), report.failed_recipients,
                   report.delayed_recipients, status=report.status)


def _auto_reply(mail: ParsedMail, raw: bytes, envelope_from: str | None) -> Verdict | None:
    evidence = auto_reply_evidence(mail, envelope_from)
    if not evidence:
        return None
    # RFC 3834 asks for In-Reply-To; read receipts name the original in their report part.
    ids = _replied_to(mail) or _ids(original_message_id(mail, raw) if mail.attachments else "")
    return Verdict(AUTO_REPLY, (evidence,), ids)


def _system_mail(mail: ParsedMail) -> Verdict | None:
    evidence = system_sender_evidence(mail)
    return Verdict(AUTO_REPLY, (evidence,), _replied_to(mail)) if evidence else None


def _list_mail(mail: ParsedMail, envelope_from: str | None) -> Verdict | None:
    evidence = list_evidence(mail, envelope_from)
    return Verdict(LIST_MAIL, (evidence,), _replied_to(mail)) if evidence else None


def _ids(msgid: str) -> tuple[str, ...]:
    return (msgid,) if msgid else ()
