"""Triage by Mistral's chat completions (mistralai 3.x SDK) with a JSON-schema answer.

Retries are ours, not the SDK's: `[ai] max_retries` is a count, while the SDK's RetryConfig
only bounds the total elapsed time. 429, 5xx, connection errors and timeouts are retried with
exponential backoff; every other failure, and an answer that is not a valid Triage, raises
ProviderError at once.
"""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

import httpx2
from mistralai.client import Mistral, errors
from mistralai.client.models import ChatCompletionResponse, TextChunk
from mistralai.extra import response_format_from_pydantic_model
from pydantic import ValidationError

from core.ai.prompt import ChatMessage, build_messages, build_thread_messages
from core.ai.provider import ProviderError, Triage
from core.ai.thread import ThreadEntry
from core.config import AiSettings
from core.log_limits import OncePer

log = logging.getLogger(__name__)
log.addFilter(OncePer(60))  # a provider that is down fails every call alike: one warning a minute

TEMPERATURE = 0.2
MAX_ANSWER_TOKENS = 1024


class _QuietLogger:
    """The SDK's debug logger prints request headers and bodies (the API key, the mail): never."""

    def debug(self, msg: str, *args: Any, **kwargs: Any) -> None:
        pass


def _is_retryable_status(status: int) -> bool:
    return status == 429 or status >= 500


def _retry_after_seconds(exc: errors.MistralError) -> float | None:
    value = exc.headers.get("retry-after") if exc.headers is not None else None
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:  # an HTTP date: rare from Mistral, use our own backoff
        return None


def _answer_text(response: ChatCompletionResponse) -> str:
    """The first choice's text, whether the SDK returns a string or a list of chunks."""
    if not response.choices or response.choices[0].message is None:
        raise ProviderError("Mistral returned no choices")
    choice = response.choices[0]
    content = choice.message.content if choice.message is not None else None
    if isinstance(content, str):
        text = content
    elif isinstance(content, list):
        text = "".join(chunk.text for chunk in content if isinstance(chunk, TextChunk))
    else:
        text = ""
    if not text.strip():
        raise ProviderError(f"Mistral returned an empty answer (finish_reason={choice.finish_reason})")
    return text.strip()


def parse_triage(response: ChatCompletionResponse) -> Triage:
    """Validate a chat completion's answer as a Triage, or raise ProviderError naming the fault."""
    text = _answer_text(response)
    if text.startswith("```"):  # some models fence JSON even in JSON mode
        text = text.strip("`").removeprefix("json").strip()
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        finish = response.choices[0].finish_reason
        raise ProviderError(f"Mistral answer is not JSON ({exc.msg}; finish_reason={finish})") from None
    try:
        return Triage.model_validate(data)
    except ValidationError as exc:
        # Field names and error types only: the rejected values may quote the mail.
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['type']}"
            for err in exc.errors(include_input=False, include_url=False)
        )
        raise ProviderError(f"Mistral answer does not match the triage schema: {problems}") from None


class MistralProvider:
    """Triage through the Mistral API; any failure raises ProviderError (callers fall back)."""

    name = "mistral"

    def __init__(
        self,
        ai: AiSettings,
        *,
        backoff_seconds: float = 0.5,
        max_backoff_seconds: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._ai = ai
        self._backoff = backoff_seconds
        self._max_backoff = max_backoff_seconds
        self._sleep = sleep
        self._response_format = response_format_from_pydantic_model(Triage)
        self._client = Mistral(
            api_key=ai.api_key,
            server_url=ai.server_url or None,
            timeout_ms=max(1, round(ai.timeout_seconds * 1000)),
            retry_config=None,
            debug_logger=_QuietLogger(),
        )

    def triage(self, subject: str, body: str) -> Triage:
        """Ask Mistral for the triage of one mail; raise ProviderError on any failure."""
        if not self._ai.api_key:
            raise ProviderError("Mistral: no API key configured ([ai] api_key or MISTRAL_API_KEY)")
        response = self._complete(build_messages(subject, body))
        return parse_triage(response)

    def triage_thread(self, subject: str, entries: list[ThreadEntry]) -> Triage:
        """Ask Mistral for the triage of a thread ([ai] thread_token_budget); raise ProviderError on any failure."""
        if not self._ai.api_key:
            raise ProviderError("Mistral: no API key configured ([ai] api_key or MISTRAL_API_KEY)")
        response = self._complete(build_thread_messages(subject, entries, self._ai.thread_token_budget))
        return parse_triage(response)

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.__exit__(None, None, None)  # type: ignore[no-untyped-call]

    def __enter__(self) -> MistralProvider:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def complete_json(self, messages: list[ChatMessage], response_format: Any) -> str:
        """The answer text to any chat with a JSON answer format (e.g. a drafted reply), with the same
        retries; raise ProviderError on any failure."""
        if not self._ai.api_key:
            raise ProviderError("Mistral: no API key configured ([ai] api_key or MISTRAL_API_KEY)")
        return _answer_text(self._complete(messages, response_format))

    def _complete(self, messages: list[ChatMessage], response_format: Any = None) -> ChatCompletionResponse:
        attempts = 1 + max(0, self._ai.max_retries)
        for attempt in range(1, attempts + 1):
            try:
                return self._client.chat.complete(
                    model=self._ai.model,
                    messages=messages,  # type: ignore[arg-type]  # a TypedDict the SDK accepts
                    response_format=response_format or self._response_format,
                    temperature=TEMPERATURE,
                    max_tokens=MAX_ANSWER_TOKENS,
                )
            except errors.ResponseValidationError:
                raise ProviderError("Mistral sent a response that is not a chat completion") from None
            except errors.MistralError as exc:
                # No chaining: the SDK error carries the response body, which may echo the mail.
                if not _is_retryable_status(exc.status_code) or attempt == attempts:
                    raise ProviderError(
                        f"Mistral answered HTTP {exc.status_code} (attempt {attempt} of {attempts})"
                    ) from None
                self._wait(attempt, attempts, f"HTTP {exc.status_code}", _retry_after_seconds(exc))
            except (httpx2.TransportError, errors.NoResponseError) as exc:
                if attempt == attempts:
                    raise ProviderError(
                        f"Mistral unreachable: {type(exc).__name__} (attempt {attempt} of {attempts})"
                    ) from exc
                self._wait(attempt, attempts, type(exc).__name__, None)
            except httpx2.HTTPError as exc:
                raise ProviderError(f"Mistral request failed: {type(exc).__name__}") from exc
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _wait(self, attempt: int, attempts: int, reason: str, retry_after: float | None) -> None:
        delay = min(self._max_backoff, self._backoff * 2 ** (attempt - 1))
        if retry_after is not None:
            delay = min(self._max_backoff, max(delay, retry_after))
        log.warning("mistral attempt %d of %d failed (%s), retrying in %.2fs",
                    attempt, attempts, reason, delay)
        self._sleep(delay)
