"""Pages anyone may open: home, the new-ticket form, a ticket by its signed link (read, reply,
download, a fresh link when it expired), health.

The thread, history, upload and download helpers here are shared with the customer pages.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import quote

from fastapi import APIRouter, Depends, HTTPException, Request
from markupsafe import Markup
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.datastructures import FormData, UploadFile

from core import i18n, notify, queries, throttle, views, workflow
from core.i18n import N_
from core.accounts import InvalidInput, normalise_email
from core.config import Settings
from core.markdown import markdown_markup
from core.models import CATEGORIES, PRIORITIES, Attachment, Blob, Contact, Message, Ticket, aware
from core.workflow import MAX_ATTACHMENT_BYTES, MAX_ATTACHMENTS, InvalidChange
from portal.deps import csrf_protect, current_user, db, settings
from portal.render import browser_language, page

log = logging.getLogger(__name__)
router = APIRouter()

MAX_NAME, MAX_SUBJECT, MAX_TEXT = 200, 200, 20_000
MAX_FORM_BYTES = MAX_ATTACHMENTS * MAX_ATTACHMENT_BYTES + 2 * 1024 * 1024
THROTTLE_WINDOW = timedelta(hours=1)
NEW_TICKETS_PER_EMAIL, NEW_TICKETS_PER_IP = 5, 20
FRESH_LINKS_PER_EMAIL, FRESH_LINKS_PER_IP = 3, 20
FRESH_LINK_TICKETS = 3  # without a known link: fresh links to this many of the person's newest tickets
HONEYPOT = "website"


# --- uploads -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FileKind:
    """An accepted kind of file: the type we store and serve, and how its first bytes look."""
    content_type: str
    signatures: tuple[bytes, ...] = ()  # empty: plain text (no NUL bytes)


_ZIP = (b"PK\x03\x04", b"PK\x05\x06")
_OLE = (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",)
_OOXML = "application/vnd.openxmlformats-officedocument."
ACCEPTED_FILES: dict[str, FileKind] = {
    "png": FileKind("image/png", (b"\x89PNG\r\n\x1a\n",)),
    "jpg": FileKind("image/jpeg", (b"\xff\xd8\xff",)),
    "jpeg": FileKind("image/jpeg", (b"\xff\xd8\xff",)),
    "gif": FileKind("image/gif", (b"GIF87a", b"GIF89a")),
    "webp": FileKind("image/webp", (b"RIFF",)),
    "pdf": FileKind("application/pdf", (b"%PDF-",)),
    "txt": FileKind("text/plain"), "log": FileKind("text/plain"), "csv": FileKind("text/csv"),
    "doc": FileKind("application/msword", _OLE), "xls": FileKind("application/vnd.ms-excel", _OLE),
    "ppt": FileKind("application/vnd.ms-powerpoint", _OLE),
    "docx": FileKind(_OOXML + "wordprocessingml.document", _ZIP),
    "xlsx": FileKind(_OOXML + "spreadsheetml.sheet", _ZIP),
    "pptx": FileKind(_OOXML + "presentationml.presentation", _ZIP),
    "odt": FileKind("application/vnd.oasis.opendocument.text", _ZIP),
    "ods": FileKind("application/vnd.oasis.opendocument.spreadsheet", _ZIP),
    "odp": FileKind("application/vnd.oasis.opendocument.presentation", _ZIP),
    "zip": FileKind("application/zip", _ZIP),
}
ACCEPT_ATTRIBUTE = ",".join(f".{ext}" for ext in ACCEPTED_FILES)
ACCEPTED_TEXT = "images (PNG, JPEG, GIF, WebP), PDF, text (TXT, LOG, CSV), office documents " \
                "(Word, Excel, PowerPoint, OpenDocument) and ZIP"
SERVED_TYPES = frozenset(kind.content_type for kind in ACCEPTED_FILES.values())


class FormProblem(Exception):
    """Something a person sent that we refuse; the page is shown again with this message at `field`."""

    def __init__(self, message: str, status: int = 400, field: str = "") -> None:
        super().__init__(message)
        self.message, self.status, self.field = message, status, field


def clean_filename(name: str) -> str:
    """The last path component, without control characters; never empty."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = "".join(ch for ch in base if ch.isprintable()).strip().strip(".") or "attachment"
    return base[-200:]


def _looks_like(kind: FileKind, data: bytes) -> bool:
    if not kind.signatures:
        return b"\x00" not in data[:8192]
    return data.startswith(kind.signatures)


def read_uploads(form: FormData, field: str = "attachments") -> list[workflow.Upload]:
    """The files chosen in `field`, checked against count, size and the accepted kinds."""
    chosen = [f for f in form.getlist(field) if isinstance(f, UploadFile) and f.filename]
    if len(chosen) > MAX_ATTACHMENTS:
        raise FormProblem(N_("You chose %(count)s files; at most %(max)s can be attached.", count=len(chosen),
                             max=MAX_ATTACHMENTS), 400, field)
    megabytes = MAX_ATTACHMENT_BYTES // (1024 * 1024)
    uploads = []
    for upload in chosen:
        name = clean_filename(upload.filename or "")
        extension = name.rpartition(".")[2].lower() if "." in name else ""
        kind = ACCEPTED_FILES.get(extension)
        if kind is None:
            raise FormProblem(N_("“%(name)s” cannot be attached: we accept %(accepted)s.", name=name, accepted=ACCEPTED_TEXT),
                              400, field)
        data = upload.file.read(MAX_ATTACHMENT_BYTES + 1)
        if len(data) > MAX_ATTACHMENT_BYTES:
            raise FormProblem(N_("“%(name)s” is larger than %(mb)s MB; each file may have at most %(mb)s MB.",
                                 name=name, mb=megabytes),
                              413, field)
        if not data:
            raise FormProblem(N_("“%(name)s” is empty.", name=name), 400, field)
        if not _looks_like(kind, data):
            raise FormProblem(N_("“%(name)s” does not look like a %(type)s file.", name=name, type=extension.upper()),
                              400, field)
        uploads.append(workflow.Upload(filename=name, content_type=kind.content_type, data=data))
    return uploads


async def body_within_limit(request: Request) -> None:
    """Refuse a form larger than all allowed attachments together before reading it."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_FORM_BYTES:
        megabytes = MAX_ATTACHMENT_BYTES // (1024 * 1024)
        raise HTTPException(413, f"This is too much to send at once: at most {MAX_ATTACHMENTS} files "
                                 f"of {megabytes} MB each.")


async def form_data(request: Request) -> FormData:
    return await request.form()


def text_field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def download(attachment: Attachment, data: bytes) -> Response:
    """An attachment as a download: never rendered by the browser, whatever its type claims."""
    media_type = attachment.content_type if attachment.content_type in SERVED_TYPES else "application/octet-stream"
    name = clean_filename(attachment.filename)
    fallback = re.sub(r'[^A-Za-z0-9._ -]', "_", name)
    return Response(data, media_type=media_type, headers={
        "Content-Disposition": f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "Cache-Control": "private, no-store",
    })


def attachment_on(session: Session, ticket_id: int, attachment_id: int) -> tuple[Attachment, bytes] | None:
    """An attachment of a customer-visible message of this ticket, with its bytes; None otherwise."""
    row = session.execute(
        select(Attachment, Blob.data).join(Message, Attachment.message_id == Message.id)
        .join(Blob, Blob.sha256 == Attachment.blob_sha256)
        .where(Attachment.id == attachment_id, Message.ticket_id == ticket_id, Message.direction != "note")).first()
    return (row[0], row[1]) if row else None


# --- the thread as a customer sees it ------------------------------------------------------------

@dataclass(frozen=True)
class ThreadEntry:
    id: int
    direction: str
    sender: str
    created_at: datetime
    text: str
    quoted: str  # the whole original body when it differs from the visible text, else ""
    attachments: tuple[Attachment, ...]
    html: Markup = Markup("")  # support's replies: their Markdown as sanitised HTML (as in the mail)


@dataclass(frozen=True)
class HistoryLine:
    created_at: datetime
    text: str


def thread_entries(ticket: Ticket, viewer_id: int | None, after: int = 0) -> list[ThreadEntry]:
    """The messages a customer may read (internal notes never), oldest first."""
    entries = []
    for m in ticket.messages:
        if m.direction == "note" or m.id <= after:
            continue
        text = m.visible_text or m.body_text
        sender = "Support" if m.direction == "out" else ("You" if viewer_id and m.author_id == viewer_id
                                                         else m.from_address)
        quoted = m.body_text if m.body_text.strip() and m.body_text.strip() != text.strip() else ""
        entries.append(ThreadEntry(m.id, m.direction, sender, aware(m.created_at), text, quoted,
                                   tuple(m.attachments), markdown_markup(text) if m.direction == "out" else Markup("")))
    return entries


def entry_json(entry: ThreadEntry, base: str) -> dict:
    return {"id": entry.id, "direction": entry.direction, "from": entry.sender,
            "created_at": entry.created_at.isoformat(), "text": entry.text, "quoted": entry.quoted,
            "html": str(entry.html),
            "attachments": [{"id": a.id, "filename": a.filename, "size": a.size,
                             "url": f"{base}/attachments/{a.id}"} for a in entry.attachments]}


def messages_json(ticket: Ticket, viewer_id: int | None, after: int, base: str) -> JSONResponse:
    entries = thread_entries(ticket, viewer_id, after)
    return JSONResponse([entry_json(e, base) for e in entries], headers={"Cache-Control": "no-store"})


_SHOWN_EVENTS = {"created", "status", "priority", "category", "subject", "edited", "resolution"}


def _actor(source: str, actor_id: int | None, viewer_id: int | None) -> str:
    if viewer_id and actor_id == viewer_id:
        return " by you"
    if source in ("agent", "admin"):
        return " by support"
    if source in ("rule", "mistral", "offline"):
        return " automatically"
    return ""


def history_lines(session: Session, ticket_id: int, viewer_id: int | None) -> list[HistoryLine]:
    """The ticket's history in words, without what is internal (assignments, routing notes)."""
    lines = []
    for e in views.history(session, ticket_id):
        if e.kind not in _SHOWN_EVENTS:
            continue
        if e.kind == "created":
            by = "You opened" if viewer_id and e.actor_id == viewer_id else "Opened"
            lines.append(HistoryLine(aware(e.created_at),
                                     f"{by} the ticket " + ("on the web" if e.source == "web" else "by mail")))
            continue
        elif e.kind == "edited":
            text = f"{e.field.capitalize() or 'Description'} edited"
        elif e.kind == "resolution":
            text = "Resolution updated"
        elif not e.old_value:
            text = f"{e.kind.capitalize()} set to {e.new_value.replace('_', ' ')}"
        else:
            text = f"{e.kind.capitalize()}: {e.old_value.replace('_', ' ')} → {e.new_value.replace('_', ' ')}"
        lines.append(HistoryLine(aware(e.created_at), text + _actor(e.source, e.actor_id, viewer_id)))
    return lines


def ticket_context(session: Session, ticket: Ticket, viewer_id: int | None, base: str) -> dict:
    """What a customer-facing ticket page shows; `base` is the URL the page's actions hang under."""
    entries = thread_entries(ticket, viewer_id)
    return {"ticket": ticket, "entries": entries, "history": history_lines(session, ticket.id, viewer_id),
            "last_id": entries[-1].id if entries else 0, "base": base, "accept": ACCEPT_ATTRIBUTE,
            "accepted_text": ACCEPTED_TEXT, "max_files": MAX_ATTACHMENTS,
            "max_megabytes": MAX_ATTACHMENT_BYTES // (1024 * 1024)}


def add_reply(session: Session, cfg: Settings, ticket: Ticket, author: Contact, form: FormData) -> Message:
    """A customer's reply from a page's form, with its attachments; committed."""
    text = text_field(form, "text")
    if not text.strip():
        raise FormProblem(N_("Write your reply before sending it."), 400, "text")
    if len(text) > MAX_TEXT:
        raise FormProblem(N_("The reply is too long: at most %(max)s characters.", max="{:,}".format(MAX_TEXT)),
                          400, "text")
    uploads = read_uploads(form)
    message = workflow.reply_as_customer(session, cfg, ticket, author, text, uploads)
    session.commit()
    log.info("ticket %s: reply %s from the portal", ticket.id, message.id)
    return message


def client_ip(request: Request) -> str:
    # run uvicorn with --proxy-headers behind a reverse proxy, so this is the visitor and not the proxy
    return request.client.host if request.client else "unknown"


def too_many_page(request: Request, what: str):
    response = page(request, "public/too_many.html", status_code=429, what=what)
    response.headers["Retry-After"] = str(int(THROTTLE_WINDOW.total_seconds()))
    return response


# --- routes --------------------------------------------------------------------------------------

@router.get("/", include_in_schema=False)
def home(request: Request, cfg: Settings = Depends(settings), user: Contact | None = Depends(current_user)):
    return page(request, "home.html", addresses=cfg.smtp.addresses)


def _new_form(request: Request, values: dict[str, str] | None = None, errors: dict[str, str] | None = None,
              status_code: int = 200, had_files: bool = False):
    return page(request, "public/new.html", status_code=status_code,
                values=values or {}, errors=errors or {}, categories=CATEGORIES, priorities=PRIORITIES,
                accept=ACCEPT_ATTRIBUTE, accepted_text=ACCEPTED_TEXT, max_files=MAX_ATTACHMENTS,
                max_megabytes=MAX_ATTACHMENT_BYTES // (1024 * 1024), had_files=had_files,
                honeypot=HONEYPOT)


@router.get("/new", include_in_schema=False)
def new_ticket_form(request: Request, user: Contact | None = Depends(current_user)):
    values = {"name": user.name, "email": user.email} if user else {}
    return _new_form(request, values)


def _new_ticket_problems(values: dict[str, str]) -> dict[str, str]:
    errors = {}
    if not values["name"]:
        errors["name"] = N_("Enter your name.")
    elif len(values["name"]) > MAX_NAME:
        errors["name"] = N_("The name is too long: at most %(max)s characters.", max=MAX_NAME)
    if not values["email"]:
        errors["email"] = N_("Enter your email address, for example name@example.org.")
    else:
        try:
            values["email"] = normalise_email(values["email"])
        except InvalidInput:
            errors["email"] = N_("This is not a valid email address; enter it as name@example.org.")
    if not values["subject"]:
        errors["subject"] = N_("Enter a subject: a few words saying what it is about.")
    elif len(values["subject"]) > MAX_SUBJECT:
        errors["subject"] = N_("The subject is too long: at most %(max)s characters.", max=MAX_SUBJECT)
    if not values["description"].strip():
        errors["description"] = N_("Describe your request.")
    elif len(values["description"]) > MAX_TEXT:
        errors["description"] = N_("The description is too long: at most %(max)s characters.",
                                   max="{:,}".format(MAX_TEXT))
    if values["category"] not in ("", *CATEGORIES):
        errors["category"] = N_("Choose a category from the list.")
    if values["priority"] not in ("", *PRIORITIES):
        errors["priority"] = N_("Choose a priority from the list.")
    return errors


def _thanks_signature(cfg: Settings, ticket_id: int) -> str:
    return hmac.new(cfg.web.secret_key.encode(), f"thanks:{ticket_id}".encode(), hashlib.sha256).hexdigest()[:24]


@router.post("/new", include_in_schema=False, dependencies=[Depends(body_within_limit), Depends(csrf_protect)])
def new_ticket(request: Request, form: FormData = Depends(form_data), session: Session = Depends(db),
               cfg: Settings = Depends(settings)):
    ip_key = f"new-ticket:ip:{client_ip(request)}"
    if text_field(form, HONEYPOT):
        log.info("new-ticket form: honeypot filled from %s, nothing created", client_ip(request))
        throttle.hit(session, ip_key, THROTTLE_WINDOW)
        session.commit()
        return RedirectResponse("/new/thanks", status_code=303)
    values = {name: text_field(form, name).strip() for name in ("name", "email", "subject", "category", "priority")}
    values["description"] = text_field(form, "description")
    had_files = any(isinstance(f, UploadFile) and f.filename for f in form.getlist("attachments"))
    errors = _new_ticket_problems(values)
    email_key = f"new-ticket:email:{values['email']}"
    if throttle.too_many(session, ip_key, NEW_TICKETS_PER_IP, THROTTLE_WINDOW) or (
            "email" not in errors and throttle.too_many(session, email_key, NEW_TICKETS_PER_EMAIL, THROTTLE_WINDOW)):
        log.info("new-ticket form: too many from %s", client_ip(request))
        return too_many_page(request, "new tickets")
    status = 400
    try:
        uploads = read_uploads(form)
    except FormProblem as problem:
        errors[problem.field], status, uploads = problem.message, problem.status, []
    if errors:
        return _new_form(request, values, errors, status, had_files)
    try:
        ticket = workflow.open_from_web(session, cfg, email=values["email"], name=values["name"],
                                        subject=values["subject"], description=values["description"],
                                        category=values["category"] or None, priority=values["priority"] or None,
                                        uploads=uploads, language=browser_language(request))
    except InvalidChange as exc:
        session.rollback()
        return _new_form(request, values, {"form": str(exc)}, 400, had_files)
    throttle.hit(session, ip_key, THROTTLE_WINDOW)
    throttle.hit(session, email_key, THROTTLE_WINDOW)
    session.commit()
    log.info("ticket %s opened from the web form", ticket.id)
    return RedirectResponse(f"/new/thanks?ticket={ticket.id}&sig={_thanks_signature(cfg, ticket.id)}",
                            status_code=303)


@router.get("/new/thanks", include_in_schema=False)
def new_ticket_thanks(request: Request, ticket: str = "", sig: str = "", cfg: Settings = Depends(settings),
                      user: Contact | None = Depends(current_user)):
    number = int(ticket) if ticket.isdigit() and hmac.compare_digest(
        sig, _thanks_signature(cfg, int(ticket))) else None
    return page(request, "public/thanks.html", number=number)


def _link_problem(session: Session, token: str) -> HTTPException:
    if queries.access_link(session, token) is not None:
        return HTTPException(410, "This link has expired or was withdrawn.")
    return HTTPException(404, "This link is unknown, expired or revoked.")


def _unusable_link_page(request: Request, token: str, problem: HTTPException, errors: dict | None = None,
                        email: str = "", status_code: int | None = None):
    expired = problem.status_code == 410
    return _private(page(request, "public/link_unusable.html", status_code=status_code or problem.status_code,
                         expired=expired, token=token if expired else "", errors=errors or {}, email=email))


def _private(response: Response) -> Response:
    """A page reached by a secret link: kept out of shared caches and search engines."""
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    return response


def _link_page(request: Request, session: Session, token: str, access: views.LinkAccess, status_code: int = 200,
               reply_text: str = "", problem: FormProblem | None = None):
    context = ticket_context(session, access.ticket, access.contact_id, f"/t/{token}")
    return _private(page(request, "public/ticket.html", status_code=status_code, reply_text=reply_text,
                         reply_error=problem, **context))


@router.get("/t/{token}", include_in_schema=False)
def ticket_by_link(token: str, request: Request, session: Session = Depends(db),
                   user: Contact | None = Depends(current_user)):
    access = views.ticket_by_link(session, token)
    if access is None:
        return _unusable_link_page(request, token, _link_problem(session, token))
    return _link_page(request, session, token, access)


@router.post("/t/resend", include_in_schema=False, dependencies=[Depends(body_within_limit), Depends(csrf_protect)])
def resend_link(request: Request, form: FormData = Depends(form_data), session: Session = Depends(db),
                cfg: Settings = Depends(settings)):
    token = text_field(form, "token")
    raw_email = text_field(form, "email").strip()
    try:
        email = normalise_email(raw_email)
    except InvalidInput:
        return _unusable_link_page(request, token, _link_problem(session, token),
                                   {"email": "Enter the email address you wrote from, for example name@example.org."},
                                   raw_email, status_code=400)
    ip_key, email_key = f"fresh-link:ip:{client_ip(request)}", f"fresh-link:email:{email}"
    if (throttle.too_many(session, ip_key, FRESH_LINKS_PER_IP, THROTTLE_WINDOW)
            or throttle.too_many(session, email_key, FRESH_LINKS_PER_EMAIL, THROTTLE_WINDOW)):
        return too_many_page(request, "fresh links")
    throttle.hit(session, ip_key, THROTTLE_WINDOW)
    throttle.hit(session, email_key, THROTTLE_WINDOW)
    sent = 0
    for ticket in _tickets_to_relink(session, email, token):
        link = notify.create_access_link(session, cfg, ticket, ticket.requester)
        lang = i18n.language_of(ticket.requester)
        text = notify.render("fresh_link.txt", ticket=ticket, name=ticket.requester.name, link=link,
                             days=cfg.web.link_days, lang=lang)
        notify.queue_mail(session, cfg, ticket, ticket.requester, purpose="link",
                          subject=notify.tagged_subject(ticket, i18n.translate(
                              lang, "Your link: %(subject)s", subject=ticket.subject)), text=text,
                          answering=None, automatic="auto-generated")
        sent += 1
    session.commit()
    log.info("fresh link asked from %s: %s mail(s)", client_ip(request), sent)
    # the same answer whether or not the address has tickets: the form must not tell who writes to us
    return page(request, "public/link_sent.html")


def _tickets_to_relink(session: Session, email: str, token: str) -> list[Ticket]:
    """The ticket of the expired link when `email` requested it; without a known link, their newest tickets."""
    link = queries.access_link(session, token) if token else None
    if link is not None:
        ticket = session.get(Ticket, link.ticket_id)
        wanted = [ticket] if ticket is not None and ticket.requester.email == email else []
    else:
        wanted = list(session.scalars(select(Ticket).join(Contact, Ticket.requester_id == Contact.id)
                                      .where(Contact.email == email)
                                      .order_by(Ticket.updated_at.desc(), Ticket.id.desc()).limit(FRESH_LINK_TICKETS)))
    return [t for t in wanted if not t.requester.undeliverable]


@router.post("/t/{token}/reply", include_in_schema=False,
             dependencies=[Depends(body_within_limit), Depends(csrf_protect)])
def reply_by_link(token: str, request: Request, form: FormData = Depends(form_data), session: Session = Depends(db),
                  cfg: Settings = Depends(settings)):
    access = views.ticket_by_link(session, token)
    if access is None:
        return _unusable_link_page(request, token, _link_problem(session, token))
    author = session.get(Contact, access.contact_id)
    try:
        message = add_reply(session, cfg, access.ticket, author, form)
    except (FormProblem, InvalidChange) as exc:
        session.rollback()
        problem = exc if isinstance(exc, FormProblem) else FormProblem(str(exc), 400, "text")
        access = views.ticket_by_link(session, token)
        return _link_page(request, session, token, access, problem.status, text_field(form, "text"), problem)
    return RedirectResponse(f"/t/{token}#m{message.id}", status_code=303)


def _access(session: Session, token: str) -> views.LinkAccess:
    access = views.ticket_by_link(session, token)
    if access is None:
        raise _link_problem(session, token)
    return access


@router.get("/t/{token}/attachments/{attachment_id:int}", include_in_schema=False)
def attachment_by_link(token: str, attachment_id: int, session: Session = Depends(db)):
    found = attachment_on(session, _access(session, token).ticket.id, attachment_id)
    if found is None:
        raise HTTPException(404, "No such attachment on this ticket.")
    return download(*found)


@router.get("/t/{token}/messages.json", include_in_schema=False)
def messages_by_link(token: str, after: int = 0, session: Session = Depends(db)):
    access = _access(session, token)
    return messages_json(access.ticket, access.contact_id, after, f"/t/{token}")


@router.get("/healthz")
def healthz(session: Session = Depends(db)) -> dict:
    return {"status": "ok", "quarantined": views.quarantine_count(session)}
