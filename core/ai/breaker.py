"""A circuit breaker around the AI provider: after `failures` failures in a row every call fails at
once (the caller falls back to the offline rules without waiting out timeouts), and after
`seconds` one call probes the provider again; its success closes the circuit."""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable

from core.ai.provider import ProviderError, Triage, TriageProvider
from core.config import AiSettings

log = logging.getLogger(__name__)


class CircuitOpen(ProviderError):
    """The provider failed repeatedly and is not asked until the next probe."""


class CircuitBreaker:
    """A TriageProvider that wraps another one (thread-safe: triage jobs run concurrently)."""

    def __init__(self, provider: TriageProvider, failures: int, seconds: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.provider, self.failures, self.seconds, self.clock = provider, failures, seconds, clock
        self.name = provider.name
        self._lock = threading.Lock()
        self._failed = 0
        self._open_until: float | None = None
        self._probing = False

    @property
    def is_open(self) -> bool:
        return self._open_until is not None

    def triage(self, subject: str, body: str) -> Triage:
        """The provider's triage, or CircuitOpen at once while the circuit is open."""
        self._admit()
        try:
            result = self.provider.triage(subject, body)
        except ProviderError as exc:
            self._failure(exc)
            raise
        self._success()
        return result

    def _admit(self) -> None:
        with self._lock:
            if self._open_until is None:
                return
            if self._probing or self.clock() < self._open_until:
                raise CircuitOpen(f"{self.name} failed {self._failed} times in a row; offline until it answers again")
            self._probing = True  # this call is the one probe; others keep failing fast

    def _failure(self, exc: ProviderError) -> None:
        with self._lock:
            self._failed += 1
            was_open, self._probing = self._open_until is not None, False
            if was_open or self._failed >= self.failures:
                self._open_until = self.clock() + self.seconds
        if not was_open and self._open_until is not None:
            log.warning("%s failed %s times in a row (%s): offline triage until a probe in %gs succeeds",
                        self.name, self._failed, str(exc).splitlines()[0][:200], self.seconds)

    def _success(self) -> None:
        with self._lock:
            was_open = self._open_until is not None
            self._failed, self._open_until, self._probing = 0, None, False
        if was_open:
            log.info("%s answers again: circuit closed", self.name)


def guarded(provider: TriageProvider, ai: AiSettings) -> TriageProvider:
    """The provider behind a circuit breaker ([ai] breaker_failures, breaker_seconds); offline stays bare."""
    if provider.name == "offline":
        return provider
    return CircuitBreaker(provider, ai.breaker_failures, ai.breaker_seconds)
