"""Authentication-Results written by an MTA we trust (RFC 8601), for mail that reached us
through it (the ingest pipe, IMAP). Headers from any other authserv-id are ignored: anyone can
write one."""
from __future__ import annotations

import logging
from email.message import Message as EmailMessage

import authres

from core.sender_auth.verdict import AuthVerdict, aligned, domain_of, normalise

log = logging.getLogger(__name__)


def verdict_from_results(headers: list[str], trusted_ids: tuple[str, ...], from_address: str = "") -> AuthVerdict:
    """The verdict of the topmost Authentication-Results header from a trusted authserv-id
    (`headers`: the header values, top first); an unchecked verdict when there is none."""
    trusted = {t.strip().lower() for t in trusted_ids if t.strip()}
    if not trusted:
        return AuthVerdict()
    for value in headers:
        try:
            parsed = authres.AuthenticationResultsHeader.parse(f"Authentication-Results: {value}")
        except Exception as exc:  # a broken header from anyone is simply not evidence
            log.info("unreadable Authentication-Results: %s", exc)
            continue
        if (parsed.authserv_id or "").lower() not in trusted:
            continue
        found: dict[str, list[str]] = {}
        signers: list[str] = []
        for result in parsed.results:
            found.setdefault(result.method.lower(), []).append(normalise(result.result))
            if result.method.lower() == "dkim" and normalise(result.result) == "pass":
                signers += [str(p.value) for p in result.properties if p.type == "header" and p.name == "d"]
        dmarc = _best(found.get("dmarc"))
        from_domain = domain_of(from_address)
        return AuthVerdict(_best(found.get("dkim")), _best(found.get("spf")), dmarc, checked=True,
                           from_aligned=dmarc == "pass" or any(aligned(d, from_domain) for d in signers))
    return AuthVerdict()


def _best(results: list[str] | None) -> str:
    """One word for a method reported several times: any pass wins, then temperror, then fail."""
    if not results:
        return "none"
    for word in ("pass", "temperror", "fail"):
        if word in results:
            return word
    return "none"


def results_headers(message: EmailMessage) -> list[str]:
    return [str(v) for v in message.get_all("Authentication-Results") or []]
