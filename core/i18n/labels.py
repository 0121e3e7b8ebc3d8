"""The words for stored values a person reads (statuses, priorities, categories, roles): the
database keeps the English key, pages and mails show the label in the reader's language."""
from __future__ import annotations


class Said(str):
    """An English message made in Python with its %(name)s values kept apart: it reads as the English
    text everywhere, and the `t` filter shows it in the reader's language (the values filled in after)."""
    msgid: str
    values: dict

    def __new__(cls, message: str, values: dict) -> "Said":
        said = super().__new__(cls, message % values)
        said.msgid, said.values = message, values
        return said

    def __str__(self) -> str:  # str(exception) keeps the message and its values
        return self


def N_(message: str, **values: object) -> str:
    """Marks a string for extraction into the catalogues; translated where it is shown. With values
    (N_("at most %(n)s characters", n=200)) it is a Said: English now, any language on the page."""
    return Said(message, values) if values else message


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


# The words stored in the history (event kinds, fields, sources), job kinds, automatic-mail kinds and
# mailbox states. The stored key is also the English word shown, so English pages read as before;
# other languages show the catalogue's word. Values not listed here are shown as they are.
WORDS = frozenset((
    # event kinds
    N_("created"), N_("status"), N_("priority"), N_("category"), N_("assigned"), N_("edited"), N_("links-revoked"),
    N_("reply_drafted"), N_("satisfaction"), N_("reminder"), N_("tags"), N_("spam"), N_("split_from"),
    N_("split_to"), N_("merged_into"), N_("merged_from"), N_("not-joined"), N_("bounce"), N_("automatic"),
    N_("imported"),
    # event fields
    N_("assignee"), N_("description"), N_("requester"), N_("recipient"), N_("score"), N_("waiting_until"),
    N_("skills"), N_("summary"),
    # event sources
    N_("mail"), N_("web"), N_("rule"), N_("agent"), N_("admin"), N_("customer"), N_("import"), N_("default"),
    N_("api"),
    # job kinds
    N_("triage"),
    # automatic-mail kinds (core/mail/classify.py)
    N_("person"), N_("auto-reply"), N_("delivery-report"), N_("feedback-report"), N_("provider-notification"),
    N_("list-mail"), N_("our-own-mail"),
    # mailbox states (core/mailbox_health.py)
    N_("ok"), N_("late"), N_("failing"), N_("not polled yet"),
))
