"""Every mail of the development corpus (../shared/corpus) through the pure mail functions:
parse_mail, visible_reply_text, classify (the one verdict intake reads) and bounce_report.

No message may crash them (MessageRejected for a limit is an answer, not a crash), and
where the corpus carries upstream expectations (manifest fields, Zammad's parse YAML,
flufl.bounce's and sisimai's expected bounces) at least 95% of the checks must agree.
Run with `-s` (or look at a failure) to see the rates per category and every miss.
"""
from __future__ import annotations

import json
import re
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from core.errors import MessageRejected
from core.mail.bounce import BounceReport, bounce_report
from core.mail.classify import AUTO_REPLY, DELIVERY_REPORT, FEEDBACK_REPORT, PERSON, Verdict, classify
from core.mail.html import html_to_text
from core.mail.parse import ParsedMail, parse_mail
from core.mail.reply_text import visible_reply_text

CORPUS = (Path(__file__).resolve().parents[2] / ".." / "shared" / "corpus").resolve()
MIN_MATCH_RATE = 0.95

pytestmark = pytest.mark.skipif(not (CORPUS / "manifest.jsonl").is_file(),
                                reason=f"development corpus not found at {CORPUS}")

# Names Zammad invents for parts the mail did not name ("file", "image.gif", "document1.html",
# "delivery-status.txt"); ours for the same parts are named from their type the same way ("image.jpg",
# "image-2.jpg", "document.html", "file.bin") or from a Content-ID's file name.
_ZAMMAD_UNNAMED = re.compile(r"^(file|image|video|audio|document|delivery-status)\d*(\.\w+)?$")
_OUR_UNNAMED = re.compile(r"^(image|video|audio|document|file|message|delivery-status|feedback-report|"
                          r"disposition-notification|rfc822-headers)(-\d+)?\.\w+$")
_ZAMMAD_NO_BODY = "no visible content"
_SUBJECT_COLUMN = 998  # Message.subject is String(998); parse_mail truncates to fit


@dataclass(frozen=True)
class Check:
    category: str
    path: str
    ok: bool
    detail: str = ""


@dataclass(frozen=True)
class Outcome:
    entry: dict
    mail: ParsedMail | None = None
    reply: str = ""
    verdict: Verdict | None = None
    bounce: BounceReport | None = None
    rejected: str = ""
    crash: str = ""


def _load_yaml(path: Path) -> dict:
    """Zammad's Ruby-tagged YAML (!ruby/hash:…) read as plain mappings."""
    class RubyTolerantLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # libyaml when present
        pass

    def untagged(loader, suffix, node):
        if isinstance(node, yaml.MappingNode):
            return loader.construct_mapping(node, deep=True)
        if isinstance(node, yaml.SequenceNode):
            return loader.construct_sequence(node, deep=True)
        return loader.construct_scalar(node)

    RubyTolerantLoader.add_multi_constructor("!", untagged)
    return yaml.load(path.read_text(encoding="utf-8"), Loader=RubyTolerantLoader) or {}


def _run(entry: dict) -> Outcome:
    data = (CORPUS / entry["path"]).read_bytes()
    try:
        if entry["kind"] == "reply-body":
            return Outcome(entry, reply=visible_reply_text(data.decode("utf-8", "replace")))
        try:
            mail = parse_mail(data)
        except MessageRejected as exc:
            return Outcome(entry, rejected=str(exc))
        return Outcome(entry, mail, visible_reply_text(mail.text),
                       classify(mail, data, loop_value="loop-token",
                                own_addresses=frozenset({"support@example.invalid"})),
                       bounce_report(mail, data))
    except Exception as exc:  # the very thing this test exists to catch
        return Outcome(entry, crash=f"{type(exc).__name__}: {exc}")


@pytest.fixture(scope="module")
def outcomes() -> list[Outcome]:
    entries = [json.loads(line) for line in (CORPUS / "manifest.jsonl").read_text().splitlines() if line.strip()]
    started = time.monotonic()
    results = [_run(entry) for entry in entries]
    print(f"\n{len(results)} corpus items through the mail functions in {time.monotonic() - started:.1f}s")
    return results


@pytest.fixture(scope="module")
def upstream_bounces() -> dict[str, dict]:
    expected: dict[str, dict] = {}
    for source in ("flufl-bounce", "sisimai"):
        for case in json.loads((CORPUS / source / "_derived" / "expected_bounces.json").read_text())["cases"]:
            expected.setdefault(f"{source}/{case['file']}", {}).update(case)
    return expected


def test_no_corpus_mail_crashes_the_mail_functions(outcomes):
    crashes = [f"{o.entry['path']}: {o.crash}" for o in outcomes if o.crash]
    rejected = [f"{o.entry['path']}: {o.rejected}" for o in outcomes if o.rejected]
    for line in rejected:
        print("rejected for a limit:", line)
    assert not crashes, "\n".join(crashes)
    assert all(o.entry.get("malformed") for o in outcomes if o.rejected), "a well-formed mail hit a limit"


def test_corpus_expectations_match(outcomes, upstream_bounces):
    checks: list[Check] = []
    for outcome in outcomes:
        if outcome.crash or outcome.rejected:
            continue
        checks += _reply_checks(outcome)
        if outcome.mail is not None:
            checks += _zammad_checks(outcome)
            checks += _automatic_checks(outcome)
            checks += _bounce_checks(outcome, upstream_bounces.get(outcome.entry["path"]))
    report = _report(checks)
    print(report)
    rate = sum(c.ok for c in checks) / len(checks)
    assert len(checks) > 300, "the manifest lost its expectations"
    assert rate >= MIN_MATCH_RATE, report


# --- reply bodies ---------------------------------------------------------------------

def _reply_checks(outcome: Outcome) -> list[Check]:
    entry, reply = outcome.entry, outcome.reply
    checks = []
    if "reply_text" in entry:
        checks.append(Check("reply text", entry["path"], reply.strip() == entry["reply_text"].strip(),
                            f"got {reply[:120]!r}"))
    for wanted in entry.get("reply_contains", []):
        checks.append(Check("reply text", entry["path"], wanted in reply, f"{wanted!r} missing"))
    for unwanted in entry.get("reply_absent", []):
        checks.append(Check("reply text", entry["path"], unwanted not in reply, f"{unwanted!r} kept"))
    return checks


# --- Zammad's expected parse ----------------------------------------------------------

def _zammad_checks(outcome: Outcome) -> list[Check]:
    entry, mail = outcome.entry, outcome.mail
    if "expected_yml" not in entry:
        return []
    expected = _load_yaml(CORPUS / entry["expected_yml"])
    path = entry["path"]
    want_from = str(expected.get("from_email") or "").lower()
    want_subject = str(expected.get("subject") or "")[:_SUBJECT_COLUMN]
    return [
        Check("zammad from", path, mail.from_address == want_from, f"{want_from!r} vs {mail.from_address!r}"),
        Check("zammad subject", path, mail.subject == want_subject, f"{want_subject!r} vs {mail.subject!r}"),
        _attachment_check(path, expected, mail),
        _body_check(path, expected, mail),
    ]


def _attachment_check(path: str, expected: dict, mail: ParsedMail) -> Check:
    want = [str(a.get("filename") or "") for a in expected.get("attachments") or []]
    if mail.html and "message.html" in want:  # Zammad keeps an HTML body as this attachment
        want.remove("message.html")
    got = [a.filename for a in mail.attachments]
    unmatched_want, unmatched_got = list(want), []
    for name in got:
        if name in unmatched_want:
            unmatched_want.remove(name)
        else:
            unmatched_got.append(name)
    ok = len(unmatched_want) == len(unmatched_got) and all(
        _ZAMMAD_UNNAMED.match(w) for w in unmatched_want) and all(_OUR_UNNAMED.match(g) for g in unmatched_got)
    return Check("zammad attachments", path, ok, f"{want} vs {got}")


def _body_check(path: str, expected: dict, mail: ParsedMail) -> Check:
    body = str(expected.get("body") or "")
    if expected.get("content_type") == "text/html":
        body = html_to_text(body)
    want = _squash(body)
    ours = [_squash(mail.text), _squash(html_to_text(mail.html))]
    if want == _ZAMMAD_NO_BODY:
        return Check("zammad body", path, not ours[0], f"Zammad found no body, we found {ours[0][:80]!r}")
    chunk = want[:200]
    ok = any(chunk in text or _word_coverage(want, text) >= 0.9 for text in ours)
    return Check("zammad body", path, ok, f"{chunk[:80]!r} not in {ours[0][:80]!r}")


def _word_coverage(want: str, text: str) -> float:
    """Share of the expected body's first 150 distinct words that our text has too."""
    words = list(dict.fromkeys(re.findall(r"\w+", want.lower())))[:150]
    ours = set(re.findall(r"\w+", text.lower()))
    return sum(w in ours for w in words) / len(words) if words else 1.0


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", text.replace("\xa0", " ")).strip()


# --- automatic mail and bounces --------------------------------------------------------

def _automatic_checks(outcome: Outcome) -> list[Check]:
    entry, verdict = outcome.entry, outcome.verdict
    if entry.get("bounce") or entry.get("auto_reply") or entry.get("feedback_report"):
        want = DELIVERY_REPORT if entry.get("bounce") else FEEDBACK_REPORT if entry.get("feedback_report") else AUTO_REPLY
        return [Check("automatic", entry["path"], verdict.automatic, "answered as if a person wrote it"),
                Check("verdict", entry["path"], verdict.kind == want, f"expected {want}, got {verdict}")]
    if entry.get("bounce") is False:
        return [Check("automatic", entry["path"], verdict.kind == PERSON, f"taken for automatic: {verdict}")]
    return []


def _bounce_checks(outcome: Outcome, upstream: dict | None) -> list[Check]:
    entry, report, path = outcome.entry, outcome.bounce, outcome.entry["path"]
    checks = []
    not_bounce = entry.get("bounce") is False or entry.get("feedback_report") or entry.get("auto_reply")
    if entry.get("bounce") or not_bounce:
        checks.append(Check("bounce verdict", path, (report is not None) == bool(entry.get("bounce")),
                            f"expected bounce={bool(entry.get('bounce'))}, got {report}"))
    if report is None:
        return checks
    if entry.get("bounce_addresses"):
        want = sorted(a.lower() for a in entry["bounce_addresses"])
        got = sorted({*report.failed_recipients, *report.delayed_recipients})
        checks.append(Check("bounce addresses", path, want == got, f"{want} vs {got}"))
    if upstream and upstream.get("failure_kind") and upstream.get("expected_addresses"):
        permanent = upstream["failure_kind"] == "permanent"
        ok = bool(report.failed_recipients) if permanent else bool(report.delayed_recipients)
        checks.append(Check("bounce failed vs delayed", path, ok, f"upstream {upstream['failure_kind']}: {report}"))
    statuses = [r["deliverystatus"] for r in (upstream or {}).get("recipients", []) if r.get("deliverystatus")]
    if statuses:
        want = statuses[0]
        # sisimai writes x.0.9xx for codes it inferred itself: only their class is comparable.
        ok = report.status[:1] == want[:1] if re.match(r"\d\.0\.9\d\d$", want) else report.status == want
        checks.append(Check("bounce status", path, ok, f"{want} vs {report.status!r}"))
    return checks


def _report(checks: list[Check]) -> str:
    total, passed = Counter(c.category for c in checks), Counter(c.category for c in checks if c.ok)
    lines = ["", "corpus expectations:"]
    for category in sorted(total):
        lines.append(f"  {category:26} {passed[category]:4}/{total[category]:<4} {passed[category] / total[category]:.1%}")
    ok = sum(passed.values())
    lines.append(f"  {'overall':26} {ok:4}/{len(checks):<4} {ok / len(checks):.1%}")
    lines += [f"  MISS {c.category}: {c.path}: {c.detail}" for c in checks if not c.ok]
    return "\n".join(lines)
