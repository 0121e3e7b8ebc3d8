"""The message catalogues: English is the source text, every other shipped language a .po file
under locale/, compiled in memory the first time it is needed (no build step, no stale .mo)."""
from __future__ import annotations

from functools import lru_cache
from io import BytesIO
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

from core.i18n.labels import label_key

LOCALE_DIR = Path(__file__).resolve().parent.parent.parent / "locale"
DEFAULT_LANGUAGE = "en"
# The languages a person can choose, in their own words (the account page's select shows these).
LANGUAGES = {"en": "English", "de": "Deutsch"}


@lru_cache(maxsize=None)
def translations(language: str | None) -> NullTranslations:
    """The catalogue of a shipped language; English (the source strings) for anything else."""
    if language not in LANGUAGES or language == DEFAULT_LANGUAGE:
        return NullTranslations()
    po = LOCALE_DIR / language / "LC_MESSAGES" / "messages.po"
    with po.open("rb") as source:
        catalog = read_po(source, locale=language)
    compiled = BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled, domain="messages")


def translate(language: str | None, message: str, **values: object) -> str:
    """`message` in `language`, with %(name)s placeholders filled from `values`."""
    text = translations(language).gettext(message)
    return text % values if values else text


def translate_plural(language: str | None, singular: str, plural: str, count: int, **values: object) -> str:
    """The singular or plural form for `count` in `language`; `count` is among the placeholders."""
    return translations(language).ngettext(singular, plural, count) % {"num": count, **values}


def label(language: str | None, value: str) -> str:
    """A stored value (status, priority, category, role) in `language`."""
    return translations(language).gettext(label_key(value))
