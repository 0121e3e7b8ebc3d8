"""AI output never carries a live link: a summary may quote an injected "log in at http://…", which a
mail client or a later Markdown renderer would turn into a link. URLs become inert text (defanged:
hxxp://evil[.]test/login) and the triage gets a note saying so."""
from __future__ import annotations

import re

from core.ai.provider import MAX_NOTES, NOTE_MAX_CHARS, SUMMARY_MAX_CHARS, Triage

# A scheme URL, a www. host, or a bare host name followed by a path (mail clients link all three).
_URL = re.compile(r"(?i)\b(?:[a-z][a-z0-9+.-]{1,15}://|www\.)[^\s<>\"']+"
                  r"|\b(?:[a-z0-9-]+\.)+[a-z]{2,24}/[^\s<>\"']*")
FLAG = "Links in the AI output were made inert (e.g. hxxp://host[.]example): check the original message."


def inert_links(text: str) -> tuple[str, int]:
    """`text` with each URL made inert (scheme hxxp/hxxps, dots of the host as [.]); and how many."""
    found = 0

    def defang(match: re.Match[str]) -> str:
        nonlocal found
        found += 1
        url = match.group(0)
        scheme, sep, rest = url.partition("://")
        if not sep:
            scheme, rest = "", url
        host, slash, path = rest.partition("/")
        if scheme.lower().startswith("http"):
            prefix = f"hxxp{scheme[4:]}://"
        else:
            prefix = f"{scheme}[:]//" if sep else ""
        return f"{prefix}{host.replace('.', '[.]')}{slash}{path}"

    return _URL.sub(defang, text), found


def inert_triage(triage: Triage) -> Triage:
    """The triage with inert links in summary and notes, flagged by a note when there were any."""
    summary, in_summary = inert_links(triage.summary)
    checked = [inert_links(note) for note in triage.notes]
    if not in_summary and not any(found for _, found in checked):
        return triage
    notes = [*(note[:NOTE_MAX_CHARS] for note, _ in checked[:MAX_NOTES - 1]), FLAG[:NOTE_MAX_CHARS]]
    return triage.model_copy(update={"summary": summary[:SUMMARY_MAX_CHARS].strip(), "notes": notes})
