"""Bytes and RFC 2047 encoded words → str, whatever the mail declares (or fails to).

Real mail declares charsets that do not exist ("iso-gb2312"), declares the wrong one
("us-ascii" over UTF-8), declares none, or mixes two in one part. The chain here is:
the declared charset (through a table of what senders mean by it) → UTF-8 → UTF-8 with
stray bytes read as cp1252 when the text is mostly UTF-8 → the caller's hints (e.g. the
body's charset for raw 8-bit headers) → cp1252 → UTF-8 with replacement characters.

When nothing is declared (raw 8-bit header bytes, a part without charset) and no hint fits,
charset-normalizer is asked, but believed only where it is reliable: text that is mostly high
bytes and that it reads as a CJK multi-byte set (Shift_JIS, GB18030, Big5, EUC-KR…) or as
Cyrillic (then cp1251 or KOI8-R, whichever reads as lower-case prose). On short Western strings
it guesses exotic code pages (cp1250, cp037, cp1125) where cp1252 is right, so those stay cp1252.
"""
from __future__ import annotations

import base64
import binascii
import codecs
import re

from charset_normalizer import from_bytes

# What senders mean by the names they write (Windows supersets of the registered sets,
# WHATWG-style), and names that carry no information.
_MEANT = {
    "us-ascii": "utf-8", "ascii": "utf-8", "ansi_x3.4-1968": "utf-8", "646": "utf-8",
    "iso-8859-1": "cp1252", "latin1": "cp1252", "latin-1": "cp1252", "iso8859-1": "cp1252",
    "iso_8859-1": "cp1252", "l1": "cp1252", "iso-ir-100": "cp1252",
    "iso-8859-9": "cp1254", "iso-8859-11": "cp874", "tis-620": "cp874", "windows-874": "cp874",
    "iso-8859-8-i": "iso-8859-8", "iso-8859-6-i": "iso-8859-6", "visual": "iso-8859-8",
    "gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030", "iso-gb2312": "gb18030",
    "gb_2312-80": "gb18030", "euc-cn": "gb18030", "cp936": "gb18030", "chinese": "gb18030",
    "big5": "big5hkscs", "x-big5": "big5hkscs", "cp950": "big5hkscs",
    "shift_jis": "cp932", "shift-jis": "cp932", "sjis": "cp932", "x-sjis": "cp932",
    "ms_kanji": "cp932", "windows-31j": "cp932", "x-euc-jp": "euc-jp",
    "euc-kr": "cp949", "ks_c_5601-1987": "cp949", "ks_c_5601": "cp949", "korean": "cp949",
    "x-mac-roman": "mac-roman", "unicode-1-1-utf-7": "utf-7", "utf8": "utf-8",
    "unknown-8bit": "", "x-unknown": "", "unknown": "", "default": "", "x-user-defined": "",
    "charset": "", "none": "", "8bit": "",
}
# Codecs that name a transformation, not a character set: never applied to mail bytes.
_NOT_CHARSETS = {"unicode-escape", "raw-unicode-escape", "idna", "punycode", "undefined",
                 "mbcs", "oem", "palmos", "uu", "base64", "quopri", "hex", "zlib", "bz2", "rot-13"}
_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([qQbB])\?([^?]*?)\?=")
_LINE_FOLD = re.compile(r"\r?\n(?=[ \t])")
_UTF8_SEQUENCE = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")
_HIGH_BYTE = re.compile(rb"[\x80-\xff]")
_JIS_ESCAPE = re.compile(rb"\x1b(\$@|\$B|\$\(D|\(B|\(J|\(I)")


def normalise_charset(name: str | None) -> str:
    """The codec to use for a declared charset name, or '' when it names nothing usable."""
    if not name:
        return ""
    name = name.strip().strip("\"'").strip().lower()
    name = _MEANT.get(name, name)
    if not name:
        return ""
    name = re.sub(r"^(cp|windows|ibm)[-_ ]?(\d+)$", r"cp\2", name)
    try:
        codec = codecs.lookup(name)
    except (LookupError, ValueError):
        try:  # "x-gbk", "x-mac-turkish": the unregistered spelling of a registered name
            codec = codecs.lookup(_MEANT.get(name.removeprefix("x-"), name.removeprefix("x-")) or "-")
        except (LookupError, ValueError):
            return ""
    if codec.name in _NOT_CHARSETS or not getattr(codec, "_is_text_encoding", True):
        return ""
    return codec.name


def decode_bytes(data: bytes, declared: str | None = "", hints: tuple[str, ...] = ()) -> str:
    """Text of `data`: declared charset → UTF-8 → mostly-UTF-8 → hints → cp1252 → replacement."""
    charset = normalise_charset(declared)
    if charset == "utf-7":  # all ASCII on the wire: decode it before the ASCII shortcut below
        try:
            return data.decode("utf-7")
        except (ValueError, LookupError):
            charset = ""
    if data.isascii() and b"\x1b" not in data:
        return data.decode("ascii")
    if charset.startswith("iso2022_jp") or (
            charset in ("", "utf-8") and data.isascii() and _JIS_ESCAPE.search(data)):
        jis = _decode_iso2022jp(data, charset or "iso2022_jp")
        if jis is not None:
            return jis
    for candidate in (charset, "utf-8"):
        if candidate:
            try:
                return data.decode(candidate)
            except (ValueError, LookupError):  # UnicodeDecodeError, or a codec's own complaint
                pass
    if _mostly_utf8(data):
        return data.decode("utf-8", errors="cp1252-stray")
    for hint in hints:
        hint = normalise_charset(hint)
        if hint and hint != charset:
            try:
                return data.decode(hint)
            except (ValueError, LookupError):
                pass
    detected = _detected(data) if not charset else None
    if detected is not None:
        return detected
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        return data.decode("utf-8", errors="replace")


_CJK = {"cp932", "shift_jis", "shift_jis_2004", "shift_jisx0213", "euc_jp", "euc_jis_2004", "euc_jisx0213",
        "gb18030", "gbk", "gb2312", "hz", "big5", "big5hkscs", "cp950", "cp949", "euc_kr", "johab"}
_CJK_CHARACTER = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\u3000-\u303f\uff01-\uff5e]")
_HANGUL = re.compile("[\uac00-\ud7af]")
_LOWER_CYRILLIC = re.compile("[а-яё]")
_CYRILLIC_LETTER = re.compile("[А-яЁё]")


def _detected(data: bytes) -> str | None:
    """The text as charset-normalizer reads it, where its guess is trustworthy; else None."""
    high = len(_HIGH_BYTE.findall(data[:4096]))
    if high < 2 or high < 0.3 * len(data[:4096].strip()):
        return None  # a few accented letters in ASCII text: Western, cp1252 reads it
    try:
        best = from_bytes(data[:65536]).best()
    except Exception:  # the detector is a guess; never let it cost the text
        return None
    if best is None:
        return None
    encoding = codecs.lookup(best.encoding).name.replace("-", "_")
    if encoding in _CJK:
        try:
            text = data.decode(best.encoding)
        except (ValueError, LookupError):
            return None
        if _reads_as(text, encoding):
            return text
    return _as_cyrillic(data) if high >= 6 else None


def _reads_as(text: str, encoding: str) -> bool:
    """Is this CJK reading made of the script it claims? Latin-1 or KOI8-R read as Shift_JIS comes
    out as half-width katakana, Greek or Big5 read as a Korean set as a few stray syllables."""
    wide = sum(ord(ch) > 127 for ch in text) or 1
    if encoding in ("cp949", "euc_kr", "johab"):
        return len(_HANGUL.findall(text)) >= 0.8 * wide
    return len(_CJK_CHARACTER.findall(text)) >= 0.8 * wide


def _as_cyrillic(data: bytes) -> str | None:
    """cp1251 or KOI8-R, whichever reads as prose (mostly lower-case Cyrillic), if either does."""
    best = max((data.decode(c, errors="replace") for c in ("cp1251", "koi8_r")),
               key=lambda t: len(_LOWER_CYRILLIC.findall(t)))
    letters = [ch for ch in best if ch.isalpha()]
    cyrillic = len(_CYRILLIC_LETTER.findall(best))
    words = re.findall("[А-яЁё]{3,}", best)
    if cyrillic >= 0.8 * len(letters) and len(_LOWER_CYRILLIC.findall(best)) >= 0.7 * cyrillic and len(words) >= 2:
        return best
    return None


def _mostly_utf8(data: bytes) -> bool:
    """More valid multi-byte UTF-8 sequences than stray bytes: a UTF-8 text with a few accidents."""
    sequences = _UTF8_SEQUENCE.findall(data)
    stray = len(_HIGH_BYTE.findall(data)) - sum(map(len, sequences))
    return bool(sequences) and len(sequences) >= stray


def _stray_as_cp1252(error: UnicodeDecodeError) -> tuple[str, int]:
    bad = error.object[error.start:error.end]
    return bad.decode("cp1252", errors="replace"), error.end


codecs.register_error("cp1252-stray", _stray_as_cp1252)


def _decode_iso2022jp(data: bytes, codec: str) -> str | None:
    """ISO-2022-JP as Windows writes it (CP50221): JIS X 0208 plus the NEC and IBM rows
    (①, ㈱…) that Python's strict iso2022_jp codec refuses. None when it is not that."""
    try:
        return data.decode(codec)
    except (ValueError, LookupError):
        pass
    out = bytearray()
    mode = b"(B"
    pos = 0
    for match in [*_JIS_ESCAPE.finditer(data), None]:
        end = match.start() if match else len(data)
        chunk = data[pos:end]
        if mode in (b"$@", b"$B", b"$(D"):
            chunk = chunk.replace(b"\r", b"").replace(b"\n", b"")
            for i in range(0, len(chunk) - 1, 2):
                out += _jis_to_sjis(chunk[i], chunk[i + 1])
        elif mode == b"(I":
            out += bytes(b | 0x80 for b in chunk if 0x21 <= b <= 0x5F)
        else:
            out += chunk
        if match:
            mode, pos = match.group(1), match.end()
    try:
        return bytes(out).decode("cp932")
    except UnicodeDecodeError:
        return None


def _jis_to_sjis(j1: int, j2: int) -> bytes:
    if not (0x21 <= j1 <= 0x7E and 0x21 <= j2 <= 0x7E):
        return b"?"
    s1 = (j1 + 1) // 2 + (0x70 if j1 <= 0x5E else 0xB0)
    s2 = j2 + (0x1F if j1 % 2 else 0x7E)
    if j1 % 2 and s2 >= 0x7F:
        s2 += 1
    return bytes((s1, s2))


_SURROGATE_ESCAPE = re.compile("[\udc80-\udcff]")


def raw_header_text(value: str, hints: tuple[str, ...] = ()) -> str:
    """A header value as the stdlib hands it over: raw 8-bit bytes arrive as surrogate
    escapes; turn them back into bytes and decode them like a body."""
    if value.isascii() or not _SURROGATE_ESCAPE.search(value):
        return value
    return decode_bytes(value.encode("utf-8", "surrogateescape"), "", hints)


def decode_words(value: str, hints: tuple[str, ...] = ()) -> str:
    """Unfold a header value and decode its RFC 2047 encoded words (also when a sender put
    them inside quotes or split a multi-byte character across two words)."""
    value = raw_header_text(_LINE_FOLD.sub("", value), hints).replace("\r", "").replace("\n", " ")
    if "=?" not in value:
        return value
    out: list[str] = []
    pending: list[tuple[str, bytes]] = []  # adjacent encoded words, decoded together
    pos = 0
    for match in _ENCODED_WORD.finditer(value):
        between = value[pos:match.start()]
        if between and (not pending or between.strip()):
            out.append(_flush(pending, hints))
            out.append(between)
        pos = match.end()
        charset = match.group(1).split("*", 1)[0]  # RFC 2231 language suffix
        data = _word_bytes(match.group(2), match.group(3))
        if data is None:
            out.append(_flush(pending, hints))
            out.append(match.group(0))
            continue
        if pending and pending[-1][0].lower() != charset.lower():
            out.append(_flush(pending, hints))
        pending.append((charset, data))
    out.append(_flush(pending, hints))
    out.append(value[pos:])
    return "".join(out)


def _flush(pending: list[tuple[str, bytes]], hints: tuple[str, ...]) -> str:
    if not pending:
        return ""
    text = decode_bytes(b"".join(data for _, data in pending), pending[0][0], hints)
    pending.clear()
    return text


def _word_bytes(encoding: str, text: str) -> bytes | None:
    try:
        if encoding in "bB":
            text = re.sub(r"[^A-Za-z0-9+/]", "", text)
            return base64.b64decode(text + "=" * (-len(text) % 4))
        text = text.replace("_", " ")
        return re.sub(r"=([0-9A-Fa-f]{2})", lambda m: chr(int(m.group(1), 16)), text).encode("latin-1")
    except (binascii.Error, ValueError, UnicodeEncodeError):
        return None
