"""The part of a reply a person actually wrote: quoted history and signature removed."""
from __future__ import annotations

from email_reply_parser import EmailReplyParser


def visible_reply_text(text: str) -> str:
    """The new text of a reply; the full text when stripping would leave nothing."""
    if not text.strip():
        return ""
    try:
        visible = EmailReplyParser.parse_reply(text.replace("\r\n", "\n"))
    except Exception:  # the parser is regex-based; a pathological body must not cost the mail
        return text.strip()
    return visible.strip() or text.strip()
