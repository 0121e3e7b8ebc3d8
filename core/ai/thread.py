"""A ticket's thread as the AI sees it: who wrote what, oldest first, quotes and signatures removed."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from core.mail.reply_text import visible_reply_text

Author = Literal["customer", "support"]
_SIGNATURE = re.compile(r"^--\s*$")


@dataclass(frozen=True)
class ThreadEntry:
    """One message of a thread: its author's side and its own words."""

    author: Author
    text: str


def own_words(text: str) -> str:
    """A message's own text: quoted history dropped and everything from a `-- ` signature line on."""
    lines = visible_reply_text(text or "").split("\n")
    for i, line in enumerate(lines):
        if _SIGNATURE.match(line):
            lines = lines[:i]
            break
    return "\n".join(lines).strip()


def entry(direction: str, text: str) -> ThreadEntry:
    """A thread entry from a stored message's direction ('in' is the customer) and text."""
    return ThreadEntry("customer" if direction == "in" else "support", own_words(text))


def joined_thread(entries: list[ThreadEntry]) -> str:
    """The thread as one text, each message marked with its author when there are several."""
    if len(entries) == 1:
        return entries[0].text
    return "\n\n".join(f"[{e.author}] {e.text}" for e in entries)
