"""HTML from mail: sanitised for display (nh3) and flattened to text for search and AI."""
from __future__ import annotations

import re
from html.parser import HTMLParser

import nh3

_BLOCK = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "table"}
_CELL = {"td", "th"}
_SKIP = {"script", "style", "head", "title"}
_ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "div", "em", "h1", "h2", "h3", "h4", "h5", "h6",
    "hr", "i", "img", "li", "ol", "p", "pre", "span", "strong", "sub", "sup", "table", "tbody",
    "td", "tfoot", "th", "thead", "tr", "u", "ul", "font", "center", "small", "big",
}
_ALLOWED_ATTRS = {
    "a": {"href", "title"}, "img": {"src", "alt", "title", "width", "height"},
    "td": {"colspan", "rowspan", "align"}, "th": {"colspan", "rowspan", "align"},
}


_OPEN_QUOTE, _CLOSE_QUOTE = "\x02", "\x03"
# Where mail clients put the quoted history of an HTML reply: Gmail's gmail_quote (its attribution
# line inside), Thunderbird's moz-cite-prefix and Apple Mail's and Thunderbird's <blockquote
# type="cite">, Yahoo's yahoo_quoted. Outlook writes no container: from its divRplyFwdMsg or its
# border-top separator (the From/Sent/To block) to the end, everything is the history.
_QUOTE_CLASSES = re.compile(r"\b(gmail_quote|moz-cite-prefix|yahoo_quoted|gmail_extra)\b", re.IGNORECASE)
_OUTLOOK_SEPARATOR = re.compile(r"border-top:\s*solid\s+#(e1e1e1|b5c4df)", re.IGNORECASE)


def _starts_history(tag: str, attrs: dict[str, str]) -> bool:
    """Outlook's separator: the rest of the mail is the quoted history."""
    return (attrs.get("id", "").lower() in ("divrplyfwdmsg", "stopspelling")
            or (tag == "div" and bool(_OUTLOOK_SEPARATOR.search(attrs.get("style", "")))))


def _is_quote(tag: str, attrs: dict[str, str]) -> bool:
    return tag == "blockquote" or bool(_QUOTE_CLASSES.search(attrs.get("class", "")))


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip_depth = 0
        self._quotes: list[list] = []  # [tag, how many of that tag are open inside the quote]
        self._history = False

    def _track_quotes(self, tag: str, attrs) -> None:
        if self._history:
            return
        named = {name: value or "" for name, value in attrs}
        if _starts_history(tag, named):
            self._history = True
            self.parts.append("\n" + _OPEN_QUOTE)
        elif _is_quote(tag, named):
            self._quotes.append([tag, 1])
            self.parts.append("\n" + _OPEN_QUOTE)
        elif self._quotes and self._quotes[-1][0] == tag:
            self._quotes[-1][1] += 1

    def _untrack_quotes(self, tag: str) -> None:
        if self._quotes and self._quotes[-1][0] == tag:
            self._quotes[-1][1] -= 1
            if not self._quotes[-1][1]:
                self._quotes.pop()
                self.parts.append(_CLOSE_QUOTE + "\n")

    def handle_starttag(self, tag, attrs):
        if tag in ("div", "blockquote", "hr") and not self._skip_depth:
            self._track_quotes(tag, attrs)
        if tag in _SKIP:
            self._skip_depth += 1
        elif tag in _BLOCK:
            self.parts.append("\n")
        elif tag in _CELL:
            self.parts.append(" ")
        elif tag == "img" and not self._skip_depth:
            # an image's alt text is what a screen reader says: in HTML-only mail, often the message
            alt = next((value for name, value in attrs if name == "alt" and value), "")
            self.parts.append(f" {alt} " if alt.strip() else "")

    def handle_endtag(self, tag):
        if tag in ("div", "blockquote"):
            self._untrack_quotes(tag)
        if tag in _SKIP and self._skip_depth:
            self._skip_depth -= 1
        elif tag in _BLOCK:
            self.parts.append("\n")

    def handle_data(self, data):
        if not self._skip_depth:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    """Plain text of an HTML body: scripts and styles dropped, blocks on their own lines."""
    if not html.strip():
        return ""
    parser = _TextExtractor()
    try:
        parser.feed(html)
        parser.close()
    except Exception:  # the stdlib parser is lenient; this is the last resort
        return re.sub(r"<[^>]+>", " ", html)
    text = "".join(parser.parts).replace("\xa0", " ")
    lines = _quoted_lines(re.sub(r"[ \t]+", " ", line).strip() for line in text.splitlines())
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _quoted_lines(lines) -> list[str]:
    """Lines inside quote containers prefixed with '>' per level, as clients write plain-text quotes
    (the reply extraction then drops them and the attribution line above them)."""
    out: list[str] = []
    depth = 0
    for line in lines:
        level = depth + line.count(_OPEN_QUOTE)
        depth = max(0, level - line.count(_CLOSE_QUOTE))
        line = line.replace(_OPEN_QUOTE, "").replace(_CLOSE_QUOTE, "").strip()
        out.append(f"{'>' * level} {line}" if level and line else line)
    return out


def sanitize_html(html: str, cid_url=None, remote_images: bool = False) -> str:
    """HTML safe to show: no scripts, handlers, javascript:/data: links; remote images not loaded
    (unless `remote_images`: https images kept, for an agent who asked to load them).

    `cid_url(content_id)` maps `cid:` image sources to our own attachment URLs (or None).
    """
    def attribute_filter(tag: str, attr: str, value: str):
        if tag == "img" and attr == "src":
            if value.lower().startswith("cid:") and cid_url is not None:
                return cid_url(value[4:])
            if remote_images and value.lower().startswith("https://"):
                return value
            return None  # remote and data: images are not loaded
        return value

    return nh3.clean(html, tags=_ALLOWED_TAGS, attributes=_ALLOWED_ATTRS,
                     url_schemes={"http", "https", "mailto", "cid"},
                     attribute_filter=attribute_filter, link_rel="noopener noreferrer nofollow")
