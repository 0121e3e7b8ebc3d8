"""Admins invite agents and admins by address: the account is created (or a contact promoted) and a
mail carries a link to choose a password, valid for INVITE_DAYS; the link is the reset page's."""
from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy.orm import Session

from core import i18n
from core.accounts import InvalidInput, add_user, normalise_email, queue_account_mail
from core.config import Settings
from core.mail import tokens
from core.models import AccountToken, Contact, utcnow
from core.notify import render

log = logging.getLogger(__name__)
INVITE_DAYS = 7
STAFF_ROLES = ("agent", "admin")


def invite(session: Session, settings: Settings, admin: Contact, email: str, role: str, name: str = "") -> Contact:
    """Create or promote the account and mail it a set-password link; InvalidInput for a bad address or role."""
    if admin.role != "admin":
        raise InvalidInput("only admins invite")
    if role not in STAFF_ROLES:
        raise InvalidInput("invite an agent or an admin")
    person = add_user(session, normalise_email(email), role, name=name.strip()[:200])
    person.active = True
    session.flush()
    token, token_hash = tokens.new_link_token()
    # A reset token with an invitation's lifetime: /reset/<token> is where a password is chosen.
    session.add(AccountToken(token_hash=token_hash, contact_id=person.id, purpose="reset",
                             expires_at=utcnow() + timedelta(days=INVITE_DAYS)))
    lang = i18n.language_of(person)
    text = render("invite.txt", name=person.name, role=role, inviter=admin.name or admin.email,
                  link=f"{settings.base_url}/reset/{token}", days=INVITE_DAYS, lang=lang)
    queue_account_mail(session, settings, person, "invite", i18n.translate(
        lang, "You are invited to Postdesk as %(role)s", role=i18n.label(lang, role)), text)
    log.info("contact %s invited as %s by %s", person.id, role, admin.id)
    return person
