"""Is this mail a complaint (someone pressed "this is spam" on our mail) or a provider's
machine-readable notification about our mail? Who complained, which recipients failed, about
which of our messages?

Feedback reports: RFC 5965 ARF (multipart/report with a message/feedback-report part, also
when the report-type parameter is missing, as Yahoo and others send it) and Hotmail/Outlook's
older JMRP layout (the complained-about mail returned with X-HmXmrOriginalRecipient).
Provider notifications: Amazon SES bounce/complaint/delivery JSON, bare or inside an SNS
envelope, as an SNS e-mail subscription delivers it.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass

from core.mail.bounce import original_message_id, report_type
from core.mail.charset import decode_bytes
from core.mail.parse import ParsedMail, normalise_msgid

_ADDRESS = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]{1,64}@(?:[\w-]{1,63}\.){1,8}[A-Za-z]{2,24}\b")
_ENCLOSED = ("message/rfc822", "message/global", "text/rfc822-headers", "message/global-headers")
_HOTMAIL_RECIPIENT = re.compile(rb"^X-HmXmrOriginalRecipient[ \t]*:[ \t]*<?([^\s<>]+@[^\s<>]+)>?", re.I | re.M)
_HOTMAIL_SENDER = re.compile(r"@(\w+\.)*(hotmail|outlook|live|msn)\.\w+$", re.IGNORECASE)
_COMPLAINT_SUBJECT = re.compile(r"^\s*complaint about message from\b", re.IGNORECASE)
_SES_SENDER = re.compile(r"@(\w+\.)*(amazonses\.com|amazonaws\.com)$", re.IGNORECASE)
_MAX_HEADER_BLOCK = 256 * 1024
_SES_TYPES = {"bounce", "complaint", "delivery", "send", "reject", "deliverydelay", "open", "click",
              "rendering failure", "subscription"}


@dataclass(frozen=True)
class FeedbackReport:
    feedback_type: str        # abuse, fraud, virus, not-spam… ("abuse" when the layout names none)
    complainants: tuple[str, ...]  # the recipients who complained: mail them no more
    original_message_id: str
    layout: str               # "ARF" | "Hotmail JMRP"


@dataclass(frozen=True)
class ProviderNotice:
    provider: str
    event: str                # Bounce, Complaint, Delivery…
    failed_recipients: tuple[str, ...] = ()
    delayed_recipients: tuple[str, ...] = ()
    complainants: tuple[str, ...] = ()
    original_message_id: str = ""
    status: str = ""
    detail: str = ""


def feedback_report(mail: ParsedMail, raw: bytes) -> FeedbackReport | None:
    """The complaint this mail reports, or None when it is no feedback report."""
    fields_parts = [a for a in mail.attachments if a.content_type == "message/feedback-report"]
    if report_type(mail) == "feedback-report" or fields_parts:
        fields = _fields(b"\n".join(a.data for a in fields_parts))
        complainants = _addresses(fields.get("original-rcpt-to", []) + fields.get("removal-recipient", []))
        complainants = complainants or _enclosed_recipients(mail)
        kind = (fields.get("feedback-type") or ["abuse"])[0].strip().lower() or "abuse"
        msgid = original_message_id(mail, raw) or normalise_msgid(" ".join(fields.get("original-message-id", [])))
        return FeedbackReport(kind, complainants, msgid, "ARF")
    hotmail = _hotmail_recipients(mail)
    if hotmail or (_COMPLAINT_SUBJECT.match(mail.subject) and _HOTMAIL_SENDER.search(mail.from_address)):
        return FeedbackReport("abuse", hotmail or _enclosed_recipients(mail), original_message_id(mail, raw),
                              "Hotmail JMRP")
    return None


def _fields(data: bytes) -> dict[str, list[str]]:
    """RFC 5965 fields, each name with all its values (Original-Rcpt-To may repeat)."""
    fields: dict[str, list[str]] = {}
    text = re.sub(r"\r?\n[ \t]+", " ", decode_bytes(data))
    for line in text.splitlines():
        name, colon, value = line.partition(":")
        if colon and re.fullmatch(r"[\w-]+", name.strip()):
            fields.setdefault(name.strip().lower(), []).append(value.strip())
    return fields


def _addresses(values: list[str]) -> tuple[str, ...]:
    found = (a.group(0).lower() for v in values for a in _ADDRESS.finditer(v))
    return tuple(dict.fromkeys(a for a in found if not _redacted(a)))


def _redacted(address: str) -> bool:
    """Providers blank out the complainant ("redacted@", "xxxxx@"): not an address to act on."""
    local = address.split("@", 1)[0]
    return "redacted" in address or set(local) <= {"x", "X", "*", "."}


def _enclosed_headers(mail: ParsedMail) -> list[bytes]:
    blocks = []
    for attachment in mail.attachments:
        if attachment.content_type in _ENCLOSED:  # its header block only (the body may be megabytes)
            head = attachment.data[:_MAX_HEADER_BLOCK].replace(b"\r\n", b"\n")
            blocks.append(head.split(b"\n\n", 1)[0])
    return blocks


def _enclosed_recipients(mail: ParsedMail) -> tuple[str, ...]:
    """The To: of the returned mail: whom we sent what they complained about."""
    for block in _enclosed_headers(mail):
        found = re.search(rb"^To[ \t]*:(.*(?:\n[ \t].*)*)", block, re.IGNORECASE | re.MULTILINE)
        if found:
            addresses = _addresses([decode_bytes(found.group(1))])
            if addresses:
                return addresses
    return ()


def _hotmail_recipients(mail: ParsedMail) -> tuple[str, ...]:
    values = [m.group(1).decode("ascii", "replace") for block in _enclosed_headers(mail)
              for m in _HOTMAIL_RECIPIENT.finditer(block)]
    values += mail.header_all("X-HmXmrOriginalRecipient")
    return _addresses(values)


# --- provider notifications --------------------------------------------------------------

def provider_notification(mail: ParsedMail) -> ProviderNotice | None:
    """An Amazon SES notification (JSON in the body, bare or in an SNS envelope), or None."""
    text = mail.text.strip()
    if "{" not in text[:2000] or not ("notificationType" in text or "eventType" in text):
        return None
    payload = _json_object(text)
    if payload is None:
        return None
    if payload.get("Type") == "Notification" and isinstance(payload.get("Message"), str):
        payload = _json_object(payload["Message"]) or {}
    event = str(payload.get("notificationType") or payload.get("eventType") or "")
    if event.lower() not in _SES_TYPES or not isinstance(payload.get("mail"), dict):
        return None
    if not (_SES_SENDER.search(mail.from_address) or text.startswith("{")):
        return None  # a person quoting a notification to ask about it wrote words around it
    return _ses_notice(event, payload)


def _json_object(text: str) -> dict | None:
    start = text.find("{")
    if start < 0:
        return None
    try:
        value, _ = json.JSONDecoder().raw_decode(text[start:])
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _ses_notice(event: str, payload: dict) -> ProviderNotice:
    msgid = _ses_message_id(payload["mail"])
    kind = event.lower()
    if kind == "bounce":
        bounce = _dict(payload.get("bounce"))
        people = _recipients(bounce.get("bouncedRecipients"))
        statuses = [str(r.get("status") or "") for r in bounce.get("bouncedRecipients") or [] if isinstance(r, dict)]
        permanent = str(bounce.get("bounceType", "")).lower() == "permanent"
        detail = f"{bounce.get('bounceType', '?')}/{bounce.get('bounceSubType', '?')}"
        return ProviderNotice("Amazon SES", event, people if permanent else (), () if permanent else people, (),
                              msgid, next((s for s in statuses if s), "5.0.0" if permanent else "4.0.0"), detail)
    if kind == "complaint":
        complaint = _dict(payload.get("complaint"))
        return ProviderNotice("Amazon SES", event, complainants=_recipients(complaint.get("complainedRecipients")),
                              original_message_id=msgid, detail=str(complaint.get("complaintFeedbackType") or ""))
    return ProviderNotice("Amazon SES", event, original_message_id=msgid)


def _dict(value: object) -> dict:
    return value if isinstance(value, dict) else {}


def _recipients(value: object) -> tuple[str, ...]:
    items = value if isinstance(value, list) else []
    return _addresses([str(r.get("emailAddress") or "") for r in items if isinstance(r, dict)])


def _ses_message_id(mail: dict) -> str:
    """Our Message-ID as SES echoes it (commonHeaders, else the headers list); SES's own id is not ours."""
    common = _dict(mail.get("commonHeaders"))
    if common.get("messageId"):
        return normalise_msgid(str(common["messageId"]))
    for header in mail.get("headers") or []:
        if isinstance(header, dict) and str(header.get("name", "")).lower() == "message-id":
            return normalise_msgid(str(header.get("value") or ""))
    return ""
