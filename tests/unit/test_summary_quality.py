"""Offline summaries: never a sentence twice, identifiers kept, a thread's current state; and a floor
on the labelled set's figures (bench/summaries.py), a regression guard, not a timing."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from core.ai.offline import OfflineProvider
from core.ai.provider import SUMMARY_MAX_CHARS, triage_thread
from core.ai.summary import identifiers_in, summarize_mail, summarize_thread
from core.ai.thread import ThreadEntry, entry

ROOT = Path(__file__).resolve().parents[2]
# Measured on the labelled set: 0.398 ROUGE-L / 70% identifiers before this change, 0.418 / 88% after.
ROUGE_L_FLOOR = 0.41
IDENTIFIERS_FLOOR = 0.85

REPEATING_THREAD = [
    ThreadEntry("customer", "Our office printer P-300 stopped printing this morning. The error code is E-4711 "
                            "and the LED blinks orange. I attached a screenshot of the display."),
    ThreadEntry("support", "Please unplug the printer for 30 seconds and try again."),
    ThreadEntry("customer", "I unplugged it for a minute as you said. The error code is E-4711 and the LED "
                            "blinks orange."),
    ThreadEntry("support", "Which firmware version does the printer show under Settings?"),
    ThreadEntry("customer", "The firmware is version 2.4.1. The error code is E-4711 and the LED blinks orange. "
                            "Can you send a technician or replace the printer?"),
]


def _bench():
    spec = importlib.util.spec_from_file_location("bench_summaries", ROOT / "bench" / "summaries.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_summaries"] = module
    spec.loader.exec_module(module)
    return module


def test_a_sentence_repeated_in_every_mail_is_said_once():
    summary = summarize_thread("Printer P-300 does not print", REPEATING_THREAD)
    assert summary.count("E-4711") == 1
    assert summary.lower().count("blinks orange") == 1


def test_thread_summary_says_what_the_customer_asked_last_and_keeps_identifiers():
    summary = summarize_thread("Printer P-300 does not print", REPEATING_THREAD)
    assert "technician" in summary
    for identifier in ("P-300", "E-4711", "2.4.1"):
        assert identifier in summary
    assert len(summary) <= SUMMARY_MAX_CHARS


def test_near_duplicate_sentences_in_one_mail_are_said_once():
    body = ("The VPN drops every ten minutes with error 0x80070005 since the update. "
            "Since the update, the VPN drops every 10 minutes with error 0x80070005! "
            "I work from home and lose my session each time.")
    summary = summarize_mail("VPN", body)
    assert summary.count("0x80070005") == 1


def test_a_missing_identifier_is_added_within_the_limit():
    body = ("Hello, invoice INV-2024-0042 was charged twice on my card and I would like a refund. "
            "I am a long-time customer and usually very happy with your service and your products. "
            "My customer number is C-10293 in case you need it for the records of the accounting team.")
    summary = summarize_mail("Refund", body)
    assert "INV-2024-0042" in summary and "C-10293" in summary
    assert len(summary) <= SUMMARY_MAX_CHARS


def test_a_very_long_thread_stays_within_the_limit_and_keeps_the_last_ask():
    long = " ".join(["The import of the contacts fails on a row with a date in the old format."] * 3)
    entries = [ThreadEntry("customer", long + " Error IMP-5501 each time."),
               ThreadEntry("support", "Please convert the dates. " + long),
               ThreadEntry("customer", "We converted them and reimported. " + long.replace("fails", "failed")
                           + " Should we merge the 17 duplicates or skip them?")]
    summary = summarize_thread("Import", entries)
    assert len(summary) <= SUMMARY_MAX_CHARS
    assert "merge" in summary


def test_identifiers_are_found_and_encoded_data_is_not():
    text = "SecureLink 5.2 fails with 0x80070005 on order #778812, invoice RG-77310, firmware 2.4.1."
    assert {"SecureLink 5.2", "0x80070005", "#778812", "RG-77310", "2.4.1"} <= set(identifiers_in(text))
    assert identifiers_in("hQIOA076g5OuwfIOEAgAyB2wkXAxcNw6iKwzSlXlyZCsdZFSstJbhIrujIrkNLUAIgPfgIeg1") == []


def test_the_triage_job_path_summarises_the_thread_not_the_joined_text():
    entries = [entry("in", text.text) if text.author == "customer" else entry("out", text.text)
               for text in REPEATING_THREAD]
    triage = triage_thread(OfflineProvider(), "Printer P-300 does not print", entries)
    assert triage.summary == summarize_thread("Printer P-300 does not print", entries)


def test_labelled_set_figures_stay_above_the_floor():
    bench = _bench()
    if not bench.CORPUS.is_dir():
        pytest.skip(f"development corpus not found at {bench.CORPUS}")
    items = bench.load_labelled()
    assert len(items) >= 30
    assert all(len(i.reference) <= SUMMARY_MAX_CHARS for i in items)
    figures, _ = bench.score(items, bench.offline_summary)
    assert figures.rouge_l >= ROUGE_L_FLOOR, figures
    assert figures.identifiers >= IDENTIFIERS_FLOOR, figures
    assert figures.within_limit == 1.0


def test_a_greeting_on_the_first_line_does_not_open_the_summary():
    summary = summarize_mail("Order", "Hi, I just placed order B-3310 and the delivery address is my old one.")
    assert summary.startswith("I just placed order B-3310")
