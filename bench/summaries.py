"""Summary quality on the labelled set tests/data/summaries.json: ROUGE-L and identifier coverage.

    .venv/bin/python bench/summaries.py [--show]

For each labelled ticket (a mail of ../shared/corpus, or a thread written for the set) the
thread is stored the way intake stores it (the first mail whole, later mails without quoted
history), summarised, and compared with the reference summary written by hand:
- ROUGE-L F1 (the `rouge-score` package, stemming on), the mean over the set;
- identifiers: the share of summaries holding every identifier the reference names (error
  codes, invoice/order numbers, product names, versions), compared case-insensitively;
- within 300: the share of summaries within the 300-character limit.

Rows: `offline` is the offline provider. `mistral path` sends each thread through the real
Mistral provider (SDK, prompt, answer parsing) to tests/fakes/mistral_server.py, whose
stand-in "model" answers with the first sentence of the oldest message and the last
sentences of the newest one found in the prompt: no model quality is measured, only what the
prompt hands over (order, quotes removed, newest kept, the token budget). `prompt ids` is the
share of prompts holding every reference identifier; `prompt tokens` their mean estimated size;
`budget 120` repeats the Mistral row with a thread token budget of 120, so threads are cut.
Prints figures and asserts nothing; tests/unit/test_summary_quality.py guards a floor.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from statistics import mean
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rouge_score import rouge_scorer  # noqa: E402

from core.ai.offline import OfflineProvider  # noqa: E402
from core.ai.provider import SUMMARY_MAX_CHARS, triage_thread  # noqa: E402
from core.ai.thread import ThreadEntry, entry  # noqa: E402
from core.mail.html import html_to_text  # noqa: E402
from core.mail.parse import parse_mail  # noqa: E402
from core.mail.reply_text import visible_reply_text  # noqa: E402

LABELLED = ROOT / "tests" / "data" / "summaries.json"
CORPUS = ROOT.parent / "shared" / "corpus"
CHARS_PER_TOKEN = 4
TIGHT_BUDGET = 120  # [ai] thread_token_budget for a second Mistral row: long threads must be cut


@dataclass(frozen=True)
class Labelled:
    """One labelled ticket: its subject, its stored thread (direction, visible text) and the reference."""

    id: str
    subject: str
    stored: list[tuple[str, str]]
    reference: str
    identifiers: list[str]


@dataclass(frozen=True)
class Figures:
    rouge_l: float
    identifiers: float
    within_limit: float
    n: int


def load_labelled(path: Path = LABELLED, corpus: Path = CORPUS) -> list[Labelled]:
    """The labelled set, each thread stored as intake stores it."""
    items = []
    for raw in json.loads(path.read_text(encoding="utf-8")):
        if "corpus" in raw:
            mail = parse_mail((corpus / raw["corpus"]).read_bytes())
            subject, messages = mail.subject, [("in", mail.text or html_to_text(mail.html))]
        else:
            subject, messages = raw["subject"], [(m["direction"], m["text"]) for m in raw["messages"]]
        stored = [(d, t if i == 0 or d == "out" else visible_reply_text(t)) for i, (d, t) in enumerate(messages)]
        items.append(Labelled(raw["id"], subject, stored, raw["reference"], raw["identifiers"]))
    return items


def thread_of(item: Labelled) -> list[ThreadEntry]:
    """The thread as the triage job reads it from the database."""
    return [entry(direction, text) for direction, text in item.stored]


def offline_summary(item: Labelled) -> str:
    """The offline provider's summary of one labelled thread, through the triage job's own path."""
    return triage_thread(OfflineProvider(), item.subject, thread_of(item)).summary


def has_identifiers(text: str, identifiers: list[str]) -> bool:
    folded = text.casefold()
    return all(i.casefold() in folded for i in identifiers)


def score(items: list[Labelled], summarise: Callable[[Labelled], str]) -> tuple[Figures, list[str]]:
    """Mean ROUGE-L F1, identifier coverage and the 300-character share of `summarise` over the set."""
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    summaries = [summarise(item) for item in items]
    rouge = [scorer.score(i.reference, s)["rougeL"].fmeasure for i, s in zip(items, summaries)]
    ids = [has_identifiers(s, i.identifiers) for i, s in zip(items, summaries)]
    within = [len(s) <= SUMMARY_MAX_CHARS for s in summaries]
    return Figures(mean(rouge), mean(ids), mean(within), len(items)), summaries


# ---- the Mistral path against the fake server --------------------------------------------------

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_AUTHOR_LINE = re.compile(r"^\[[^\]\n]*(?:customer|support)[^\]\n]*\]\s*", re.M)


def stand_in_answer(prompt: str) -> str:
    """The fake "model": the oldest message's first sentence and the newest message's last ones."""
    start, end = prompt.find("<<<"), prompt.rfind("\n", 0, prompt.rfind(">>>"))
    data = prompt[start:end] if 0 <= start < end else prompt
    data = "\n".join(line for line in data.splitlines()[1:] if not line.startswith("Subject:"))
    blocks = [b.strip() for b in _AUTHOR_LINE.split(data) if b.strip()] or [data.strip()]
    first = _SENTENCE_END.split(" ".join(blocks[0].split()))[0]
    answer = first
    if len(blocks) > 1:
        last = _SENTENCE_END.split(" ".join(blocks[-1].split()))
        tail: list[str] = []
        for sentence in reversed(last):
            if len(first) + len(" ".join([sentence, *tail])) + 1 > SUMMARY_MAX_CHARS:
                break
            tail.insert(0, sentence)
        answer = " ".join([first, *tail])
    return answer[:SUMMARY_MAX_CHARS].strip() or "(empty)"


def mistral_figures(items: list[Labelled], token_budget: int = 3000) -> tuple[Figures, float, float, list[str]]:
    """Figures of the Mistral path, the share of prompts holding every identifier, mean prompt tokens."""
    sys.path.insert(0, str(ROOT))
    from core.ai.mistral import MistralProvider
    from core.config import AiSettings
    from tests.fakes.mistral_server import FakeMistral, ok

    def respond(body: Any):
        prompt = body["messages"][-1]["content"]
        return ok({"summary": stand_in_answer(prompt), "category": "general", "priority": "medium",
                   "skills": [], "notes": []})

    prompts: list[str] = []
    with FakeMistral(api_key="bench", responder=respond) as server:
        provider = MistralProvider(AiSettings(api_key="bench", server_url=server.url, max_retries=0,
                                              thread_token_budget=token_budget))

        def summarise(item: Labelled) -> str:
            summary = mistral_summary(provider, item)
            prompts.append(server.requests[-1].body["messages"][-1]["content"])
            return summary

        figures, summaries = score(items, summarise)
    prompt_ids = mean(has_identifiers(p, i.identifiers) for i, p in zip(items, prompts))
    tokens = mean(len(p) / CHARS_PER_TOKEN for p in prompts)
    return figures, prompt_ids, tokens, summaries


def mistral_summary(provider: Any, item: Labelled) -> str:
    """The Mistral provider's summary of one labelled thread, through the triage job's own path."""
    return triage_thread(provider, item.subject, thread_of(item)).summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--show", action="store_true", help="print each summary under its reference")
    args = parser.parse_args()
    items = load_labelled()
    offline, offline_texts = score(items, offline_summary)
    mistral, prompt_ids, tokens, mistral_texts = mistral_figures(items)
    tight, tight_ids, tight_tokens, _ = mistral_figures(items, TIGHT_BUDGET)
    print(f"labelled tickets: {len(items)} ({sum(len(i.stored) > 1 for i in items)} threads)")
    print(f"{'path':<14}{'ROUGE-L F1':>12}{'identifiers':>13}{'within 300':>12}{'prompt ids':>12}"
          f"{'prompt tokens':>15}")
    print(f"{'offline':<14}{offline.rouge_l:>12.3f}{offline.identifiers:>13.0%}{offline.within_limit:>12.0%}"
          f"{'':>12}{'':>15}")
    print(f"{'mistral path':<14}{mistral.rouge_l:>12.3f}{mistral.identifiers:>13.0%}{mistral.within_limit:>12.0%}"
          f"{prompt_ids:>12.0%}{tokens:>15.0f}")
    print(f"{'  budget ' + str(TIGHT_BUDGET):<14}{tight.rouge_l:>12.3f}{tight.identifiers:>13.0%}"
          f"{tight.within_limit:>12.0%}{tight_ids:>12.0%}{tight_tokens:>15.0f}")
    if args.show:
        for item, off, mis in zip(items, offline_texts, mistral_texts):
            print(f"\n## {item.id}\nreference: {item.reference}\noffline:   {off}\nmistral:   {mis}")


if __name__ == "__main__":
    main()
