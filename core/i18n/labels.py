"""The words for stored values a person reads (statuses, priorities, categories, roles): the
database keeps the English key, pages and mails show the label in the reader's language."""
from __future__ import annotations


def N_(message: str) -> str:
    """Marks a string for extraction into the catalogues; translated where it is shown."""
    return message


LABELS = {
    "new": N_("new"), "in_progress": N_("in progress"), "waiting": N_("waiting"), "resolved": N_("resolved"),
    "closed": N_("closed"),
    "low": N_("low"), "medium": N_("medium"), "high": N_("high"), "critical": N_("critical"),
    "billing": N_("billing"), "technical": N_("technical"), "account": N_("account"), "general": N_("general"),
    "customer": N_("customer"), "agent": N_("agent"), "admin": N_("admin"),
}


def label_key(value: str) -> str:
    """The English label of a stored value ('in_progress' → 'in progress'); unknown values as they are."""
    return LABELS.get(value, value.replace("_", " "))
