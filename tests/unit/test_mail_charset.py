"""Charset fallbacks: declared → UTF-8 → mostly-UTF-8 → hints → cp1252 → replacement."""
from __future__ import annotations

from core.mail.charset import decode_bytes, decode_words, normalise_charset
from core.mail.parse import parse_mail


def mail(headers: str, body: bytes) -> bytes:
    return ("From: Ann <ann@example.org>\r\nTo: support@example.com\r\n" + headers).encode() + b"\r\n" + body


def test_declared_charset_is_used_when_it_fits():
    assert decode_bytes("Grüße".encode("iso-8859-15"), "iso-8859-15") == "Grüße"


def test_declared_us_ascii_over_utf8_falls_back_to_utf8():
    parsed = parse_mail(mail("Content-Type: text/plain; charset=us-ascii\r\n", "Grüße, Zoë".encode()))
    assert parsed.text == "Grüße, Zoë"


def test_undeclared_8bit_latin1_is_read_as_cp1252():
    parsed = parse_mail(mail("Subject: x\r\n", "Müller – café".encode("cp1252")))
    assert parsed.text == "Müller – café"


def test_unknown_charset_names_fall_back_instead_of_failing():
    assert normalise_charset("x-unknown") == ""
    assert normalise_charset("iso-gb2312") == "gb18030"
    assert normalise_charset("x-" * 5000) == ""
    assert normalise_charset("base64") == ""  # a transformation, not a character set
    parsed = parse_mail(mail("Content-Type: text/plain; charset=x-no-such-charset\r\n", "naïve".encode()))
    assert parsed.text == "naïve"


def test_mostly_utf8_text_keeps_its_stray_latin1_bytes_readable():
    data = "Grüße aus Köln – ".encode() + "café".encode("latin-1")
    assert decode_bytes(data, "utf-8") == "Grüße aus Köln – café"


def test_hopeless_bytes_become_replacement_characters_not_errors():
    assert "\ufffd" in decode_bytes(b"\x81\x8d\x8f\x90\x9d", "")


def test_gb2312_declared_text_with_gbk_characters_is_read_as_gb18030():
    text = "內應力產生"
    assert decode_bytes(text.encode("gb18030"), "gb2312") == text


def test_iso_2022_jp_with_windows_extensions_is_decoded():
    data = b"\x1b$B-!\x1b(B1\x1b$BET\x1b(B"  # ① (NEC row 13), "1", 都
    assert decode_bytes(data, "iso-2022-jp") == "①1都"


def test_raw_8bit_header_is_decoded_with_the_body_charset_as_hint():
    subject = "转发：整体提升企业服务水平".encode("gb18030")
    raw = (b"From: ann@example.org\r\nSubject: " + subject + b"\r\n"
           b"Content-Type: text/plain; charset=gb2312\r\n\r\n" + "你好".encode("gb18030"))
    parsed = parse_mail(raw)
    assert parsed.subject == "转发：整体提升企业服务水平"
    assert parsed.text == "你好"


def test_raw_utf8_header_is_decoded():
    parsed = parse_mail("From: Rémi <r@example.fr>\r\nSubject: élégibilité\r\n\r\nbody".encode())
    assert (parsed.subject, parsed.from_name, parsed.from_address) == ("élégibilité", "Rémi", "r@example.fr")


def test_encoded_words_split_inside_a_multibyte_character_are_joined():
    value = "=?UTF-8?B?5pel5pys6A==?= =?UTF-8?B?qp4=?="  # 日本語 cut in the middle of 語
    assert decode_words(value) == "日本語"


def test_whitespace_inside_encoded_words_and_between_plain_words_survives():
    assert decode_words("=?utf-8?Q?test_1234_?=") == "test 1234 "
    assert decode_words("FW: Tax Invoice  INX4183") == "FW: Tax Invoice  INX4183"
    assert decode_words("=?utf-8?q?a?=\r\n =?utf-8?q?b?=  c") == "ab  c"


def test_display_name_with_an_encoded_comma_keeps_its_address():
    parsed = parse_mail(b"From: =?iso-8859-1?Q?B=FCrling,=20Andreas?= <smith@example.com>\r\n\r\nhi")
    assert (parsed.from_name, parsed.from_address) == ("Bürling, Andreas", "smith@example.com")
