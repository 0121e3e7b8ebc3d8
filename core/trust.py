"""Is a mail's From to be believed? Read from its sender-authentication verdict and envelope.

A mail is in doubt when its From domain's DMARC says it is not theirs, or when nothing
authenticates it while its envelope sender's domain differs from its From domain (the
classic forged From). Mail we could not check at all (no verdict and no envelope) keeps the
benefit of the doubt, as before sender authentication existed.
"""
from __future__ import annotations

from dataclasses import dataclass

from core.sender_auth.verdict import AuthVerdict, aligned, domain_of


@dataclass(frozen=True)
class Trust:
    trusted: bool
    why_not: str = ""


def sender_trust(verdict: AuthVerdict, from_address: str, envelope_from: str) -> Trust:
    """Whether the From address may be believed, and if not, why (said in the ticket's history)."""
    if verdict.dmarc == "fail":
        return Trust(False, f"DMARC fail for {domain_of(from_address) or 'its From domain'}")
    if verdict.dmarc == "pass" or verdict.from_aligned:
        return Trust(True)
    from_domain, envelope_domain = domain_of(from_address), domain_of(envelope_from)
    if not envelope_domain or not from_domain or aligned(envelope_domain, from_domain):
        return Trust(True)
    if verdict.dkim == "pass" or verdict.spf == "pass":
        # Authenticated, but for another domain than the From's: that vouches for nothing here.
        return Trust(False, f"authenticated only for {envelope_domain}, not for {from_domain}")
    return Trust(False, f"no authentication, and the envelope sender's domain {envelope_domain} "
                        f"differs from the From domain {from_domain}")
