"""The verdict kept on a message: one word each for DKIM, SPF and DMARC."""
from __future__ import annotations

from dataclasses import dataclass

from publicsuffixlist import PublicSuffixList

RESULTS = ("pass", "fail", "none", "temperror")
_PSL = PublicSuffixList()


@dataclass(frozen=True)
class AuthVerdict:
    """pass | fail | none | temperror for each mechanism; `checked` is False when nothing was
    verified (a door without checks, or an MTA whose results we do not trust)."""
    dkim: str = "none"
    spf: str = "none"
    dmarc: str = "none"
    checked: bool = False
    from_aligned: bool = False  # a DKIM or SPF pass was for the From domain (DMARC's alignment)

    @property
    def failed(self) -> bool:
        """The From domain's owner says this mail is not theirs."""
        return self.dmarc == "fail"

    @property
    def authenticated(self) -> bool:
        """Some mechanism vouches for the From domain (DMARC pass) or the sender's domain."""
        return self.dmarc == "pass" or self.dkim == "pass" or self.spf == "pass"


NO_VERDICT = AuthVerdict()


def normalise(value: str) -> str:
    """Map the many RFC 8601 result words onto the four we keep."""
    value = (value or "").strip().lower()
    if value in RESULTS:
        return value
    if value in ("softfail", "permerror", "policy", "neutral") or value.startswith("fail"):
        return "fail" if value != "neutral" else "none"
    if value in ("temperror", "tempfail"):
        return "temperror"
    return "none"


def organizational_domain(domain: str) -> str:
    """example.co.uk for mail.example.co.uk (the public suffix list shipped with publicsuffixlist)."""
    domain = domain.strip(".").lower()
    return _PSL.privatesuffix(domain) or domain


def aligned(a: str, b: str) -> bool:
    """DMARC relaxed alignment: the two domains share an organizational domain."""
    return bool(a and b) and organizational_domain(a) == organizational_domain(b)


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].strip().strip(">").lower()
