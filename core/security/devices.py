"""Device cookies (OWASP's answer to account lock-out): a browser that signed in successfully
gets a signed token naming the account. Failed sign-ins from a trusted device count against
that device only, so an attacker guessing from elsewhere cannot lock the owner out."""
from __future__ import annotations

import hashlib
import hmac
import secrets

DEVICE_COOKIE = "postdesk_device"
DEVICE_DAYS = 180


def _signature(secret: str, login: str, nonce: str) -> str:
    message = f"device\x00{login.lower()}\x00{nonce}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()[:32]


def issue_device_token(secret: str, login: str) -> str:
    """A fresh device token for a browser that just signed in as `login`."""
    nonce = secrets.token_urlsafe(12)
    return f"{nonce}.{_signature(secret, login, nonce)}"


def trusted_device(secret: str, token: str | None, login: str) -> str | None:
    """The device's id when `token` is a valid device token for this login, else None."""
    nonce, _, signature = (token or "").partition(".")
    if not nonce or not signature or len(token or "") > 100:
        return None
    return nonce if hmac.compare_digest(signature, _signature(secret, login, nonce)) else None
