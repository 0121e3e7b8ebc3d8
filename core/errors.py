"""Domain errors. Doors translate them: SMTP 4xx/5xx, HTTP 4xx with JSON, sysexits for `ingest`."""


class PostdeskError(Exception):
    """Base of every error Postdesk raises on purpose."""


class ConfigError(PostdeskError):
    """The configuration is invalid; the message names the key."""


class SenderError(PostdeskError):
    """The sender's fault (bad input): answered and logged at INFO, never retried."""


class MessageRejected(SenderError):
    """A mail that can never be processed as it is (too big, too deep, no content)."""


class HeaderInjection(PostdeskError):
    """An outgoing header would have carried a line break or control character."""


class TransientError(PostdeskError):
    """Our side failed in a way a retry may fix (database down, disk full)."""
