"""An inbound mail's HTML for the agent: formatted by default, remote images only on request."""
from __future__ import annotations

import re
from typing import Callable

from markupsafe import Markup

from core.mail.html import sanitize_html
from core.models import Message

_REMOTE_IMG = re.compile(r"""<img\b[^>]*\bsrc\s*=\s*["']?\s*https?:""", re.I)
# The page that shows a mail's remote images may load images from https sites (only that page).
IMAGES_CSP = ("default-src 'self'; img-src 'self' data: https:; style-src 'self' 'unsafe-inline'; "
              "script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")


def has_remote_images(message: Message) -> bool:
    """Whether an inbound mail's HTML refers to images on other sites (blocked until asked for)."""
    return message.direction == "in" and bool(message.body_html) and bool(_REMOTE_IMG.search(message.body_html))


def html_with_images(message: Message, cid_url: Callable[[str], str | None] | None = None) -> Markup:
    """The mail's sanitised HTML with its https images kept: the agent asked to load them."""
    return Markup(sanitize_html(message.body_html, cid_url=cid_url, remote_images=True))
