"""DKIM (dkimpy), SPF (pyspf) and DMARC alignment for mail received at our own SMTP door."""
from __future__ import annotations

import ipaddress
import logging
import re

import dkim
import spf

from core.sender_auth.dns import CachingResolver, DnsTempError, spf_resolver
from core.sender_auth.verdict import AuthVerdict, aligned, domain_of, organizational_domain

log = logging.getLogger(__name__)
_DKIM_LOG = logging.getLogger("core.sender_auth.dkimpy")  # dkimpy logs every failed signature as ERROR
_DKIM_LOG.setLevel(logging.CRITICAL)
MAX_SIGNATURES = 5  # a mail with more is not verified further (each costs a key look-up)
# A line of the header block that could start a DKIM-Signature field (a loose match: when it finds one,
# dkimpy reads the header block and decides; when it finds none, no signature is there to verify).
_SIGNATURE_LINE = re.compile(rb"(?:^|\n)dkim-signature[ \t]*:", re.IGNORECASE)


def _header_block(raw: bytes) -> bytes:
    """The bytes up to the first empty line (LF or CRLF line ends), or all of them when there is none."""
    ends = [i for i in (raw.find(b"\n\n"), raw.find(b"\n\r\n")) if i >= 0]
    return raw[:min(ends) + 1] if ends else raw


def _local(ip: str) -> bool:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return address.is_loopback or address.is_link_local


class SenderAuthenticator:
    """Verifies one mail at a time against DNS (through a shared cache)."""

    def __init__(self, resolver: CachingResolver) -> None:
        self.resolver = resolver

    def verify(self, raw: bytes, from_address: str, envelope_from: str, peer_ip: str, helo: str) -> AuthVerdict:
        """The verdict for a mail as received from `peer_ip` (HELO `helo`) with MAIL FROM `envelope_from`."""
        from_domain = domain_of(from_address)
        dkim_result, dkim_domains = self._dkim(raw)
        spf_result = self._spf(peer_ip, envelope_from, helo)
        spf_domain = domain_of(envelope_from) if envelope_from else (helo or "").lower()
        spf_aligned = spf_result == "pass" and aligned(spf_domain, from_domain)
        from_aligned = spf_aligned or any(aligned(d, from_domain) for d in dkim_domains)
        dmarc = self._dmarc(from_domain, from_aligned)
        return AuthVerdict(dkim_result, spf_result, dmarc, checked=True, from_aligned=from_aligned)

    def _dkim(self, raw: bytes) -> tuple[str, list[str]]:
        """'pass' with the signing domains that verified, else fail / none / temperror."""
        if not _SIGNATURE_LINE.search(_header_block(raw)):  # most mail: dkimpy's reading of it costs more than parsing
            return "none", []
        try:
            checker = dkim.DKIM(raw, minkey=1024, logger=_DKIM_LOG)
            count = sum(1 for name, _ in checker.headers if name.lower() == b"dkim-signature")
        except Exception as exc:  # a header block dkimpy cannot read has no signature we could verify
            log.info("DKIM: unreadable message: %s", exc)
            return "none", []
        passed, temp = [], []

        def key_of(name, timeout=5):  # dkimpy turns a DNS timeout into "not verified": remember it
            try:
                return self.resolver.dkim_txt(name, timeout)
            except dkim.DnsTimeoutError:
                temp.append(name)
                raise

        for idx in range(min(count, MAX_SIGNATURES)):
            try:
                if checker.verify(idx=idx, dnsfunc=key_of):
                    passed.append(checker.domain.decode("ascii", "replace").lower())
            except dkim.DnsTimeoutError:
                temp.append(idx)
            except Exception as exc:  # a malformed signature or key is a failed signature
                log.info("DKIM signature %s failed: %s", idx, exc)
        if passed:
            return "pass", passed
        return ("temperror" if temp else "fail") if count else "none", []

    def _spf(self, peer_ip: str, envelope_from: str, helo: str) -> str:
        if not peer_ip or _local(peer_ip):
            return "none"  # handed over by a local MTA: SPF would judge the MTA, not the sender
        sender = envelope_from or (f"postmaster@{helo}" if helo else "")
        if not sender:
            return "none"
        try:
            with spf_resolver(self.resolver):
                result, _ = spf.check2(i=peer_ip, s=sender, h=helo or "unknown", timeout=10)
        except Exception as exc:  # pyspf raises on inputs it cannot evaluate
            log.info("SPF check of %s from %s failed: %s", sender, peer_ip, exc)
            return "none"
        return {"pass": "pass", "fail": "fail", "softfail": "fail", "permerror": "fail",
                "temperror": "temperror"}.get(result, "none")

    def _dmarc(self, from_domain: str, from_aligned: bool) -> str:
        """pass when an aligned DKIM signature or SPF passed; fail when the From domain publishes
        DMARC and neither did; none when it publishes nothing."""
        if not from_domain:
            return "none"
        try:
            record = self._dmarc_record(from_domain)
        except DnsTempError:
            return "temperror"
        if record is None:
            return "none"
        if from_aligned:
            return "pass"
        return "fail"

    def _dmarc_record(self, domain: str) -> bytes | None:
        for name in dict.fromkeys((domain, organizational_domain(domain))):
            for txt in self.resolver.txt(f"_dmarc.{name}"):
                if txt.lower().startswith(b"v=dmarc1"):
                    return txt
        return None
