"""Languages and time zones: which language and zone a person reads in, and the message
catalogues (locale/<lang>/LC_MESSAGES/messages.po) that put our words into that language."""
from core.i18n.catalogues import LANGUAGES, DEFAULT_LANGUAGE, label, translate, translate_plural, translations
from core.i18n.choice import (best_language, language_of, local_time, shipped_language, time_zone_of, valid_time_zone,
                              TIME_ZONES)
from core.i18n.jinja import install
from core.i18n.labels import N_

__all__ = ["N_", "LANGUAGES", "DEFAULT_LANGUAGE", "TIME_ZONES", "best_language", "install", "label", "language_of", "local_time",
           "shipped_language", "time_zone_of", "translate", "translate_plural", "translations", "valid_time_zone"]
