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


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip_depth = 0

    def handle_starttag(self, tag, attrs):
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
    lines = [re.sub(r"[ \t]+", " ", line).strip() for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


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
