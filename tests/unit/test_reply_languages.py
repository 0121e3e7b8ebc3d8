"""visible_reply_text in more languages, and HTML replies whose quote containers (Gmail, Outlook,
Apple Mail, Thunderbird, Yahoo) are dropped with their attribution line."""
from __future__ import annotations

import pytest

from core.mail.html import html_to_text
from core.mail.parse import parse_mail
from core.mail.reply_text import visible_reply_text

ANSWER = "Спасибо, теперь работает."


@pytest.mark.parametrize("header", [
    "12 марта 2024 г., в 10:00, Иван Иванов <ivan@example.ru> написал(а):",        # ru, Yandex/Apple
    "пн, 12 мар. 2024 г. в 10:00, Иван Иванов <ivan@example.ru>:",                 # ru, Gmail (no verb)
    "W dniu 12.03.2024 o 10:00, Jan Kowalski pisze:",                              # pl, Thunderbird
    "pon., 12 mar 2024 o 10:00 Jan Kowalski <jan@example.pl> napisał(a):",        # pl, Gmail
    "Op di 12 mrt 2024 om 10:00 schreef Jan <jan@example.nl>:",                   # nl
    "Il giorno mar 12 mar 2024 alle ore 10:00 Mario <mario@example.it> ha scritto:",  # it
    "Em ter., 12 de mar. de 2024 às 10:00, João <joao@example.br> escreveu:",    # pt
    "Den 12 mars 2024 kl. 10:00 skrev Sven <sven@example.se>:",                   # sv
    "tis 12 mars 2024 kl 10:00 skrev Sven <sven@example.se>:",                    # sv, Gmail
    "2024年3月12日(火) 10:00 山田太郎 <taro@example.jp>:",                          # ja, Gmail
    "2024/03/12 10:00、山田太郎 <taro@example.jp>のメール:",                        # ja, Apple Mail
    "王小明 <wang@example.cn> 于2024年3月12日周二 10:00写道：",                       # zh, Gmail
])
def test_quote_headers_in_more_languages_are_cut(header):
    text = f"{ANSWER}\n\n{header}\n> Пожалуйста, перезагрузите роутер.\n> Иван\n"
    assert visible_reply_text(text) == ANSWER, header


@pytest.mark.parametrize("block", [
    "От: Иван <ivan@example.ru>\nОтправлено: 12 марта 2024 г. 10:00\nКому: support@example.test\nТема: Принтер",
    "Od: Jan <jan@example.pl>\nWysłano: wtorek, 12 marca 2024 10:00\nDo: support@example.test\nTemat: Drukarka",
    "Van: Jan <jan@example.nl>\nVerzonden: dinsdag 12 maart 2024 10:00\nAan: support@example.test\nOnderwerp: Printer",
    "De: João <joao@example.br>\nEnviado: terça-feira, 12 de março de 2024 10:00\nPara: support@example.test\nAssunto: Impressora",
    "差出人: 山田太郎 <taro@example.jp>\n送信日時: 2024年3月12日 10:00\n宛先: support@example.test\n件名: プリンター",
    "发件人: 王小明 <wang@example.cn>\n发送时间: 2024年3月12日 10:00\n收件人: support@example.test\n主题: 打印机",
    "-----Исходное сообщение-----\nОт: Иван",
    "------------------ 原始邮件 ------------------\n发件人: 王小明",
    "-----Wiadomość oryginalna-----\nOd: Jan",
])
def test_outlook_header_blocks_and_original_message_lines_in_more_languages(block):
    text = f"{ANSWER}\n\n{block}\n\nПожалуйста, перезагрузите роутер.\n"
    assert visible_reply_text(text) == ANSWER, block


@pytest.mark.parametrize("signature", ["Отправлено с iPhone", "Wysłane z iPhone'a", "iPhoneから送信", "发自我的iPhone"])
def test_mobile_signatures_in_more_languages(signature):
    assert visible_reply_text(f"{ANSWER}\n\n{signature}\n") == ANSWER


HTML_REPLIES = {
    "gmail": '<div dir="ltr">{answer}</div><br><div class="gmail_quote"><div dir="ltr" class="gmail_attr">'
             'On Tue, Mar 12, 2024 at 10:00 AM Ann &lt;ann@example.org&gt; wrote:<br></div>'
             '<blockquote class="gmail_quote" style="margin:0 0 0 .8ex">Please restart the router.</blockquote></div>',
    "outlook web": '<div>{answer}</div><div id="appendonsend"></div><hr style="display:inline-block;width:98%">'
                   '<div id="divRplyFwdMsg" dir="ltr"><font><b>From:</b> Ann &lt;ann@example.org&gt;<br><b>Sent:</b> '
                   'Tuesday, March 12, 2024 10:00<br><b>To:</b> Support<br><b>Subject:</b> Router</font><div>&nbsp;</div>'
                   '</div><div>Please restart the router.</div>',
    "outlook desktop": '<div class="WordSection1"><p class="MsoNormal">{answer}</p><div><div style="border:none;'
                       'border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0in 0in 0in"><p class="MsoNormal"><b>Von:</b> Ann'
                       '<br><b>Gesendet:</b> Dienstag, 12. März 2024 10:00<br><b>An:</b> Support<br><b>Betreff:</b> '
                       'Router</p></div></div><p class="MsoNormal">Please restart the router.</p></div>',
    "apple mail": '<div>{answer}</div><div><br><blockquote type="cite"><div>On 12 Mar 2024, at 10:00, Ann '
                  '&lt;ann@example.org&gt; wrote:</div><br><div>Please restart the router.</div></blockquote></div>',
    "thunderbird": '<p>{answer}</p><div class="moz-cite-prefix">Am 12.03.2024 um 10:00 schrieb Ann:<br></div>'
                   '<blockquote type="cite">Please restart the router.</blockquote>',
    "yahoo": '<div>{answer}</div><div class="yahoo_quoted"><div>On Tuesday, March 12, 2024, 10:00, Ann wrote:</div>'
             '<div>Please restart the router.</div></div>',
}


@pytest.mark.parametrize("client", sorted(HTML_REPLIES))
def test_html_reply_quote_containers_are_dropped_with_their_header(client):
    html = HTML_REPLIES[client].format(answer="It works now, thanks!")
    raw = (f"From: Ann <ann@example.org>\nSubject: Re: Router\nContent-Type: text/html; charset=utf-8\n\n{html}\n"
           ).encode()
    visible = visible_reply_text(parse_mail(raw).text)
    assert visible == "It works now, thanks!", (client, visible)


def test_html_answers_between_quotes_are_kept():
    html = ('<p>See below.</p><blockquote type="cite">Is the router on?</blockquote><p>Yes, it is.</p>'
            '<blockquote type="cite">Which model?</blockquote><p>A TP-Link.</p>')
    text = html_to_text(html)
    assert text.count("> ") == 2
    visible = visible_reply_text(text)
    assert "Yes, it is." in visible and "A TP-Link." in visible and "Which model?" not in visible
