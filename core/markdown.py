"""Markdown written by agents and customers → sanitised HTML for the portal and for mail."""
from __future__ import annotations

from functools import lru_cache

from markupsafe import Markup

import nh3
from markdown_it import MarkdownIt

_TAGS = {"p", "br", "strong", "em", "code", "pre", "blockquote", "ul", "ol", "li", "a", "h1", "h2", "h3",
         "h4", "hr", "table", "thead", "tbody", "tr", "th", "td", "del"}


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    # "js-default" escapes raw HTML instead of passing it through; tables and strikethrough on;
    # a single line break stays a line break (people write replies as lines, not paragraphs).
    return MarkdownIt("js-default", {"breaks": True}).enable(["table", "strikethrough"])


def markdown_to_html(text: str) -> str:
    """Safe HTML for Markdown text: raw HTML escaped, then cleaned by nh3 (links only http/https/mailto)."""
    html = _parser().render(text or "")
    return nh3.clean(html, tags=_TAGS, attributes={"a": {"href", "title"}},
                     url_schemes={"http", "https", "mailto"}, link_rel="noopener noreferrer nofollow")


def markdown_markup(text: str) -> Markup:
    """markdown_to_html marked safe for a template: the one place a reply's HTML is trusted."""
    return Markup(markdown_to_html(text))
