"""HMAC-signed identifiers in our mail: Message-IDs, plus-address reply tokens, portal link tokens.

A signed Message-ID or reply address proves the mail answers something we sent; a guessed
or forged one fails verification and is treated as if it were absent.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from functools import lru_cache

_MSGID_RE = re.compile(r"^pd\.(\d+)\.([a-z0-9]{8,32})\.([a-z0-9]{16})@", re.IGNORECASE)
_REPLY_RE = re.compile(r"^(?P<local>[^+@]+)\+(?P<ticket>\d+)\.(?P<sig>[a-z0-9]{12})@(?P<domain>.+)$", re.IGNORECASE)


def _sig(secret: str, purpose: str, *parts: object, length: int) -> str:
    msg = ":".join([purpose, *map(str, parts)]).encode()
    digest = hmac.new(secret.encode(), msg, hashlib.sha256).digest()
    return base64.b32encode(digest).decode().lower()[:length]


def make_message_id(secret: str, ticket_id: int, domain: str) -> str:
    """A fresh Message-ID (without angle brackets) naming the ticket, signed so it cannot be guessed."""
    nonce = secrets.token_hex(8)
    return f"pd.{ticket_id}.{nonce}.{_sig(secret, 'msgid', ticket_id, nonce, length=16)}@{domain}"


def ticket_of_message_id(secret: str, message_id: str) -> int | None:
    """The ticket a Message-ID of ours names, or None when it is not ours or its signature is wrong."""
    found = _MSGID_RE.match(message_id)
    if not found:
        return None
    ticket, nonce, sig = found.groups()
    expected = _sig(secret, "msgid", int(ticket), nonce, length=16)
    return int(ticket) if hmac.compare_digest(sig.lower(), expected) else None


def sign_reply_address(secret: str, support_address: str, ticket_id: int, recipient: str) -> str:
    """support@d → support+<ticket>.<hmac(ticket, recipient)>@d."""
    local, _, domain = support_address.partition("@")
    sig = _sig(secret, "reply", ticket_id, recipient.strip().lower(), length=12)
    return f"{local}+{ticket_id}.{sig}@{domain}"


def parse_reply_address(address: str) -> tuple[str, int, str] | None:
    """Split support+N.sig@d into (support@d, N, sig); None when it is not such an address."""
    found = _REPLY_RE.match(address.strip())
    if not found:
        return None
    return f"{found['local']}@{found['domain']}".lower(), int(found["ticket"]), found["sig"].lower()


def verify_reply_address(secret: str, address: str, sender: str) -> int | None:
    """The ticket a signed reply address names, when its signature matches the sender."""
    parts = parse_reply_address(address)
    if parts is None:
        return None
    base, ticket, sig = parts
    expected = _sig(secret, "reply", ticket, sender.strip().lower(), length=12)
    return ticket if hmac.compare_digest(sig, expected) else None


@lru_cache(maxsize=16)  # the same for every mail we send
def loop_token(secret: str, domain: str) -> str:
    """The value of our X-Postdesk-Loop header: recognises our own mail coming back."""
    return f"{domain};{_sig(secret, 'loop', domain, length=16)}"


def new_link_token() -> tuple[str, str]:
    """A portal link token (192 random bits) and the hash we store instead of it."""
    token = secrets.token_urlsafe(24)
    return token, hash_link_token(token)


def hash_link_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
