"""People with a login: creation, password hashing (argon2id), address validation."""
from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from email_validator import EmailNotValidError, validate_email
from sqlalchemy.orm import Session

from core.errors import SenderError
from core.models import ROLES, Contact
from core.tickets import contact_for

_hasher = PasswordHasher()
MIN_PASSWORD = 8


class InvalidInput(SenderError):
    """A value a person typed is not acceptable; the message says which and why."""


def normalise_email(address: str) -> str:
    """A valid address in normal form, or InvalidInput."""
    try:
        return validate_email(address.strip(), check_deliverability=False, test_environment=True).normalized.lower()
    except EmailNotValidError as exc:
        raise InvalidInput(f"invalid email address: {exc}") from None


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"password must have at least {MIN_PASSWORD} characters")
    return _hasher.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    try:
        return bool(stored_hash) and _hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def add_user(session: Session, email: str, role: str, name: str = "", password: str | None = None) -> Contact:
    """Create the account, or give an existing contact this role, name and password."""
    if role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}")
    contact = contact_for(session, normalise_email(email), name)
    contact.role = role
    if name:
        contact.name = name
    if password is not None:
        contact.password_hash = hash_password(password)
    return contact
