"""Is this mail a delivery failure report (a bounce)? Which recipients failed, for which
of our messages?

Standard reports (RFC 3464 multipart/report; report-type=delivery-status) are read field
by field. The older free-text formats (Postfix, qmail, Exim, Sendmail, Yahoo, Exchange…)
are recognised by their sender and wording, and their failed addresses are the ones the
explanation names before the returned message starts. ARF spam complaints
(report-type=feedback-report) and vacation replies are automatic mail, not bounces.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from core.errors import MessageRejected
from core.mail.charset import decode_bytes
from core.mail.parse import ParsedMail, normalise_msgid, parse_mail

_NOT_BOUNCE_REPORTS = ("feedback-report", "disposition-notification", "global-disposition-notification")
_DSN_TYPES = ("message/delivery-status", "message/global-delivery-status")
_HEADER_TYPES = ("message/rfc822", "message/global", "text/rfc822-headers", "message/global-headers")
_ADDRESS = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]{1,64}@(?:(?:[\w-]{1,63}\.){1,8}[A-Za-z]{2,24}\b|\[[\d.]{7,15}\])")
_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_REPLY_AND_STATUS = re.compile(r"\b[245]\d\d[ -]['\"#]?([245]\.\d{1,3}\.\d{1,3})\b")
_SMTP_CODE = re.compile(r"\b([45])[0-5]\d[ -](?=[245]\.\d|[A-Za-z<#(])")
_REPLY_PREFIX = re.compile(r"^\s*(re|fwd?|aw|wg|tr|rv|sv|vs|antw|odp)\s*(\[\d+\])?\s*:", re.IGNORECASE)
_EXPANDED_FROM = re.compile(r"[^\s@]{1,64}@[^\s@]{1,255}\s*\(expanded from:?\s*<?([^<>\s()@]{1,64}@[^<>\s()]{1,255})>?\s*\)",
                            re.IGNORECASE)
_ROBOT_SENDER = re.compile(
    r"^(mailer[-_.]?daemon|mail[-_.]?daemon|postmaster|post_master|mail[-_.]?delivery[-_.]?(system|subsystem)?|"
    r"mail[-_.]?administrator|mailadmin|mmsc|smtp[-_.]?gateway|.*antivirus.*|.*_smtp_.*|system[-_.]?administrator|"
    r"nobody|root|mail|admin)(@|$)", re.IGNORECASE)
_DAEMON = re.compile(r"^(mailer[-_.]?daemon|postmaster|mail[-_.]?delivery[-_.]?(system|subsystem))@", re.I)
_BOUNCE_SUBJECT = re.compile(
    r"(undeliver|not (be )?delivered|delivery (status notification|fail|failure|problem|report|notification|"
    r"warning|error)|returned mail|returned to sender|mail delivery|failure notice|failure delivery|"
    r"delivery has failed|could not (be )?deliver|unable to deliver|failed mail|mail (system )?error|"
    r"message (you sent )?blocked|rejected|warning: could not|permanent error|non[- ]?delivery|\bndr\b|"
    r"error sending|mail failure|are not member|no such user|user unknown|mailbox (is )?(full|unavailable)|"
    r"non remis|envoi impossible|nicht zustellbar|unzustellbar|no se pudo entregar|"
    r"メールエラー|エラー通知|配信(エラー|不能|失敗)|送信(エラー|失敗)|不達|传输失败|退信|投递失败|無法|无法)",
    re.IGNORECASE)
_BOUNCE_TEXT = re.compile(
    r"(could ?n[o']t be delivered|can ?n[o']t be delivered|undeliverable|was not delivered|not delivered|"
    r"delivery (to the following|has failed|failed|failure)|permanent (fatal )?error|fatal errors?|"
    r"user unknown|unknown user|no such (user|mailbox|address)|does not exist|mailbox (is )?(full|unavailable)|"
    r"full mailbox|unable to deliver|failed to deliver|returned to sender|has been returned|postponed|"
    r"(recipient|address)(es)? (was |were )?rejected|i'm afraid i wasn't able to deliver|"
    r"this is the (qmail-send|postfix|mail delivery)|mail delivery software|not a member|"
    r"message could not|could not deliver|invalid (recipient|address|mailbox)|quota (exceeded|violation)|"
    r"over quota|intended recipient|5[0-5]\d[ -]|5\.\d\.\d+|"
    r"konnte nicht zugestellt|n'a pas pu être (remis|distribué)|no se (pudo|puede) entregar|"
    r"送信できませんでした|配信できませんでした|届きませんでした|无法发送|无法送达|無法送達)",
    re.IGNORECASE)
# A report that says it will keep trying is a warning (delayed); one that gave up is a failure.
_STILL_TRYING = re.compile(
    r"(will (continue to )?(be )?(retr(y|ied)|try)|(attempts?|delivery) will continue|continue to try|"
    r"still (being )?(trying|attempting|retried|retrying)|will keep trying|not yet been delivered|"
    r"has not yet been|\b(delay|delayed|postponed)\b|continue trying|"
    r"warning: (message|could not)|advisory[- ]only|retry (timeout )?in)", re.IGNORECASE)
_GAVE_UP = re.compile(r"(not going to try again|giving up|gave up|will not be retried|no further attempts|"
                      r"permanent(ly)?\b|fatal|in the queue too long)", re.IGNORECASE)
# Where the explanation ends and the returned message (whose addresses are not the failed ones) begins.
_RETURNED_MESSAGE = re.compile(
    r"^[ \t>]*(--.*(original|returned|unsent|copy of|rejected|undelivered|follows|message text|headers)|"
    r".*(below this line is a copy|is a copy of the (original )?message|original message (below|follows?)|"
    r"message (headers )?follows?|unsent message|returned message|text of the (original|returned)|"
    r"message text follows|original message header|lines of your (original )?message)|"
    r"(Received|Return-Path|Message-I[dD]|DKIM-Signature|X-[\w-]+|MIME-Version|Content-Type)[ \t]*:)",
    re.IGNORECASE | re.MULTILINE)
# The line that introduces the failed addresses ("did not reach the following recipient(s):").
_INTRO = re.compile(
    r"following (recipients?|addresses|address\(es\)|recipient\(s\)|destinations?)|did not reach|"
    r"not (be )?delivered to|could not deliver to|delivery to the following|failed recipients?|"
    r"unable to deliver (your )?(message )?to|undeliverable to|permanent fatal errors?|intended recipient|"
    r"to this address", re.IGNORECASE)
_ORIGINAL_MSGID = re.compile(r"^(?:X-Original-Message-ID|Original-Message-ID|Message-ID)[ \t]*:[ \t]*(.*)$",
                             re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True)
class BounceReport:
    failed_recipients: tuple[str, ...]
    original_message_id: str
    status: str  # RFC 3463 status of the first failure (e.g. "5.1.1"), "" when none was given
    delayed_recipients: tuple[str, ...] = ()  # a warning: delivery is still being retried


def bounce_report(mail: ParsedMail, raw: bytes) -> BounceReport | None:
    """The delivery failure this mail reports, or None when it is not a bounce."""
    return _report(mail, raw, look_inside=True)


def _report(mail: ParsedMail, raw: bytes, look_inside: bool) -> BounceReport | None:
    kind = report_type(mail)
    if kind in _NOT_BOUNCE_REPORTS:
        return None
    dsn = [a for a in mail.attachments if a.content_type in _DSN_TYPES]
    if dsn:
        failed, delayed, status = _read_dsn(b"\n\n".join(a.data for a in dsn))
        failed = _merge(failed, _header_addresses(mail))
        if failed or delayed:
            status = status or ("5.0.0" if failed else "4.0.0")
            return BounceReport(failed, original_message_id(mail, raw), status, delayed)
    elif look_inside and looks_like_bounce(mail):
        enclosed = _enclosed_report(mail)  # a gateway wrapped the real report in a message
        if enclosed is not None:
            return enclosed
    if not (kind or looks_like_bounce(mail)):
        return None
    return _free_text_report(mail, raw)


def _enclosed_report(mail: ParsedMail) -> BounceReport | None:
    for attachment in mail.attachments:
        if attachment.content_type in _HEADER_TYPES[:2] and b"delivery-status" in attachment.data[:50_000]:
            try:
                inner = parse_mail(attachment.data)
            except MessageRejected:
                continue
            report = _report(inner, attachment.data, look_inside=False)
            if report is not None:
                return report
    return None


def looks_like_bounce(mail: ParsedMail) -> bool:
    """A delivery failure report by its structure, or by its wording when a robot sent it
    (a person's "Re: undelivered mail" to support is not one)."""
    if report_type(mail) in ("delivery-status", "global-delivery-status"):
        return True
    if any(a.content_type in _DSN_TYPES for a in mail.attachments) or mail.header("X-Failed-Recipients"):
        return True
    subject = _BOUNCE_SUBJECT.search(mail.subject) is not None
    robot = _sent_by_robot(mail)
    if not (subject or robot):
        return False  # a person's mail without a bounce subject: skip the costly body search
    text = _BOUNCE_TEXT.search(mail.text[:5000]) is not None
    if robot:
        return subject or text
    replying = _REPLY_PREFIX.match(mail.subject) and (mail.in_reply_to or mail.references)
    return subject and text and not replying


def _sent_by_robot(mail: ParsedMail) -> bool:
    auto = mail.header("Auto-Submitted").split(";")[0].strip().lower()
    return (_ROBOT_SENDER.match(mail.from_address or mail.from_name) is not None
            or "<>" in mail.header("From") or mail.header("Return-Path").strip() == "<>"
            or auto not in ("", "no"))


def original_message_id(mail: ParsedMail, raw: bytes) -> str:
    """The Message-ID of the mail that bounced: from the returned message or its headers,
    an X-Original-Message-ID header, or a Message-ID line quoted in the report's text."""
    own = mail.message_id
    for attachment in mail.attachments:
        if attachment.content_type in _HEADER_TYPES:
            found = _msgid_in(attachment.data.split(b"\n\n", 1)[0].split(b"\r\n\r\n", 1)[0], own)
            if found:
                return found
    for name in ("X-Original-Message-ID", "Original-Message-ID"):
        if mail.header(name):
            return normalise_msgid(mail.header(name))
    body = _after_headers(raw)
    return _msgid_in(body, own)


def _msgid_in(data: bytes, own: str) -> str:
    text = decode_bytes(data[:2_000_000])
    for match in _ORIGINAL_MSGID.finditer(text):
        value = match.group(1).strip() or text[match.end():match.end() + 200].strip()
        found = normalise_msgid(value)
        if found and found != own:
            return found
    return ""


def _after_headers(raw: bytes) -> bytes:
    for separator in (b"\r\n\r\n", b"\n\n"):
        at = raw.find(separator)
        if at >= 0:
            return raw[at + len(separator):]
    return b""


def report_type(mail: ParsedMail) -> str:
    """report-type of a multipart/report (RFC 6522): "delivery-status", "feedback-report"…;
    "unknown" when it names none, '' for any other mail."""
    ctype = mail.header("Content-Type").lower()
    if not ctype.strip().startswith("multipart/report"):
        return ""
    found = re.search(r"report-type\s*=\s*\"?([\w-]+)", ctype)
    return found.group(1) if found else "unknown"


def _read_dsn(data: bytes) -> tuple[tuple[str, ...], tuple[str, ...], str]:
    """(failed, delayed, first status) from RFC 3464 per-recipient field blocks."""
    failed: list[str] = []
    delayed: list[str] = []
    statuses: list[str] = []
    text = decode_bytes(data).replace("\r\n", "\n")
    for block in re.split(r"\n[ \t]*\n", text):
        fields = _fields(block)
        recipient = _address_of(fields.get("original-recipient", "")) or _address_of(fields.get("final-recipient", ""))
        if not recipient:
            continue
        status = _best_status(fields.get("status", ""), fields.get("diagnostic-code", ""))
        action = fields.get("action", "").strip().lower() or {"5": "failed", "4": "delayed"}.get(status[:1], "")
        if action.startswith("fail"):
            failed.append(recipient)
            statuses.append(status or "5.0.0")
        elif action.startswith("delay"):
            delayed.append(recipient)
            statuses.append(status or "4.0.0")
    return tuple(dict.fromkeys(failed)), tuple(dict.fromkeys(delayed)), (statuses[0] if statuses else "")


def _best_status(status: str, diagnostic: str) -> str:
    """The Status field, unless it is a bare x.0.0 and the diagnostic names the precise code."""
    found = _STATUS.search(status)
    code = found.group(0) if found else ""
    if code and not code.endswith(".0.0"):
        return code
    precise = _status_in(diagnostic)
    return precise if precise and (not code or precise[0] == code[0]) else code


def _status_in(text: str) -> str:
    """The enhanced status code a server gave: the one right after its reply code if any."""
    after_reply = _REPLY_AND_STATUS.search(text)
    found = after_reply or _STATUS.search(text)
    if after_reply:
        return after_reply.group(1)
    return found.group(0) if found else ""


def _fields(block: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in re.sub(r"\n[ \t]+", " ", block).split("\n"):
        name, colon, value = line.partition(":")
        if colon and re.fullmatch(r"[\w-]+", name.strip()):
            fields.setdefault(name.strip().lower(), value.strip())
    return fields


def _address_of(value: str) -> str:
    """'rfc822; <user@example.org>' → 'user@example.org'."""
    value = value.split(";", 1)[-1]
    found = _ADDRESS.search(value)
    return found.group(0).strip(".").lower() if found else ""


def _header_addresses(mail: ParsedMail) -> tuple[str, ...]:
    return tuple(a.group(0).lower() for a in _ADDRESS.finditer(mail.header("X-Failed-Recipients")))


def _merge(first: tuple[str, ...], second: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys((*first, *second)))


def _free_text_report(mail: ParsedMail, raw: bytes) -> BounceReport:
    """A bounce in one of the pre-RFC 3464 formats: its failed addresses are those the
    explanation names, other than the robots' and the ones the bounce is addressed to."""
    text = mail.text[:50_000]
    ignore = {mail.from_address, *mail.to, *mail.cc, *mail.reply_to}
    addresses: tuple[str, ...] = ()
    for explanation in _explanations(text):
        explanation = _EXPANDED_FROM.sub(r"\1", explanation)  # Sendmail names the alias we wrote to
        found = (_clean_address(a.group(0)) for a in _ADDRESS.finditer(explanation))
        addresses = tuple(dict.fromkeys(a for a in found if a not in ignore and not _DAEMON.match(a)))
        if addresses:
            break
    addresses = _merge(_header_addresses(mail), addresses)
    explanation = "\n".join(_explanations(text))
    code = _status_in(explanation)
    if not code:
        smtp = _SMTP_CODE.search(explanation)
        code = f"{smtp.group(1)}.0.0" if smtp else ""
    words = mail.subject + "\n" + explanation
    temporary = _GAVE_UP.search(words) is None and (
        code.startswith("4") or _STILL_TRYING.search(words) is not None)
    failed, delayed = ((), addresses) if temporary else (addresses, ())
    return BounceReport(failed, original_message_id(mail, raw), code or ("4.0.0" if temporary else "5.0.0"),
                        delayed)


def _explanations(text: str):
    """The report's own words, narrowest first: after its "the following recipients…" line,
    then from the top; each ends where the returned message starts."""
    intro = _INTRO.search(text)
    for start in ([intro.end()] if intro else []) + [0]:
        cut = _RETURNED_MESSAGE.search(text, start)
        yield text[start:cut.start() if cut else len(text)]


def _clean_address(address: str) -> str:
    """'SMTP=User@Example.ORG.' (Exchange's X.400 rendering) → 'user@example.org'."""
    return re.sub(r"^(smtp|rfc822)=", "", address.strip(".'\""), flags=re.IGNORECASE).lower()
