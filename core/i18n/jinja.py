"""Jinja wiring: `{% trans %}` / `_()` read the language of the page or mail being rendered from its
context (`lang`), the `label` filter names a stored status or priority, and the `when` filter shows a UTC time in the context's zone (`tz`)."""
from __future__ import annotations

from datetime import datetime

from jinja2 import Environment, pass_context
from jinja2.runtime import Context

from core.i18n.catalogues import DEFAULT_LANGUAGE, translations
from core.i18n.choice import local_time
from core.i18n.labels import WORDS, Said, label_key


def _language(context: Context) -> str:
    return context.get("lang") or DEFAULT_LANGUAGE


@pass_context
def _gettext(context: Context, message: str) -> str:
    return translations(_language(context)).gettext(message)


@pass_context
def _ngettext(context: Context, singular: str, plural: str, count: int) -> str:
    return translations(_language(context)).ngettext(singular, plural, count)


@pass_context
def translated(context: Context, value: object) -> str:
    """A message made in Python (a form error, a notice) in the reader's language when the catalogue
    has it, else as it is. Unlike _() the result is not marked safe: autoescape still applies."""
    if isinstance(value, Said):
        return str.__str__(translations(_language(context)).gettext(value.msgid) % value.values)
    text = "" if value is None else str(value)
    return translations(_language(context)).gettext(text) if text else text


@pass_context
def label(context: Context, value: str) -> str:
    """A stored value (status, priority, category, role) in the reader's words."""
    return translations(_language(context)).gettext(label_key(str(value)))


@pass_context
def word(context: Context, value: object) -> str:
    """A stored history word (event kind, field, source), job kind, automatic-mail kind or mailbox
    state in the reader's words; English and unknown values as they are (autoescape still applies)."""
    text = "" if value is None else str(value)
    return translations(_language(context)).gettext(text) if text in WORDS else text


@pass_context
def when(context: Context, moment: datetime | None, fmt: str = "%Y-%m-%d %H:%M", zone: bool = True) -> str:
    """A stored (UTC) time in the reader's zone, with the zone's abbreviation ('2024-05-06 16:03 CEST')."""
    if moment is None:
        return ""
    return local_time(moment, context.get("tz") or "UTC", fmt, zone)


def install(env: Environment, trimmed: bool = False) -> Environment:
    """Give an environment the i18n extension, our context-aware gettext and the `label` and `when`
    filters. `trimmed` (pages: yes, mails: no, their line breaks are the text's) joins a {% trans %}
    block's lines, as babel.cfg tells the extraction to."""
    env.add_extension("jinja2.ext.i18n")
    env.policies["ext.i18n.trimmed"] = trimmed
    env.install_gettext_callables(_gettext, _ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.filters["when"] = when
    env.filters["label"] = label
    env.filters["t"] = translated
    env.filters["word"] = word
    return env
