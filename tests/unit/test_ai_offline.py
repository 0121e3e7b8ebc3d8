"""The offline triage (extractive summary + keyword rules), the Triage model and provider choice."""
from __future__ import annotations

import email
import email.policy
import json
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import get_args

import pytest
from pydantic import ValidationError

from core.ai.offline import NO_TEXT, OfflineProvider, summarize
from core.ai.provider import (
    Category, Priority, ProviderError, Triage, make_provider, triage_with_fallback,
)
from core.config import AiSettings

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"
CATEGORIES = set(get_args(Category))
PRIORITIES = set(get_args(Priority))

offline = OfflineProvider()


# --- reading the development corpus ----------------------------------------------------------

class _TextOfHtml(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._hidden += tag in ("script", "style")
        if tag in ("p", "br", "div", "li", "tr", "h1", "h2", "h3"):
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        self._hidden -= tag in ("script", "style") and self._hidden > 0

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data)


def text_of_html(markup: str) -> str:
    parser = _TextOfHtml()
    parser.feed(markup)
    parser.close()
    return "".join(parser.parts)


def subject_and_body(raw: bytes) -> tuple[str, str]:
    """The subject and the first text/plain part, else the first text/html part without tags."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    subject = str(message.get("subject", "") or "")
    first: dict[str, email.message.EmailMessage] = {}
    for part in message.walk():
        if part.is_multipart() or part.get_content_disposition() == "attachment":
            continue
        first.setdefault(part.get_content_type(), part)
    if "text/plain" in first:
        return subject, first["text/plain"].get_content()
    if "text/html" in first:
        return subject, text_of_html(first["text/html"].get_content())
    return subject, ""


@dataclass(frozen=True)
class CorpusMail:
    path: str
    subject: str
    body: str


def corpus_mails() -> tuple[list[CorpusMail], list[str]]:
    """Every `message` of the corpus that parses, and the paths of those that did not."""
    mails: list[CorpusMail] = []
    unreadable: list[str] = []
    for line in (CORPUS / "manifest.jsonl").read_text(encoding="utf-8").splitlines():
        entry = json.loads(line)
        if entry.get("kind") != "message":
            continue
        try:
            subject, body = subject_and_body((CORPUS / entry["path"]).read_bytes())
        except Exception:  # a mail the stdlib cannot decode is counted, not fatal
            unreadable.append(entry["path"])
            continue
        mails.append(CorpusMail(entry["path"], subject, body))
    return mails, unreadable


@pytest.fixture(scope="module")
def corpus() -> list[CorpusMail]:
    if not (CORPUS / "manifest.jsonl").is_file():
        pytest.skip(f"development corpus not found at {CORPUS}")
    mails, unreadable = corpus_mails()
    total = len(mails) + len(unreadable)
    print(f"corpus: {len(mails)} of {total} messages read, {len(unreadable)} skipped: {unreadable}")
    assert len(unreadable) <= total * 0.05, f"too many unreadable corpus mails: {unreadable}"
    return mails


def is_non_trivial(body: str) -> bool:
    return len(body.split()) >= 3


# --- the whole corpus ------------------------------------------------------------------------

def test_every_corpus_mail_gets_a_valid_triage(corpus: list[CorpusMail]) -> None:
    problems: list[str] = []
    for mail in corpus:
        try:
            triage = offline.triage(mail.subject, mail.body)
        except Exception as exc:  # collect, so one report names every failing mail
            problems.append(f"{mail.path}: raised {exc!r}")
            continue
        if triage.category not in CATEGORIES or triage.priority not in PRIORITIES:
            problems.append(f"{mail.path}: {triage.category}/{triage.priority}")
        if not triage.summary.strip():
            problems.append(f"{mail.path}: empty summary")
        if is_non_trivial(mail.body) and len(mail.body) > 300 and len(triage.summary) >= len(mail.body):
            problems.append(f"{mail.path}: summary not shorter than the body")
        if any(s != s.lower() or len(s) > 32 for s in triage.skills) or len(triage.skills) > 8:
            problems.append(f"{mail.path}: bad skills {triage.skills}")
    assert problems == []


def test_corpus_summaries_are_taken_from_the_body(corpus: list[CorpusMail]) -> None:
    """An extractive summary: every word of it occurs in the mail's subject or body."""
    for mail in corpus:
        if not is_non_trivial(mail.body):
            continue
        summary = offline.triage(mail.subject, mail.body).summary
        source = set(re.findall(r"\w+", f"{mail.subject} {mail.body}".replace("\u2019", "'")))
        words = re.findall(r"\w+", summary)
        if summary.endswith("…"):  # a single word longer than the limit is cut inside
            words = words[:-1]
        assert set(words) <= source, mail.path


def test_corpus_triage_is_deterministic(corpus: list[CorpusMail]) -> None:
    for mail in corpus[:60]:
        assert OfflineProvider().triage(mail.subject, mail.body) == offline.triage(mail.subject, mail.body)


# --- focused behaviour -----------------------------------------------------------------------

INVOICE_MAIL = (
    "Invoice INV-1234 charged twice",
    "Hello,\n\nmy credit card was charged twice for invoice INV-1234 in March.\n"
    "Could you refund the duplicate payment please?\n\nBest regards,\nAnna Keller",
)
OUTAGE_MAIL = (
    "Server down, urgent",
    "Our production server is down since 7:00 and nobody can open the shared drives.\n"
    "The monitoring shows: Error: connection refused on port 445.\nPlease call me back.",
)
PASSWORD_MAIL = (
    "Password reset does not arrive",
    "Hi, I forgot my password and requested a reset link three times, but no mail arrived.\n"
    "Now my account is locked and I cannot log in.",
)


def test_invoice_mail_is_billing_with_the_invoice_number_noted() -> None:
    triage = offline.triage(*INVOICE_MAIL)
    assert triage.category == "billing"
    assert "billing" in triage.skills
    assert any("INV-1234" in note for note in triage.notes)


def test_server_down_urgent_is_technical_and_high_or_critical() -> None:
    triage = offline.triage(*OUTAGE_MAIL)
    assert triage.category == "technical"
    assert triage.priority in {"high", "critical"}
    assert any("connection refused" in note for note in triage.notes)


def test_password_reset_is_account() -> None:
    triage = offline.triage(*PASSWORD_MAIL)
    assert triage.category == "account"
    assert "accounts" in triage.skills


@pytest.mark.parametrize(("subject", "body", "category"), [
    ("Rechnung doppelt", "Guten Tag, die Rechnung wurde zweimal abgebucht. Bitte um Gutschrift.", "billing"),
    ("Mot de passe", "Bonjour, j'ai oublié mon mot de passe et mon compte est bloqué.", "account"),
    ("Impresora", "Hola, la impresora no funciona desde ayer y muestra un error.", "technical"),
    ("Drucker", "Der Drucker im zweiten Stock druckt nicht, es kommt ein Fehler.", "technical"),
])
def test_german_french_spanish_keywords_are_understood(subject: str, body: str, category: str) -> None:
    assert offline.triage(subject, body).category == category


def test_spanish_urgent_outage_is_at_least_high() -> None:
    assert offline.triage("Servidor", "El servidor no funciona, es urgente.").priority in {"high", "critical"}


def test_fire_or_smoke_is_critical() -> None:
    assert offline.triage("Printer", "There is smoke coming out of the printer!").priority == "critical"


def test_calm_question_is_low_and_not_urgent_is_not_high() -> None:
    assert offline.triage("Question", "When you have time, how do I export my contacts?").priority == "low"
    assert offline.triage("Export", "This is not urgent, but the export is slow.").priority == "low"


def test_plain_request_is_medium_general() -> None:
    triage = offline.triage("Hello", "Please send me the brochure you mentioned on the phone.")
    assert (triage.category, triage.priority) == ("general", "medium")


def test_summary_keeps_the_sentence_that_carries_the_subject_terms() -> None:
    key_sentence = "The printer on floor 3 jams every time we print double-sided pages."
    body = (
        "Hello team,\n\n"
        "I hope you had a nice weekend and that the new office coffee machine works well. "
        "Our department moved to a new room last month and everything went smoothly. "
        f"{key_sentence} "
        "The meeting on Tuesday is still planned as usual and I will bring the slides. "
        "Let me know if you need anything else from us for the quarterly planning.\n\n"
        "Kind regards,\nMaria"
    )
    summary = summarize("Printer on floor 3 jams", body)
    assert key_sentence in summary
    assert len(summary) < len(body)


def test_summary_of_several_sentences_leaves_something_out() -> None:
    body = "The VPN disconnects every hour. It started after the update."
    assert len(summarize("VPN", body)) < len(body)


def test_long_unpunctuated_body_is_cut_at_a_word_boundary() -> None:
    body = " ".join(f"word{i}" for i in range(200))
    summary = summarize("Subject", body)
    assert len(summary) <= 300
    assert summary.endswith("…")
    assert summary.rstrip("…").split()[-1] in body.split()


def test_empty_body_falls_back_to_subject_then_placeholder() -> None:
    assert offline.triage("Printer broken", "").summary == "Printer broken"
    assert offline.triage("", "   \n\n").summary == NO_TEXT
    assert offline.triage("Re: help", "> only a quoted line\n> and another").summary == "Re: help"


def test_quoted_text_and_signature_do_not_make_the_summary() -> None:
    body = (
        "The scanner still does not send to my mailbox after your fix.\n\n"
        "-- \nJohn Doe, Example Corp, printer and scanner department manager\n"
    )
    quoted = "On Mon, 1 Jan 2024 Support wrote:\n> Invoice refund printer server outage urgent."
    summary = offline.triage("Scanner", body + quoted).summary
    assert summary.startswith("The scanner still does not send")
    assert "department" not in summary and "outage" not in summary


def test_same_input_gives_the_same_triage() -> None:
    assert OfflineProvider().triage(*OUTAGE_MAIL) == OfflineProvider().triage(*OUTAGE_MAIL)


def test_notes_are_few_and_short() -> None:
    body = ("URGENT: invoice INV-99881 and order #A-77812 failed. Error: 0x80004005 " + "x" * 400
            + "\nScreenshot attached.")
    notes = offline.triage("Help", body).notes
    assert 1 <= len(notes) <= 3
    assert all(len(note) <= 200 for note in notes)


# --- the Triage model and provider choice ----------------------------------------------------

def valid() -> dict[str, object]:
    return {"summary": "A summary.", "category": "general", "priority": "low",
            "skills": ["printers"], "notes": []}


@pytest.mark.parametrize("change", [
    {"priority": "urgent!!"}, {"category": "sales"}, {"summary": ""}, {"summary": "x" * 301},
    {"skills": ["s"] * 9}, {"skills": ["x" * 33]}, {"notes": ["n"] * 6}, {"notes": ["x" * 201]},
    {"status": "closed"}, {"reply_to": ["all@example.test"]},
])
def test_triage_model_rejects_out_of_contract_values(change: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Triage.model_validate({**valid(), **change})


def test_triage_model_lowercases_skills() -> None:
    assert Triage.model_validate({**valid(), "skills": [" Printers "]}).skills == ["printers"]


@pytest.mark.parametrize(("provider", "api_key", "expected"), [
    ("auto", "", "offline"), ("auto", "k", "mistral"), ("offline", "k", "offline"), ("mistral", "k", "mistral"),
])
def test_make_provider_chooses_by_settings(provider: str, api_key: str, expected: str) -> None:
    assert make_provider(AiSettings(provider=provider, api_key=api_key)).name == expected


class _Failing:
    name = "mistral"

    def triage(self, subject: str, body: str) -> Triage:
        raise ProviderError("down")


def test_fallback_uses_offline_when_the_primary_fails() -> None:
    outcome = triage_with_fallback(_Failing(), offline, *INVOICE_MAIL)
    assert outcome.source == "offline"
    assert outcome.triage == offline.triage(*INVOICE_MAIL)


def test_rules_file_adds_keywords_for_category_skills_and_priority(tmp_path):
    from core.ai.offline import OfflineProvider, load_rule_extras

    rules_file = tmp_path / "rules.toml"
    rules_file.write_text('[category]\nbilling = ["mahnbescheid"]\n[skills]\nplotters = ["plotter"]\n'
                          '[priority]\ncritical = ["kernschmelze"]\n')
    mail = ("Mahnbescheid erhalten", "Der Plotter meldet Kernschmelze. Bitte helfen.")
    plain = OfflineProvider().triage(*mail)
    tuned = OfflineProvider(load_rule_extras(str(rules_file))).triage(*mail)
    assert (plain.category, plain.priority) == ("general", "medium") and "plotters" not in plain.skills
    assert (tuned.category, tuned.priority) == ("billing", "critical") and "plotters" in tuned.skills


@pytest.mark.parametrize("content, words", [
    ('[category]\nhr = ["holiday"]\n', "categories are"),
    ('[priority]\nurgent = ["x"]\n', "priority keys"),
    ('[skills]\nprinters = "toner"\n', "list of keywords"),
    ('[bogus]\n', "unknown table"),
])
def test_a_bad_rules_file_is_a_clear_config_error(tmp_path, content, words):
    from core.ai.offline import load_rule_extras
    from core.errors import ConfigError

    rules_file = tmp_path / "rules.toml"
    rules_file.write_text(content)
    with pytest.raises(ConfigError, match=words):
        load_rule_extras(str(rules_file))
