"""The admin's view of the mail doors: support addresses and the SMTP door's last mail, each IMAP
mailbox with its last poll, last success and last error. Read-only; admins only."""
from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from sqlalchemy.orm import Session

from core.config import Settings
from core.mailbox_health import last_mail_at, mailbox_statuses
from core.models import Contact
from portal.deps import db, require_role, settings
from portal.render import page

router = APIRouter(prefix="/admin", include_in_schema=False)


@router.get("/mailboxes")
def mailboxes_page(request: Request, user: Contact = Depends(require_role("admin")), session: Session = Depends(db),
                   cfg: Settings = Depends(settings)):
    return page(request, "admin/mailboxes.html", addresses=cfg.smtp.addresses, smtp=f"{cfg.smtp.host}:{cfg.smtp.port}",
                last_smtp=last_mail_at(session, "smtp"), last_imap=last_mail_at(session, "imap"),
                boxes=mailbox_statuses(session, cfg))
