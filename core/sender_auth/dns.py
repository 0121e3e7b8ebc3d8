"""DNS for sender authentication: timeouts, a cache, and a breaker that stops asking for a
while when the resolver keeps timing out (every mail would otherwise wait on it)."""
from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import dns.exception
import dns.name
import dns.resolver
import spf

log = logging.getLogger(__name__)


class DnsTempError(Exception):
    """The answer could not be had now (timeout, no server): the result is `temperror`."""


class CachingResolver:
    """TXT/A/AAAA/MX/PTR look-ups through dnspython, cached for `ttl` seconds (failures for a
    minute), and after `breaker_after` timeouts in a row answered `temperror` at once for
    `breaker_seconds`."""

    def __init__(self, servers: tuple[str, ...] = (), timeout: float = 2.0, ttl: float = 600,
                 breaker_after: int = 3, breaker_seconds: float = 60) -> None:
        self._resolver = dns.resolver.Resolver(configure=not servers)
        if servers:
            host, _, port = servers[0].rpartition(":") if servers[0].count(":") == 1 else (servers[0], "", "")
            self._resolver.nameservers = [host or servers[0]]
            if port:
                self._resolver.port = int(port)
        self._resolver.lifetime = self._resolver.timeout = timeout
        self._ttl, self._breaker_after, self._breaker_seconds = ttl, breaker_after, breaker_seconds
        self._cache: dict[tuple[str, str], tuple[float, list | DnsTempError]] = {}
        self._lock = threading.Lock()
        self._timeouts_in_a_row = 0
        self._open_until = 0.0

    def lookup(self, name: str, qtype: str) -> list:
        """The records (rdata objects) of one name and type; [] for none; DnsTempError when unsure."""
        key = (name.lower().rstrip("."), qtype)
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None and hit[0] > now:
                if isinstance(hit[1], DnsTempError):
                    raise hit[1]
                return hit[1]
            if self._open_until > now:
                raise DnsTempError("DNS not answering; not asked again for a while")
        try:
            answer = self._resolver.resolve(key[0], qtype, raise_on_no_answer=False, search=False)
            records, ttl = list(answer.rrset or []), self._ttl
            self._timeouts_in_a_row = 0
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            records, ttl = [], self._ttl
        except (dns.name.NameTooLong, dns.name.LabelTooLong, dns.name.EmptyLabel, dns.exception.SyntaxError,
                UnicodeError, ValueError):
            records, ttl = [], self._ttl  # not a name DNS can hold: nothing is published for it
        except (dns.exception.Timeout, dns.resolver.NoNameservers, dns.resolver.NoResolverConfiguration,
                dns.resolver.LifetimeTimeout, OSError) as exc:
            error = DnsTempError(f"{type(exc).__name__}: {exc}")
            with self._lock:
                self._timeouts_in_a_row += 1
                if self._timeouts_in_a_row >= self._breaker_after:
                    self._open_until = time.monotonic() + self._breaker_seconds
                    log.warning("DNS for sender authentication does not answer; results are temperror "
                                "for %.0f s", self._breaker_seconds)
                self._cache[key] = (time.monotonic() + 60, error)
            raise error from None
        with self._lock:
            self._cache[key] = (time.monotonic() + ttl, records)
        return records

    def txt(self, name: str) -> list[bytes]:
        return [b"".join(r.strings) for r in self.lookup(name, "TXT")]

    def dkim_txt(self, name: bytes | str, timeout: int = 5) -> bytes | None:
        """dkimpy's dnsfunc: the key record, None when there is none."""
        import dkim
        try:
            found = self.txt(name.decode() if isinstance(name, bytes) else name)
        except DnsTempError as exc:
            raise dkim.DnsTimeoutError(str(exc)) from None
        return found[0] if found else None

    def spf_lookup(self, name: str, qtype: str, strict: bool = True, timeout: float = 20) -> list:
        """pyspf's DNSLookup: [((name, qtype), value), …]."""
        try:
            records = self.lookup(name, qtype)
        except DnsTempError as exc:
            raise spf.TempError(f"DNS {exc}") from None
        key = (name, qtype)
        if qtype in ("A", "AAAA"):
            return [(key, r.address) for r in records]
        if qtype == "MX":
            return [(key, (r.preference, r.exchange)) for r in records]
        if qtype == "PTR":
            return [(key, r.target.to_text(True)) for r in records]
        if qtype in ("TXT", "SPF"):
            return [(key, r.strings) for r in records]
        return []


# pyspf looks its DNS up through a module-level function; route it to the resolver of the check
# running in this thread (a context variable, so concurrent workers each use their own).
_CURRENT: contextvars.ContextVar[CachingResolver | None] = contextvars.ContextVar("spf_resolver", default=None)
_SYSTEM_LOOKUP: Callable = spf.DNSLookup


def _dispatch(name, qtype, *args, **kwargs):
    resolver = _CURRENT.get()
    return resolver.spf_lookup(name, qtype) if resolver is not None else _SYSTEM_LOOKUP(name, qtype, *args, **kwargs)


spf.DNSLookup = _dispatch


@contextmanager
def spf_resolver(resolver: CachingResolver) -> Iterator[None]:
    token = _CURRENT.set(resolver)
    try:
        yield
    finally:
        _CURRENT.reset(token)
