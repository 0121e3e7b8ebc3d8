"""The sender-authentication verdict of a spooled mail, decided before it is stored: our own
DKIM/SPF/DMARC checks for mail that reached our SMTP door directly, the Authentication-Results of
a trusted MTA for mail it handed over (and for SMTP when such a header is there)."""
from __future__ import annotations

import threading

from core.config import Settings
from core.mail.parse import ParsedMail
from core.sender_auth import AuthVerdict, SenderAuthenticator, verdict_from_results
from core.sender_auth.dns import CachingResolver
from ingest.spool import Pending

_lock = threading.Lock()
_authenticators: dict[tuple, SenderAuthenticator] = {}


def authenticator(settings: Settings) -> SenderAuthenticator:
    """One per DNS configuration, kept for the process: its cache outlives a batch."""
    key = (settings.intake.dns_servers, settings.intake.dns_timeout_seconds)
    with _lock:
        found = _authenticators.get(key)
        if found is None:
            found = _authenticators[key] = SenderAuthenticator(
                CachingResolver(settings.intake.dns_servers, settings.intake.dns_timeout_seconds))
        return found


def verdict_for(settings: Settings, row: Pending, mail: ParsedMail) -> AuthVerdict:
    trusted = verdict_from_results(mail.header_all("Authentication-Results"), settings.intake.trusted_authserv_ids,
                                   mail.from_address)
    if trusted.checked or row.door != "smtp" or not settings.intake.sender_auth:
        return trusted
    return authenticator(settings).verify(row.raw, mail.from_address, row.envelope_from, row.peer_ip, row.helo)
