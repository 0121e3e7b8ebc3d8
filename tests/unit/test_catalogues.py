"""The German catalogue is complete: every string the templates and code mark for translation,
extracted now with Babel as `make messages` does, has a German translation (a new English string
without one fails here), and every translation keeps the placeholders of its English original."""
from __future__ import annotations

import re
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from core import i18n
from core.i18n.catalogues import LOCALE_DIR

ROOT = Path(__file__).resolve().parent.parent.parent
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None, "translate": (2,), "translate_plural": (2, 3)}
PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def _extracted() -> set[str]:
    method_map = [("core/**.py", "python"), ("portal/**.py", "python"), ("templates/web/**.html", "jinja2"),
                  ("templates/mail/*.txt", "jinja2")]
    options = {"templates/web/**.html": {"extensions": "jinja2.ext.i18n", "trimmed": "true"},
               "templates/mail/*.txt": {"extensions": "jinja2.ext.i18n"}}
    found = set()
    for _, _, message, _, _ in extract_from_dir(str(ROOT), method_map, options, keywords=KEYWORDS):
        found.add(message if isinstance(message, str) else message[0])
    return {m for m in found if m}


def _catalogue(language: str):
    with (LOCALE_DIR / language / "LC_MESSAGES" / "messages.po").open("rb") as po:
        return read_po(po, locale=language)


def test_every_extracted_string_has_a_german_translation():
    catalogue = _catalogue("de")
    translated = {(m.id if isinstance(m.id, str) else m.id[0]) for m in catalogue
                  if m.id and all(m.string if isinstance(m.string, tuple) else (m.string,))}
    missing = sorted(_extracted() - translated)
    assert missing == [], "untranslated (run `make messages`, then translate locale/de):\n" + "\n".join(missing)
    assert not any(m.fuzzy for m in catalogue if m.id)


def test_german_translations_keep_their_placeholders():
    for message in _catalogue("de"):
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        wanted = set(PLACEHOLDER.findall(ids[-1])) | set(PLACEHOLDER.findall(ids[0]))
        for string in strings:
            assert set(PLACEHOLDER.findall(string)) <= wanted, message.id


def test_language_choice_from_headers():
    assert i18n.best_language("de-DE,de;q=0.9") == "de"
    assert i18n.best_language("fr-CH, fr;q=0.9, de;q=0.5") == "de"
    assert i18n.best_language("en;q=0.2, de;q=0.8") == "de"
    assert i18n.best_language("fr") is None and i18n.best_language("") is None and i18n.best_language(None) is None
    assert i18n.best_language("de;q=0") is None and i18n.best_language("de;q=abc") is None


def test_local_time_names_the_zone():
    from datetime import datetime
    winter = datetime(2024, 1, 10, 8, 0)  # naive, as SQLite returns it: UTC
    assert i18n.local_time(winter, "Europe/Berlin") == "2024-01-10 09:00 CET"
    assert i18n.local_time(winter, "UTC") == "2024-01-10 08:00 UTC"
    assert i18n.local_time(winter, "No/Such_Zone") == "2024-01-10 08:00 UTC"
    assert not i18n.valid_time_zone("Mars/Base") and i18n.valid_time_zone("America/New_York")
