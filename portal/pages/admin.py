"""Admin pages: people (role, active, skills), the configuration in use (never its secrets),
quarantined mail to replay, recognised automatic mail, and dead jobs to retry. Every route needs an admin."""
from __future__ import annotations

import logging

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from core import automatic, invites, jobs, quarantine, skills as skill_list, staff as people
from core.i18n import N_
from core.config import ImapMailbox, Settings
from core.errors import SenderError
from core.mail.classify import KINDS
from core.models import ROLES, Contact
from portal.deps import csrf_protect, db, require_role, settings
from portal.render import page

log = logging.getLogger(__name__)
router = APIRouter(prefix="/admin", include_in_schema=False)
admin_only = require_role("admin")
NOTICES = {"saved": N_("Saved."), "replayed": N_("Mail put back in line."), "none": N_("Nothing to replay."),
           "retried": N_("Job will run again shortly."), "not-dead": N_("That job is not dead (any more)."),
           "invited": N_("Invitation sent: the link in it lets them choose a password."),
           "as-person": N_("The mail is back in line as a person's: it opens a ticket within a few seconds.")}


def _back(path: str, notice: str) -> RedirectResponse:
    return RedirectResponse(f"{path}?done={notice}", status_code=303)


def _notice(request: Request) -> str:
    return NOTICES.get(request.query_params.get("done", ""), "")


# ---- people --------------------------------------------------------------------------------------

PEOPLE_PER_PAGE = 50


def _users_page(request: Request, session: Session, role: str, status_code: int = 200, q: str = "", page_no: int = 1,
                **extra):
    role = role if role in ROLES else ""
    found, total = people.find_people(session, role, q, page_no, PEOPLE_PER_PAGE)
    pages = max(1, -(-total // PEOPLE_PER_PAGE))
    return page(request, "admin/users.html", status_code=status_code, people=found, role=role, roles=ROLES,
                skills=people.skills_of(session, [p.id for p in found]), notice=_notice(request), q=q,
                page_no=page_no, pages=pages, total=total, managed=skill_list.skill_names(session), **extra)


@router.get("/users")
def users(request: Request, role: str = "", q: str = "", page: int = Query(1, ge=1, le=1_000_000),
          user: Contact = Depends(admin_only), session: Session = Depends(db)):
    return _users_page(request, session, role, q=q[:200], page_no=page)


@router.post("/users/invite")
def invite_user(request: Request, email: str = Form(""), role: str = Form("agent"), name: str = Form(""),
                user: Contact = Depends(admin_only), _csrf: None = Depends(csrf_protect),
                session: Session = Depends(db), cfg: Settings = Depends(settings)):
    try:
        invites.invite(session, cfg, user, email, role, name)
    except SenderError as exc:
        session.rollback()
        return _users_page(request, session, "", 400, invite_error=str(exc), invite_draft={"email": email,
                                                                                           "name": name, "role": role})
    session.commit()
    return RedirectResponse("/admin/users?done=invited", status_code=303)


@router.post("/users/{contact_id}")
def update_user(contact_id: int, request: Request, role: str = Form(...), active: str = Form(""),
                skills: str = Form(""), back_role: str = Form(""), skill: list[str] = Form([]),
                away: str = Form(""), user: Contact = Depends(admin_only),
                _csrf: None = Depends(csrf_protect), session: Session = Depends(db)):
    person = session.get(Contact, contact_id)
    if person is None:
        raise HTTPException(404, "No such person.")
    try:
        typed = people.parse_skills(skills)       # new ones join the managed list
        skill_list.add_skills(session, typed)
        people.update_person(session, user, person, role=role, active=active == "yes",
                             skills=list(dict.fromkeys([*people.parse_skills(",".join(skill)), *typed])))
        person.away = away == "yes" and role in ("agent", "admin")
    except SenderError as exc:
        session.rollback()
        return _users_page(request, session, back_role, 400, error=str(exc), error_for=contact_id)
    session.commit()
    suffix = f"&role={back_role}" if back_role in ROLES else ""
    return RedirectResponse(f"/admin/users?done=saved{suffix}#u{contact_id}", status_code=303)


# ---- configuration -------------------------------------------------------------------------------

def visible_config(cfg: Settings) -> list[tuple[str, list[tuple[str, str]]]]:
    """What an admin may read of the configuration: addresses, hosts, users, folders; no password or key."""
    out = cfg.outbound
    mailboxes = cfg.imap.enabled_mailboxes
    return [
        ("Support addresses", [("Addresses", ", ".join(cfg.smtp.addresses)), ("Sender (From)", cfg.from_address),
                               ("SMTP door", f"{cfg.smtp.host}:{cfg.smtp.port}"),
                               ("Largest mail", f"{cfg.smtp.max_message_bytes // (1024 * 1024)} MB")]),
        *([(f"IMAP mailbox [{m.section}]", _mailbox_rows(m)) for m in mailboxes]
          or [("IMAP mailbox", [("Host", "not configured")])]),
        ("Outbound mail", [("Smarthost", f"{out.host}:{out.port}" if out.host
                            else f"none — mails are written to {out.outbox_dir}"),
                           ("STARTTLS", "yes" if out.starttls else "no"),
                           ("Authenticates", "yes" if out.username else "no")]),
        ("AI triage", [("Provider in use", cfg.ai_provider), ("Configured as", cfg.ai.provider),
                       ("Model", cfg.ai.model if cfg.ai_provider == "mistral" else "—")]),
        ("Web and database", [("Base URL", cfg.base_url),
                              ("Database", make_url(cfg.database.url).get_backend_name())]),
    ]


def _mailbox_rows(m: ImapMailbox) -> list[tuple[str, str]]:
    return [("Host", f"{m.host}:{m.port}"), ("User", m.username or "—"), ("Folder", m.folder),
            ("TLS", "yes" if m.ssl else "no"), ("Poll every", f"{m.poll_seconds} s"), ("After fetching", m.after)]


@router.get("/config")
def config_page(request: Request, user: Contact = Depends(admin_only), cfg: Settings = Depends(settings)):
    return page(request, "admin/config.html", sections=visible_config(cfg))


# ---- quarantined mail ----------------------------------------------------------------------------

@router.get("/quarantine")
def quarantine_page(request: Request, user: Contact = Depends(admin_only), session: Session = Depends(db)):
    return page(request, "admin/quarantine.html", held=quarantine.quarantined(session), notice=_notice(request))


@router.post("/quarantine/replay-all")
def replay_all(user: Contact = Depends(admin_only), _csrf: None = Depends(csrf_protect),
               session: Session = Depends(db)):
    count = quarantine.requeue(session, None)
    session.commit()
    log.info("admin %s requeued %s quarantined mail(s)", user.id, count)
    return _back("/admin/quarantine", "replayed" if count else "none")


@router.post("/quarantine/{raw_id}/replay")
def replay(raw_id: int, user: Contact = Depends(admin_only), _csrf: None = Depends(csrf_protect),
           session: Session = Depends(db)):
    count = quarantine.requeue(session, [raw_id])
    session.commit()
    log.info("admin %s requeued raw_mail %s", user.id, raw_id)
    return _back("/admin/quarantine", "replayed" if count else "none")


# ---- recognised automatic mail ------------------------------------------------------------------

@router.get("/automatic")
def automatic_page(request: Request, kind: str = "", unmatched: str = "", user: Contact = Depends(admin_only),
                   session: Session = Depends(db)):
    kind = kind if kind in KINDS else ""
    return page(request, "admin/automatic.html", mails=automatic.recognised(session, kind, unmatched == "yes"),
                kind=kind, kinds=KINDS[1:], unmatched=unmatched == "yes", notice=_notice(request))


@router.post("/automatic/{raw_id}/open-ticket")
def open_ticket_from_automatic(raw_id: int, user: Contact = Depends(admin_only), _csrf: None = Depends(csrf_protect),
                               session: Session = Depends(db)):
    done = automatic.treat_as_person(session, raw_id, user.email)
    session.commit()
    log.info("admin %s: raw_mail %s is a person's mail after all (%s)", user.id, raw_id, "requeued" if done else "no-op")
    return _back("/admin/automatic", "as-person" if done else "none")


@router.get("/mail/{raw_id}/raw")
def raw_mail(raw_id: int, user: Contact = Depends(admin_only), session: Session = Depends(db)):
    data = automatic.raw_bytes(session, raw_id)
    if data is None:
        raise HTTPException(404, "No such mail.")
    return Response(data, media_type="message/rfc822",
                    headers={"content-disposition": f'attachment; filename="mail-{raw_id}.eml"'})


# ---- dead jobs -----------------------------------------------------------------------------------

@router.get("/jobs")
def jobs_page(request: Request, user: Contact = Depends(admin_only), session: Session = Depends(db)):
    return page(request, "admin/jobs.html", dead=jobs.dead_jobs(session), notice=_notice(request))


@router.post("/jobs/{job_id}/retry")
def retry_job(job_id: int, user: Contact = Depends(admin_only), _csrf: None = Depends(csrf_protect),
              session: Session = Depends(db)):
    retried = jobs.retry_dead(session, job_id)
    session.commit()
    log.info("admin %s retried job %s: %s", user.id, job_id, retried)
    return _back("/admin/jobs", "retried" if retried else "not-dead")
