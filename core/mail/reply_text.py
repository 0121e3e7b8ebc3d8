"""The part of a reply a person actually wrote: quoted history and signature removed.

A first pass finds where the history starts, in the forms mail clients write in English,
German, French, Spanish, Hebrew, Russian, Polish, Dutch, Italian, Portuguese, Swedish, Japanese
and Chinese (and a few neighbours): "On … wrote:" (also wrapped
over two or three lines), Gmail's "<date> <time> Name <address>:" without a verb (its form in
Russian or Japanese), "-----Original Message-----", an Outlook "From:/Sent:" block, an
underscore separator above one. History that is not `>`-quoted is cut there; a quote
header above `>` lines is only dropped, since answers may follow between the quotes.
Then email-reply-parser (GitHub's algorithm) removes the rest: `>` quotes, "-- "
signatures and "Sent from my …" lines. Its own multi-line "On … wrote:" pass is left
out: that regular expression takes cubic time on a text with many "On"s.
"""
from __future__ import annotations

import re

from email_reply_parser import EmailMessage

_BIDI = re.compile("[\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
_MAX_HEADER = 400  # a quote header is one sentence; longer lines are text
# "On <date>, <name> wrote:" and its translations. The first two start with the opening
# word (or a date) and may be wrapped; the last stands alone only when quoted lines follow.
_OPENING = re.compile(r"^(on|le|el|am|op|il|em|den|dnia|w dniu|בתאריך|ב[-־]?\d)(\s|$)", re.IGNORECASE)
_WROTE = (r"(wrote|a écrit|escribió|schrieb|schreef|ha scritto|escreveu|skrev|napisał(\(a\)|a)?|pisze|"
          r"написал(\(а\)|а)?|пишет|כתב|כתבה|נכתב)")
_QUOTE_HEADER = re.compile(r"^(on|le|el|am|op|il|em|den|dnia|w dniu|ב[-־]?\d)\s.*" + _WROTE + r"[^:\n]{0,200}\s?:$",
                           re.IGNORECASE)
# Chinese and Japanese Gmail/Apple Mail: "Ann <a@x> 于2024年3月12日周二 10:00写道：", "…、Ann <a@x>のメール:"
_CJK_WROTE = re.compile(r"^.{1,200}(写道|寫道|のメール|さんは書きました)\s?:$")
# Gmail in many languages writes no verb: "<date>, <time> Name <address>:" ("12 мар. 2024 г., в 10:00, …").
_DATED_ADDRESS = re.compile(r"^.{0,120}\d{1,2}:\d{2}.{0,120}<[^<>@\s]+@[^<>\s]+>\s?:$")
_HEBREW_GMAIL = re.compile(r"^בתאריך\s.*:$")                       # "בתאריך …, מאת … <…>:"
_WHO_WROTE = re.compile(r"^.{1,200}(?<![\w])" + _WROTE + r"\s?:$", re.IGNORECASE)  # "John Smith wrote:"
_ORIGINAL_MESSAGE = re.compile(
    r"^[-_=*\s]*(original message|ursprüngliche nachricht|originalnachricht|message d'origine|"
    r"mensaje original|messaggio originale|oorspronkelijk bericht|mensagem original|"
    r"oprindelig meddelelse|opprinnelig melding|ursprungligt meddelande|הודעה מקורית|"
    r"исходное сообщение|пересылаемое сообщение|wiadomość oryginalna|oryginalna wiadomość|"
    r"元のメッセージ|原始邮件|原始郵件|邮件原件|原始信件|forwarded message|weitergeleitete nachricht)[-_=*\s]*$",
    re.IGNORECASE)
_FROM_FIELD = re.compile(r"^\*?\s*(from|von|de|da|van|från|fra|od|от|מאת|差出人|送信者|发件人|寄件者|寄件人)"
                         r"\s?\*?\s?:\s?\*?\s*\S", re.IGNORECASE)
_OTHER_FIELD = re.compile(
    r"^\*?\s*(sent|date|to|cc|subject|gesendet|datum|an|betreff|envoyé|date|à|objet|enviado|fecha|para|"
    r"asunto|assunto|inviato|data|a|oggetto|verzonden|aan|onderwerp|skickat|till|ämne|נשלח|תאריך|אל|נושא|"
    r"отправлено|дата|кому|копия|тема|wysłano|wysłane|do|dw|temat|送信日時|日付|宛先|件名|发送时间|日期|收件人|"
    r"抄送|主题|寄件日期|收件者|副本|主旨)\s?\*?\s?:", re.IGNORECASE)
_SEPARATOR = re.compile(r"^\s*(_{10,}|-{10,}|={10,})\s*$")
_MOBILE_SIGNATURE = (
    r"(Sent from (my|Mail for|Outlook|Yahoo)\b.*|Get Outlook for \w+.*|Von meinem .{1,40} gesendet|"
    r"Gesendet (von|mit) .{1,40}|Envoyé (de|depuis) (mon|ma) .{1,40}|Enviado (desde|de) mi .{1,40}|"
    r"Enviado do meu .{1,40}|Inviato da .{1,40}|Verzonden (met|vanaf) .{1,40}|נשלח מ.{1,40}|"
    r"Отправлено с .{1,40}|Wysłane z .{1,40}|Skickat från min .{1,40}|.{1,20}から送信|发自我的.{1,30}|"
    r"從我的 .{1,30}傳送)")


class _ReplyBody(EmailMessage):
    """email-reply-parser with mobile signatures in more languages and without the pass
    that joins wrapped quote headers (done above, in linear time)."""

    SIG_REGEX = re.compile(r"(--|__|-\w)|(^Sent from my (\w+\s*){1,3})|^" + _MOBILE_SIGNATURE + "$")

    def read(self):
        self.found_visible = False
        # Outlook puts the reply directly above its separator line (see upstream email_2_2.txt).
        self.text = re.sub("([^\n])(?=\n ?[_-]{7,})", "\\1\n", self.text)
        self.lines = self.text.split("\n")
        self.lines.reverse()
        for line in self.lines:
            self._scan_line(line)
        self._finish_fragment()
        self.fragments.reverse()
        return self


def visible_reply_text(text: str) -> str:
    """The new text of a reply; the full text when stripping would leave nothing."""
    if not text.strip():
        return ""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    top = "\n".join(without_history(text.split("\n")))
    try:
        visible = _ReplyBody(top).read().reply
    except Exception:  # a pathological body must not cost the mail
        visible = top
    return visible.strip() or text.strip()


def without_history(lines: list[str]) -> list[str]:
    """The lines before the quoted history starts. A quote header followed by `>` lines may
    introduce inline answers, so only the header goes and the library drops the quotes."""
    plain = [_BIDI.sub("", line).strip().replace("：", ":") for line in lines]
    kept: list[str] = []
    i = 0
    while i < len(lines):
        line = plain[i]
        if line and not line.startswith(">"):
            header = _quote_header_lines(plain, i)
            if header and _quoted_lines_follow(plain, i + header - 1):
                i += header
                continue
            if header or _ORIGINAL_MESSAGE.match(line) or _is_header_block(plain, i):
                return _without_separator(kept)
        kept.append(lines[i])
        i += 1
    return kept


def _quote_header_lines(plain: list[str], i: int) -> int:
    """How many lines the "On … wrote:" starting here spans (it may be wrapped), 0 if none."""
    line = plain[i]
    if line.endswith(":") and len(line) <= _MAX_HEADER:
        if _QUOTE_HEADER.match(line) or _HEBREW_GMAIL.match(line) or _CJK_WROTE.match(line) \
                or _DATED_ADDRESS.match(line):
            return 1
        if _WHO_WROTE.match(line) and _quoted_lines_follow(plain, i):
            return 1
    if not _OPENING.match(line):
        return 0
    joined = line
    for extra in (1, 2):
        if i + extra >= len(plain) or not plain[i + extra] or len(joined) > _MAX_HEADER:
            return 0
        joined += " " + plain[i + extra]
        if joined.endswith(":") and (_QUOTE_HEADER.match(joined) or _HEBREW_GMAIL.match(joined)):
            return extra + 1
    return 0


def _quoted_lines_follow(plain: list[str], i: int) -> bool:
    following = next((line for line in plain[i + 1:i + 4] if line), "")
    return following.startswith(">")


def _is_header_block(plain: list[str], i: int) -> bool:
    """An Outlook-style "From: … / Sent: … / To: …" block: a From line, then another field."""
    if not _FROM_FIELD.match(plain[i]):
        return False
    return any(_OTHER_FIELD.match(line) for line in plain[i + 1:i + 4] if line)


def _without_separator(kept: list[str]) -> list[str]:
    """Drop trailing blank lines and an underscore or dash separator line above the cut."""
    while kept and not kept[-1].strip():
        kept.pop()
    if kept and _SEPARATOR.match(_BIDI.sub("", kept[-1])):
        kept.pop()
    return kept
