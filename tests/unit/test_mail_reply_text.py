"""visible_reply_text: the new text of a reply, in the forms mail clients quote in."""
from __future__ import annotations

import time

import pytest

from core.mail.reply_text import visible_reply_text

NEW = "It works now, thanks."

CASES = {
    "gmail": f"{NEW}\n\nOn Tue, Mar 5, 2024 at 10:00 AM Jane Doe <jane@example.com> wrote:\n\n> Please restart it.\n",
    "gmail wrapped over two lines": (
        f"{NEW}\n\nOn Tue, Mar 5, 2024 at 10:00 AM Jane Doe <\njane.doe@example.com> wrote:\n\n> Please restart it.\n"),
    "gmail, history not quoted": (
        f"{NEW}\n\nOn Tue, Mar 5, 2024 at 10:00 AM Jane Doe <jane@example.com>\nwrote:\n\nPlease restart it.\n"),
    "outlook desktop": (
        f"{NEW}\n\n-----Original Message-----\nFrom: Support <support@example.com>\n"
        "Sent: Tuesday, March 5, 2024 10:00 AM\nTo: Bob\nSubject: RE: printer\n\nPlease restart it.\n"),
    "outlook from/sent block": (
        f"{NEW}\n\n*From:* Support <support@example.com>\n*Sent:* Tuesday, March 5, 2024 10:00 AM\n"
        "*To:* Bob\n\nPlease restart it.\n"),
    "outlook web separator": (
        f"{NEW}\n\n________________________________\nFrom: Support <support@example.com>\n"
        "Sent: Tuesday, March 5, 2024 10:00 AM\nTo: Bob <bob@example.com>\nSubject: printer\n\nPlease restart it.\n"),
    "apple mail": f"{NEW}\n\n> On 5 Mar 2024, at 10:00, Jane Doe <jane@example.com> wrote:\n>\n> Please restart it.\n",
    "thunderbird": f"{NEW}\n\nOn 05.03.24 10:00, Jane Doe wrote:\n> Please restart it.\n",
    "thunderbird original message": (
        f"{NEW}\n\n-------- Original Message --------\nSubject: printer\nDate: Tue, 5 Mar 2024 10:00:00 +0100\n"
        "From: Jane Doe <jane@example.com>\n\nPlease restart it.\n"),
    "sent from my iphone": f"{NEW}\n\nSent from my iPhone\n\n> On 5 Mar 2024, at 10:00, Jane wrote:\n> Hi\n",
    "sent from my galaxy": f"{NEW}\n\nSent from my Galaxy\n",
    "get outlook for ios": f"{NEW}\n\nGet Outlook for iOS\n",
    "signature": f"{NEW}\n\n-- \nBob Builder\nACME Corp.\n",
}
TRANSLATED = {
    "german gmail": ("Danke, jetzt geht es.",
                     "\n\nAm Di., 5. März 2024 um 10:00 Uhr schrieb Jane Doe <jane@example.com>:\n\n> Bitte neu starten.\n"),
    "german thunderbird": ("Danke, jetzt geht es.", "\n\nAm 05.03.24 um 10:00 schrieb Jane Doe:\n> Bitte neu starten.\n"),
    "german outlook": ("Danke, jetzt geht es.",
                       "\n\nVon: Support <support@example.com>\nGesendet: Dienstag, 5. März 2024 10:00\n"
                       "An: Bob <bob@example.com>\nBetreff: AW: Drucker\n\nBitte neu starten.\n"),
    "german original message": ("Danke.", "\n\n-----Ursprüngliche Nachricht-----\nVon: Support\nGesendet: Di\n\nText\n"),
    "german iphone": ("Danke, jetzt geht es.", "\n\nVon meinem iPhone gesendet\n"),
    "french gmail": ("Merci, ça marche.",
                     "\n\nLe mar. 5 mars 2024 à 10:00, Jane Doe <jane@example.com> a écrit :\n\n> Merci de redémarrer.\n"),
    "french outlook": ("Merci, ça marche.",
                       "\n\nDe : Support <support@example.com>\nEnvoyé : mardi 5 mars 2024 10:00\n"
                       "À : Bob <bob@example.com>\nObjet : RE: imprimante\n\nMerci de redémarrer.\n"),
    "french iphone": ("Merci, ça marche.", "\n\nEnvoyé de mon iPhone\n"),
    "spanish gmail": ("Gracias, ya funciona.",
                      "\n\nEl mar, 5 mar 2024 a las 10:00, Jane Doe (<jane@example.com>) escribió:\n\n> Reinicie.\n"),
    "spanish outlook": ("Gracias, ya funciona.",
                        "\n\nDe: Support <support@example.com>\nEnviado: martes, 5 de marzo de 2024 10:00\n"
                        "Para: Bob <bob@example.com>\nAsunto: RE: impresora\n\nPor favor reinicie.\n"),
    "spanish iphone": ("Gracias, ya funciona.", "\n\nEnviado desde mi iPhone\n"),
    "hebrew gmail": ("תודה, זה עובד עכשיו.",
                     "\n\n\u202bבתאריך יום ג׳, 5 במרץ 2024 ב-10:00 מאת \u202aJane Doe\u202c\u200f "
                     "<\u202ajane@example.com\u202c\u200f>:\u202c\n\n> נא להפעיל מחדש.\n"),
    "hebrew wrote": ("תודה, זה עובד עכשיו.", "\n\nב-05/03/2024 10:00, Jane Doe כתב:\n> נא להפעיל מחדש.\n"),
    "hebrew was written": ("תודה, זה עובד עכשיו.", "\n\nבתאריך 5 במרץ 2024, 10:00, נכתב:\nנא להפעיל מחדש.\n"),
    "hebrew outlook": ("תודה, זה עובד עכשיו.",
                       "\n\nמאת: Support <support@example.com>\nנשלח: יום שלישי 5 מרץ 2024 10:00\nאל: Bob\n"
                       "נושא: מדפסת\n\nנא להפעיל מחדש.\n"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_quoted_history_and_signatures_are_removed(name):
    assert visible_reply_text(CASES[name]) == NEW


@pytest.mark.parametrize("name", sorted(TRANSLATED))
def test_separators_in_other_languages_are_recognised(name):
    new, history = TRANSLATED[name]
    assert visible_reply_text(new + history) == new


def test_inline_answers_between_quotes_are_kept():
    text = ("Hallo,\nAm 05.03.2024 um 10:00 schrieb Jane Doe <jane@example.com>:\n"
            "> Frage eins?\nAntwort eins.\n> Frage zwei?\nAntwort zwei.\n")
    assert visible_reply_text(text) == "Hallo,\nAntwort eins.\nAntwort zwei."


def test_a_sentence_ending_in_wrote_is_not_a_quote_header():
    text = "My boss wrote:\nthe printer is broken again.\nPlease help."
    assert visible_reply_text(text) == text


def test_a_reply_that_is_only_a_forwarded_block_keeps_its_full_text():
    text = "From: Jane <jane@example.com>\nSent: Tuesday\nTo: Bob\n\nThe report."
    assert visible_reply_text(text) == text


def test_many_on_words_do_not_take_cubic_time():
    started = time.perf_counter()
    visible_reply_text("On On On On " * 20_000)
    visible_reply_text("On a line\n" * 20_000 + "wrote:\n")
    assert time.perf_counter() - started < 2
