"""People with a login: passwords (argon2id) and their policy, registration, address
verification, password reset, sign-in with throttling, and the first admin.

Each use-case takes a session and writes the mail it causes into the outbox; the caller
commits, so the change and its mail land together. Failed sign-ins are counted in the
throttle table: the caller commits those too, even when it answers with an error.
"""
from __future__ import annotations

import logging
import re
import secrets
import threading
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from email_validator import EmailNotValidError, validate_email
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from core import i18n, throttle
from core.config import Settings
from core.errors import SenderError
from core.mail import tokens
from core.mail.compose import OutgoingMail, build_mail
from core.mail.text_html import text_to_html
from core.models import ROLES, AccountToken, Contact, Outbox, Throttle, Ticket, WebSession, aware, utcnow
from core.notify import render
from core.sessions import end_all_sessions
from core.tickets import contact_for

log = logging.getLogger(__name__)
_hasher = PasswordHasher()  # argon2id with the library's recommended parameters (64 MiB, t=3, p=4)
# Each hash takes 64 MiB: a burst of sign-ins queues here instead of exhausting memory.
_hash_slots = threading.BoundedSemaphore(4)
MIN_PASSWORD = 8
MAX_PASSWORD = 1024
SITE_NAME = "Postdesk support"
TOKEN_LIFETIMES = {"verify": timedelta(hours=24), "reset": timedelta(hours=1)}
LOGIN_WINDOW = timedelta(minutes=15)
ACCOUNT_LIMIT = 5     # failed sign-ins per account per window
IP_LIMIT = 20         # failed sign-ins per client address per window
# Decision: a customer signs in only once the address is confirmed (the mailed link confirms, by POST).
# Tickets belong to contacts by address, so an unconfirmed sign-in would show mail tickets to whoever
# registered that address. Set True only when every customer view hides them until verification.
UNVERIFIED_MAY_SIGN_IN = False
MAIL_WINDOW = timedelta(hours=1)
MAIL_LIMIT = 5        # verification / reset mails per address per hour
FORM_LIMIT = 10       # uses of a mail-sending form (register, reset, resend) per client address per hour

# The most used passwords of the public breach lists (lower case); shorter ones fail the length rule anyway.
COMMON_PASSWORDS = frozenset("""
123456 123456789 12345678 password qwerty123 qwerty1 111111 12345 1234567 123123 1234567890 000000
abc123 654321 iloveyou 1q2w3e4r 1q2w3e4r5t 1q2w3e 123321 qwertyuiop 987654321 password1 password12
password123 password1234 passw0rd p@ssw0rd p@ssword pa55word pa$$word qwerty12 qwerty1234 qwertyui
asdfghjkl asdfghjk asdf1234 zxcvbnm zxcvbnm1 1qaz2wsx 1qaz2wsx3edc qazwsx123 qazwsxedc zaq12wsx
zaq1zaq1 11111111 00000000 12341234 12121212 11223344 112233445566 123qwe123 123abc123 abcd1234
abcdefgh abcdefg1 a1b2c3d4 aa123456 aa12345678 87654321 88888888 99999999 123456789a 12345678a
123456a 1234qwer qwer1234 q1w2e3r4 q1w2e3r4t5 1q2w3e4r5t6y 147258369 159753456 789456123 741852963
123654789 1234554321 0987654321 666666666 777777777 5201314520 iloveyou1 iloveyou2 iloveu123
sunshine sunshine1 princess princess1 football football1 baseball basketball superman batman123
starwars starwars1 pokemon123 whatever trustno1 letmein1 letmein123 welcome1 welcome123 welcome2024
welcome2025 changeme changeme1 changeme123 computer computer1 internet michelle jennifer jessica1
charlie1 charlie123 daniel123 michael1 michael123 jordan23 liverpool chelsea1 arsenal1 manchester
dragon123 monkey123 shadow123 master123 mustang1 maverick jasmine1 butterfly chocolate cookie123
pepper123 ginger123 summer2024 summer2025 winter2024 spring2024 autumn2024 hello123 hello1234
helloworld freedom1 flower123 lovely123 loveyou1 lovelove myspace1 mypassword mypass123 secret123
secret1234 administrator admin123 admin1234 admin12345 adminadmin root1234 toor1234 test1234
test12345 testtest guest123 user1234 login123 default1 access14 qwerty123456 asdasdasd asdasd123
1111111111 2222222222 aaaaaaaa abcabc123 abc12345 qweasdzxc qweasd123 q1w2e3r4t5y6 football123
soccer123 hockey123 yankees1 cowboys1 eagles123 steelers thunder1 tigger123 snoopy123 purple123
banana123 orange123 hunter123 ranger123 killer123 samsung1 iphone123 google123 facebook1 linkedin
matrix123 nintendo pass1234 passpass password! password01 password2 password3 postdesk helpdesk
support123 1234abcd 12qwaszx 1qazxsw2 !qaz2wsx qwe123qwe 123qweasd 123qweasdzxc
""".split())


class InvalidInput(SenderError):
    """A value a person typed is not acceptable; the message says which and why."""


class BadCredentials(SenderError):
    """Unknown address or wrong password: one answer for both, so nobody learns which."""


class AccountDisabled(SenderError):
    """The password is right but an admin switched the account off."""


class NotVerified(SenderError):
    """The password is right but the customer has not confirmed the address yet."""

    def __init__(self, message: str, contact: Contact) -> None:
        super().__init__(message)
        self.contact = contact


class Throttled(SenderError):
    """Too many failures recently; `retry_after` says in how many seconds to try again."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class LinkInvalid(SenderError):
    """A verification or reset link that is unknown, expired or already used."""


@dataclass(frozen=True)
class Registration:
    contact: Contact
    created: bool  # False: the address already had an account and its owner was mailed a note


def normalise_email(address: str) -> str:
    """A valid address in normal form, or InvalidInput."""
    try:
        return validate_email(address.strip(), check_deliverability=False, test_environment=True).normalized.lower()
    except EmailNotValidError as exc:
        raise InvalidInput(f"invalid email address: {exc}") from None


def hash_password(password: str) -> str:
    """The argon2id hash to store (only the length is checked here; see check_new_password)."""
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"password must have at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise InvalidInput(f"password must have at most {MAX_PASSWORD} characters")
    return _hash(password)


def _hash(password: str) -> str:
    with _hash_slots:
        return _hasher.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """True when the password matches the stored hash; False for no hash or a broken one."""
    if not stored_hash:
        return False
    try:
        with _hash_slots:
            return _hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    """Checked against when there is no account, so an unknown address costs as much time as a known one."""
    return _hash(secrets.token_urlsafe(16))


def check_new_password(password: str, email: str) -> None:
    """Refuse a password that is short, among the most common ones, or built on the address; InvalidInput."""
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(i18n.N_("Your password must have at least %(min)s characters.", min=MIN_PASSWORD))
    if len(password) > MAX_PASSWORD:
        raise InvalidInput(i18n.N_("Your password must have at most %(max)s characters.", max=MAX_PASSWORD))
    lowered = password.lower()
    core = re.sub(r"[\d\W_]+$", "", lowered)  # 'Password123!' is still 'password'
    if lowered in COMMON_PASSWORDS or (len(core) >= 4 and core in COMMON_PASSWORDS) or len(set(password)) < 3:
        raise InvalidInput(i18n.N_("This password is among the most commonly used ones; please choose another."))
    local = email.lower().rpartition("@")[0].split("+", 1)[0]
    if len(local) >= 3 and local in lowered:
        raise InvalidInput(i18n.N_("Your password must not contain your email address."))


def add_user(session: Session, email: str, role: str, name: str = "", password: str | None = None) -> Contact:
    """Create the account, or give an existing contact this role, name and password.

    An account an operator gives a password counts as verified: nobody else chose that password.
    """
    if role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}")
    contact = contact_for(session, normalise_email(email), name)
    contact.role = role
    if name:
        contact.name = name
    if password is not None:
        contact.password_hash = hash_password(password)
        contact.email_verified_at = contact.email_verified_at or utcnow()  # an operator vouches for it
    return contact


def ensure_first_admin(session: Session, settings: Settings) -> tuple[Contact, str] | None:
    """On a database without any admin, create admin@<support domain> with a random password.

    Returns the admin and the password to show once (only its hash is stored), or None.
    """
    if session.scalar(select(func.count(Contact.id)).where(Contact.role == "admin")):
        return None
    password = secrets.token_urlsafe(12)
    domain = settings.smtp.addresses[0].rpartition("@")[2]
    admin = add_user(session, f"admin@{domain}", "admin", "Administrator", password)
    admin.active = True
    session.flush()
    log.info("first admin %s created", admin.email)
    return admin, password


def has_account(contact: Contact) -> bool:
    """A contact someone can already sign in as (or staff): registering must not take it over."""
    return bool(contact.password_hash or contact.oidc_subject) or contact.role != "customer" or not contact.active


def register(session: Session, settings: Settings, email: str, password: str, name: str = "",
             language: str | None = None) -> Registration:
    """Create an unverified account (or give a contact known from mail a password) and mail a verification link.

    When the address already has an account, nothing changes: its owner is mailed a note with a reset link.
    """
    address = normalise_email(email)
    check_new_password(password, address)
    password_hash = hash_password(password)  # hashed on both paths, so both take as long
    contact = session.scalar(select(Contact).where(Contact.email == address))
    if contact is not None and has_account(contact):
        if contact.active:
            send_reset_link(session, settings, contact, because_of_registration=True)
        log.info("registration for %s: address already has an account", address)
        return Registration(contact, created=False)
    contact = contact or contact_for(session, address, name.strip()[:200])
    contact.password_hash = password_hash
    contact.language = contact.language or language  # the browser's language, until they choose one
    if name.strip() and not contact.name:
        contact.name = name.strip()[:200]
    session.flush()
    send_verification(session, settings, contact)
    log.info("registration for %s: account %s created, verification sent", address, contact.id)
    return Registration(contact, created=True)


def send_verification(session: Session, settings: Settings, contact: Contact) -> bool:
    """Mail a fresh verification link; False when the address had too many mails this hour."""
    if contact.email_verified_at is not None or not _may_mail(session, contact.email):
        return False
    link = f"{settings.base_url}/verify/{issue_token(session, contact, 'verify')}"
    lang = i18n.language_of(contact)
    text = render("verify.txt", name=contact.name, link=link, hours=24, site_name=_site_name(lang), lang=lang)
    queue_account_mail(session, settings, contact, "verify", i18n.translate(lang, "Confirm your email address"),
                       text)
    return True


def resend_verification(session: Session, settings: Settings, email: str) -> None:
    """A new verification link for an unverified account with this address; silently nothing otherwise."""
    contact = session.scalar(select(Contact).where(Contact.email == normalise_email(email)))
    if contact is not None and contact.active and contact.password_hash:
        send_verification(session, settings, contact)


def verify_email(session: Session, settings: Settings, token: str) -> Contact:
    """Mark the address of the link's account verified (once) and mail a welcome; LinkInvalid otherwise."""
    try:
        contact = _redeem(session, token, "verify")
    except LinkInvalid as exc:
        owner = _token_owner(session, token, "verify")
        if owner is not None and owner.email_verified_at is not None:
            raise LinkInvalid(i18n.N_("Your address is already confirmed: you can sign in.")) from None
        raise exc
    if contact.email_verified_at is None:
        contact.email_verified_at = utcnow()
        earlier = session.scalar(select(func.count(Ticket.id)).where(Ticket.requester_id == contact.id)) or 0
        lang = i18n.language_of(contact)
        text = render("welcome.txt", name=contact.name, earlier=earlier, account_url=f"{settings.base_url}/account",
                      site_name=_site_name(lang), lang=lang)
        queue_account_mail(session, settings, contact, "welcome", i18n.translate(lang, "Welcome to Postdesk support"),
                           text)
        log.info("contact %s verified %s", contact.id, contact.email)
    _retire_tokens(session, contact.id, "verify")
    return contact


def verify_token_owner(session: Session, token: str) -> Contact:
    """The account a verification link would confirm, without using the link up; LinkInvalid otherwise."""
    try:
        return _check_token(session, token, "verify")
    except LinkInvalid:
        owner = _token_owner(session, token, "verify")
        if owner is not None and owner.email_verified_at is not None:
            raise LinkInvalid(i18n.N_("Your address is already confirmed: you can sign in.")) from None
        raise


def _site_name(lang: str | None) -> str:
    return i18n.translate(lang, SITE_NAME)


def request_password_reset(session: Session, settings: Settings, email: str, language: str | None = None) -> None:
    """Mail a reset link when an active contact has this address, else a note that it has no account.

    Either way one mail is queued: the answer takes as long whether or not the account exists."""
    address = normalise_email(email)
    contact = session.scalar(select(Contact).where(Contact.email == address))
    if contact is not None and contact.active:
        send_reset_link(session, settings, contact)
    else:
        _send_no_account_note(session, settings, address, language)


def _send_no_account_note(session: Session, settings: Settings, address: str, lang: str | None) -> None:
    if not _may_mail(session, address):
        return
    tokens.new_link_token()  # the work a reset link costs, so both paths take as long
    text = render("no_account.txt", link=f"{settings.base_url}/register", site_name=_site_name(lang), lang=lang)
    nobody = Contact(email=address, name="")  # never added to the session: only its address is read
    queue_account_mail(session, settings, nobody, "no-account", i18n.translate(lang, "Password reset requested"),
                       text)


def send_reset_link(session: Session, settings: Settings, contact: Contact,
                    because_of_registration: bool = False) -> bool:
    """Mail a link to choose a new password (worded as a note when someone tried to register the address)."""
    if not _may_mail(session, contact.email):
        return False
    link = f"{settings.base_url}/reset/{issue_token(session, contact, 'reset')}"
    lang = i18n.language_of(contact)
    text = render("reset.txt", name=contact.name, link=link, minutes=60, registration=because_of_registration,
                  site_name=_site_name(lang), lang=lang)
    subject = (i18n.translate(lang, "You already have an account") if because_of_registration
               else i18n.translate(lang, "Choose a new password"))
    queue_account_mail(session, settings, contact, "account-exists" if because_of_registration else "reset",
                       subject, text)
    return True


def reset_token_owner(session: Session, token: str) -> Contact:
    """The account a reset link would change, without using the link up; LinkInvalid otherwise."""
    return _check_token(session, token, "reset")


def reset_password(session: Session, token: str, password: str) -> Contact:
    """Set a new password through a reset link and sign the person out everywhere.

    The link proves the mailbox, so the address counts as verified from now on.
    """
    contact = _check_token(session, token, "reset")
    check_new_password(password, contact.email)
    contact = _redeem(session, token, "reset")
    contact.password_hash = hash_password(password)
    contact.email_verified_at = contact.email_verified_at or utcnow()
    end_all_sessions(session, contact.id)
    _retire_tokens(session, contact.id, "reset")
    throttle.clear(session, _account_key(contact.email))
    log.info("contact %s reset the password; every session ended", contact.id)
    return contact


def sign_in(session: Session, email: str, password: str, client: str, device: str | None = None) -> Contact:
    """The active account these credentials open; raises Throttled, BadCredentials, AccountDisabled or NotVerified.

    Failures count against the client address and the account, or, from a trusted `device` (see
    core.security.devices), against that device only: others' guesses never lock the owner out.
    The caller commits the failures too.
    """
    account_key = f"login:device:{device}" if device else _account_key(email)
    client_key = f"login:ip:{client}"
    wait = max(_wait(session, account_key, ACCOUNT_LIMIT), _wait(session, client_key, IP_LIMIT))
    if wait:
        minutes = max(1, (wait + 59) // 60)
        raise Throttled(i18n.N_("Too many failed sign-ins. Please wait %(minutes)s minute(s) and try again, "
                                "or reset your password.", minutes=minutes), wait)
    contact = session.scalar(select(Contact).where(Contact.email == _login_address(email)))
    stored = contact.password_hash if contact is not None and contact.password_hash else None
    if not verify_password(stored or _dummy_hash(), password) or stored is None:
        throttle.hit(session, account_key, LOGIN_WINDOW)
        throttle.hit(session, client_key, LOGIN_WINDOW)
        raise BadCredentials(i18n.N_("Wrong email address or password."))
    if not contact.active:
        raise AccountDisabled(i18n.N_("This account is switched off. Please write to support."))
    throttle.clear(session, account_key)
    if _hasher.check_needs_rehash(stored):
        contact.password_hash = _hash(password)
    if needs_verification(contact):
        raise NotVerified(i18n.N_("Please confirm your email address first: open the link we mailed you. "
                                  "We have just sent you a new one."), contact)
    return contact


def needs_verification(contact: Contact) -> bool:
    """A customer whose address is unconfirmed may not sign in yet (staff are created by an operator)."""
    return contact.role == "customer" and contact.email_verified_at is None and not UNVERIFIED_MAY_SIGN_IN


def limit_form_use(session: Session, form: str, client: str) -> None:
    """Count one use of a mail-sending form by this client address; Throttled beyond FORM_LIMIT an hour."""
    key = f"form:{form}:{client}"
    wait = _wait(session, key, FORM_LIMIT)
    if wait:
        raise Throttled(i18n.N_("Too many requests from your network. Please wait a while and try again."), wait)
    throttle.hit(session, key, MAIL_WINDOW)


def change_password(session: Session, contact: Contact, current: str, new: str, keep: WebSession | None) -> None:
    """Replace the password (the current one must be given when there is one) and end the other sessions."""
    key = f"password:{contact.id}"
    wait = _wait(session, key, ACCOUNT_LIMIT)
    if wait:
        raise Throttled(i18n.N_("Too many wrong passwords. Please wait a few minutes and try again."), wait)
    if contact.password_hash and not verify_password(contact.password_hash, current):
        throttle.hit(session, key, LOGIN_WINDOW)
        raise InvalidInput(i18n.N_("Your current password is not right."))
    check_new_password(new, contact.email)
    contact.password_hash = hash_password(new)
    throttle.clear(session, key)
    others = delete(WebSession).where(WebSession.contact_id == contact.id)
    if keep is not None:
        others = others.where(WebSession.token_hash != keep.token_hash)
    session.execute(others)
    log.info("contact %s changed the password; other sessions ended", contact.id)


def set_preferences(contact: Contact, notify_replies: bool, notify_status: bool) -> None:
    """Which ticket mails the person wants: replies from support, status changes."""
    contact.notify_replies = notify_replies
    contact.notify_status = notify_status


def set_language_and_zone(contact: Contact, language: str, time_zone: str) -> None:
    """The language pages and mails reach the person in, and the zone they read times in
    ('' for either: back to the default, the browser's language and the site's zone)."""
    if language and language not in i18n.LANGUAGES:
        raise InvalidInput(i18n.N_("Choose one of the languages offered."))
    time_zone = time_zone.strip()
    if time_zone and not i18n.valid_time_zone(time_zone):
        raise InvalidInput(i18n.N_("Unknown time zone: use a name such as Europe/Berlin or America/New_York."))
    contact.language = language or None
    contact.time_zone = time_zone or None


def issue_token(session: Session, contact: Contact, purpose: str) -> str:
    """A one-time link token for this account; only its hash is stored."""
    token, token_hash = tokens.new_link_token()
    session.add(AccountToken(token_hash=token_hash, contact_id=contact.id, purpose=purpose,
                             expires_at=utcnow() + TOKEN_LIFETIMES[purpose]))
    return token


def queue_account_mail(session: Session, settings: Settings, contact: Contact, purpose: str, subject: str,
                       text: str) -> Outbox:
    """An automatic mail about the account (not about a ticket) into the outbox."""
    secret, sender = settings.web.secret_key, settings.from_address
    domain = sender.rpartition("@")[2]
    message_id = tokens.make_message_id(secret, 0, domain)
    raw = build_mail(OutgoingMail(
        from_address=sender, to=contact.email, to_name=contact.name, subject=subject, text=text,
        html=text_to_html(text), message_id=message_id, extra_headers=(("X-Postdesk-Loop", tokens.loop_token(secret, domain)),
                                              ("Auto-Submitted", "auto-generated"),
                                              ("X-Auto-Response-Suppress", "All"))))
    row = Outbox(ticket_id=None, purpose=purpose, message_id=message_id, mail_from=sender,
                 rcpt_to=contact.email, raw=raw)
    session.add(row)
    return row


def _login_address(email: str) -> str:
    try:
        return normalise_email(email)
    except InvalidInput:
        # Not an address: still a throttle key, but without what databases refuse (NUL).
        return email.strip().lower().replace("\x00", "")[:320]


def _account_key(email: str) -> str:
    return f"login:account:{_login_address(email)}"


def _wait(session: Session, key: str, limit: int) -> int:
    """Seconds until `key` may try again (0: now)."""
    window = LOGIN_WINDOW if key.startswith(("login:", "password:")) else MAIL_WINDOW
    if not throttle.too_many(session, key, limit, window):
        return 0
    row = session.get(Throttle, key[:400])
    return max(1, int((aware(row.window_start) + window - utcnow()).total_seconds()))


def _may_mail(session: Session, address: str) -> bool:
    """At most MAIL_LIMIT account mails per address and hour: the forms cannot be used to flood a mailbox."""
    key = f"mail:{address}"
    if throttle.too_many(session, key, MAIL_LIMIT, MAIL_WINDOW):
        log.info("no account mail to %s: hourly limit reached", address)
        return False
    throttle.hit(session, key, MAIL_WINDOW)
    return True


def _token_owner(session: Session, token: str, purpose: str) -> Contact | None:
    row = session.get(AccountToken, tokens.hash_link_token(token))
    return session.get(Contact, row.contact_id) if row is not None and row.purpose == purpose else None


def _check_token(session: Session, token: str, purpose: str) -> Contact:
    row = session.get(AccountToken, tokens.hash_link_token(token))
    if row is None or row.purpose != purpose:
        raise LinkInvalid(i18n.N_("This link is not valid: it may be incomplete, or a newer link replaced it."))
    if row.used_at is not None:
        raise LinkInvalid(i18n.N_("This link was already used."))
    if aware(row.expires_at) <= utcnow():
        raise LinkInvalid(i18n.N_("This link has expired."))
    contact = session.get(Contact, row.contact_id)
    if contact is None or not contact.active:
        raise LinkInvalid(i18n.N_("This account is switched off. Please write to support."))
    return contact


def _redeem(session: Session, token: str, purpose: str) -> Contact:
    """Use the token up, atomically: of two concurrent requests only one succeeds."""
    contact = _check_token(session, token, purpose)
    used = session.execute(update(AccountToken).where(
        AccountToken.token_hash == tokens.hash_link_token(token), AccountToken.used_at.is_(None))
        .values(used_at=utcnow()).execution_options(synchronize_session=False))
    if used.rowcount != 1:
        raise LinkInvalid(i18n.N_("This link was already used."))
    return contact


def _retire_tokens(session: Session, contact_id: int, purpose: str) -> None:
    """Older links of the same kind stop working once one of them was used."""
    session.execute(update(AccountToken).where(
        AccountToken.contact_id == contact_id, AccountToken.purpose == purpose, AccountToken.used_at.is_(None))
        .values(used_at=utcnow()).execution_options(synchronize_session=False))
