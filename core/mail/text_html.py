"""The HTML part of a mail from its text part: one template source, two faithful renderings.

Everything is escaped; only what the text itself says becomes markup: paragraphs, line breaks,
quoted lines (`> `) as a quotation, indented lines as a highlighted block, http(s) links as links,
and the signature after `-- ` in smaller print.
"""
from __future__ import annotations

import html
import re
from functools import lru_cache

_URL = re.compile(r"https?://[^\s<>\"']+[^\s<>\"'.,;:!?)\]]")
_DOCUMENT = ('<!DOCTYPE html>\n<html><head><meta charset="utf-8"></head>'
             '<body style="font-family: sans-serif; line-height: 1.4">\n{body}\n</body></html>\n')


def _inline(line: str) -> str:
    """One line, escaped, its links made clickable (the link text is the address itself)."""
    out, last = [], 0
    for found in _URL.finditer(line):
        out.append(html.escape(line[last:found.start()]))
        url = html.escape(found.group(0))
        out.append(f'<a href="{url}">{url}</a>')
        last = found.end()
    out.append(html.escape(line[last:]))
    return "".join(out)


@lru_cache(maxsize=512)
def _block(lines: tuple[str, ...]) -> str:
    """A paragraph's HTML. Kept for the paragraphs that recur: a template's fixed ones come in every
    mail of its kind (an acknowledgement's are most of its text)."""
    if all(line.startswith(">") for line in lines):
        inner = [line[1:].removeprefix(" ") for line in lines]
        return ('<blockquote style="margin: 0 0 1em; padding-left: 1em; border-left: 3px solid #ccc; '
                f'color: #444">{"<br>".join(_inline(x) for x in inner)}</blockquote>')
    if all(line.startswith("    ") for line in lines):
        return f'<p style="margin-left: 2em"><strong>{"<br>".join(_inline(x.strip()) for x in lines)}</strong></p>'
    return f"<p>{'<br>'.join(_inline(line) for line in lines)}</p>"


def _blocks(text: str) -> list[list[str]]:
    """Paragraphs: runs of lines between blank lines, split where quoting starts or stops."""
    blocks: list[list[str]] = []
    current: list[str] = []
    for line in text.replace("\r\n", "\n").split("\n"):
        if not line.strip():
            if current:
                blocks.append(current)
            current = []
            continue
        if current and current[-1].startswith(">") != line.startswith(">"):
            blocks.append(current)
            current = []
        current.append(line.rstrip())
    if current:
        blocks.append(current)
    return blocks


@lru_cache(maxsize=64)
def _signature(signature: str) -> str:
    return ('<hr style="border: 0; border-top: 1px solid #ddd">\n<p style="color: #666; font-size: smaller">'
            f'{"<br>".join(_inline(x) for x in signature.split(chr(10)))}</p>')


def text_to_html(text: str, fragments: dict[str, str] | None = None) -> str:
    """A whole HTML document for the text. `fragments` maps a placeholder that stands alone in its
    paragraph to ready, already-safe HTML (an agent's Markdown rendered and cleaned by nh3)."""
    fragments = fragments or {}
    body, signature = text, ""
    if "\n-- \n" in text:
        body, signature = text.rsplit("\n-- \n", 1)
    parts = []
    for lines in _blocks(body):
        joined = "\n".join(lines).strip()
        parts.append(fragments[joined] if joined in fragments else _block(tuple(lines)))
    if signature.strip():
        parts.append(_signature(signature.strip()))
    return _DOCUMENT.format(body="\n".join(parts))
