"""Decode the bytes of an HTML page to text: BOM, HTTP header, `<meta>` prescan, detection.

The order follows the WHATWG "encoding sniffing" algorithm, with two departures that
keep mislabelled pages from turning into silent mojibake:

1. A declared label whose decoding fails strictly (cp1251 bytes labelled UTF-8) is not
   trusted: the bytes go to detection and the result carries a warning.
2. A declared *legacy* label (anything but UTF-8/16) whose decoding succeeds but looks
   wrong is checked too: if the bytes are valid multi-byte UTF-8 they are UTF-8 (a
   legacy text is practically never valid UTF-8 by accident), and if charset-normalizer's
   mess ratio of the decoded text reaches its own "chaotic" threshold, detection may
   replace the label when its decoding is less messy. Both cases are warned about.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from typing import Literal

import charset_normalizer
from charset_normalizer.md import mess_ratio

from normalizers.common import sniff_bom

__all__ = [
    "WHATWG_LABELS",
    "Decoded",
    "EncodingSource",
    "decode_html",
    "detect_encoding",
    "lookup_label",
    "prescan_meta_charset",
]

EncodingSource = Literal["header", "bom", "meta", "detected", "default"]

# WHATWG Encoding Standard labels -> the Python codec that decodes them as browsers do.
# Where Python's codec of the same name is narrower (latin-1, ascii, gb2312, Shift_JIS,
# euc-kr, iso-8859-9/11) browsers use a superset, and so do we. Labels not listed here are
# ignored (as browsers ignore them), even when Python knows them ("rot13", "base64").
# fmt: off
_CODEC_LABELS: dict[str, tuple[str, ...]] = {
    "utf-8": ("unicode-1-1-utf-8", "unicode11utf8", "unicode20utf8", "utf-8", "utf8", "x-unicode20utf8"),
    "cp866": ("866", "cp866", "csibm866", "ibm866"),
    "iso8859-2": ("csisolatin2", "iso-8859-2", "iso-ir-101", "iso8859-2", "iso88592", "iso_8859-2", "l2", "latin2"),
    "iso8859-3": ("csisolatin3", "iso-8859-3", "iso-ir-109", "iso8859-3", "iso88593", "iso_8859-3", "l3", "latin3"),
    "iso8859-4": ("csisolatin4", "iso-8859-4", "iso-ir-110", "iso8859-4", "iso88594", "iso_8859-4", "l4", "latin4"),
    "iso8859-5": ("csisolatincyrillic", "cyrillic", "iso-8859-5", "iso-ir-144", "iso8859-5", "iso88595", "iso_8859-5"),
    "iso8859-6": (
        "arabic", "asmo-708", "csiso88596e", "csiso88596i", "csisolatinarabic", "ecma-114", "iso-8859-6",
        "iso-8859-6-e", "iso-8859-6-i", "iso-ir-127", "iso8859-6", "iso88596", "iso_8859-6",
    ),
    "iso8859-7": (
        "csisolatingreek", "ecma-118", "elot_928", "greek", "greek8", "iso-8859-7", "iso-ir-126", "iso8859-7",
        "iso88597", "iso_8859-7", "sun_eu_greek",
    ),
    "iso8859-8": (
        "csiso88598e", "csisolatinhebrew", "hebrew", "iso-8859-8", "iso-8859-8-e", "iso-ir-138", "iso8859-8",
        "iso88598", "iso_8859-8", "visual", "csiso88598i", "iso-8859-8-i", "logical",
    ),
    "iso8859-10": ("csisolatin6", "iso-8859-10", "iso-ir-157", "iso8859-10", "iso885910", "l6", "latin6"),
    "iso8859-13": ("iso-8859-13", "iso8859-13", "iso885913"),
    "iso8859-14": ("iso-8859-14", "iso8859-14", "iso885914"),
    "iso8859-15": ("csisolatin9", "iso-8859-15", "iso8859-15", "iso885915", "iso_8859-15", "l9"),
    "iso8859-16": ("iso-8859-16",),
    "koi8-r": ("cskoi8r", "koi", "koi8", "koi8-r", "koi8_r"),
    "koi8-u": ("koi8-ru", "koi8-u"),
    "mac-roman": ("csmacintosh", "mac", "macintosh", "x-mac-roman"),
    "mac-cyrillic": ("x-mac-cyrillic", "x-mac-ukrainian"),
    "cp874": ("dos-874", "iso-8859-11", "iso8859-11", "iso885911", "tis-620", "windows-874"),
    "cp1250": ("cp1250", "windows-1250", "x-cp1250"),
    "cp1251": ("cp1251", "windows-1251", "x-cp1251"),
    "cp1252": (
        "ansi_x3.4-1968", "ascii", "cp1252", "cp819", "csisolatin1", "ibm819", "iso-8859-1", "iso-ir-100",
        "iso8859-1", "iso88591", "iso_8859-1", "iso_8859-1:1987", "l1", "latin1", "us-ascii", "windows-1252",
        "x-cp1252",
    ),
    "cp1253": ("cp1253", "windows-1253", "x-cp1253"),
    "cp1254": (
        "cp1254", "csisolatin5", "iso-8859-9", "iso-ir-148", "iso8859-9", "iso88599", "iso_8859-9", "l5", "latin5",
        "windows-1254", "x-cp1254",
    ),
    "cp1255": ("cp1255", "windows-1255", "x-cp1255"),
    "cp1256": ("cp1256", "windows-1256", "x-cp1256"),
    "cp1257": ("cp1257", "windows-1257", "x-cp1257"),
    "cp1258": ("cp1258", "windows-1258", "x-cp1258"),
    # The WHATWG GBK decoder *is* the gb18030 decoder.
    "gb18030": (
        "chinese", "csgb2312", "csiso58gb231280", "gb2312", "gb_2312", "gb_2312-80", "gbk", "iso-ir-58", "x-gbk",
        "gb18030",
    ),
    "big5hkscs": ("big5", "big5-hkscs", "cn-big5", "csbig5", "x-x-big5"),
    "euc-jp": ("cseucpkdfmtjapanese", "euc-jp", "x-euc-jp"),
    "iso2022-jp": ("csiso2022jp", "iso-2022-jp"),
    "cp932": ("csshiftjis", "ms932", "ms_kanji", "shift-jis", "shift_jis", "sjis", "windows-31j", "x-sjis"),
    "cp949": (
        "cseuckr", "csksc56011987", "euc-kr", "iso-ir-149", "korean", "ks_c_5601-1987", "ks_c_5601-1989", "ksc5601",
        "ksc_5601", "windows-949",
    ),
    "utf-16-be": ("unicodefffe", "utf-16be"),
    "utf-16-le": ("csunicode", "iso-10646-ucs-2", "ucs-2", "unicode", "unicodefeff", "utf-16", "utf-16le"),
}
# fmt: on
# Values are normalised codec names (`codecs.lookup(...).name`), the form `Decoded.encoding` reports.
WHATWG_LABELS: dict[str, str] = {
    label: codecs.lookup(codec).name for codec, labels in _CODEC_LABELS.items() for label in labels
}

# When charset-normalizer scores several codecs exactly alike (same mess, same language
# coherence: Western text decodes to equally plausible letters in cp1250, cp1252, cp1257
# and cp1258, yet "ñ" and "ã" exist only in cp1252), it lists them in its own trial
# order (cp1250 first). The codec more of the web uses wins such a tie instead: the
# legacy encodings roughly in order of W3Techs' usage survey (2024); unlisted ones rank last.
_TIE_ORDER = tuple(
    codecs.lookup(name).name
    for name in (
        "utf-8", "cp1252", "latin-1", "cp1251", "shift_jis", "cp932", "euc_jp", "gb2312", "gbk", "gb18030",
        "euc_kr", "cp949", "iso8859-2", "cp1250", "big5", "iso8859-15", "cp1256", "iso8859-9", "cp1254",
        "cp1253", "iso8859-7", "cp1255", "koi8-r", "cp874", "cp1257", "cp1258",
    )
)  # fmt: skip

# Codecs charset-normalizer may name -> the browser superset we decode with instead.
_DETECTED_SUPERSETS = {
    codecs.lookup(narrow).name: codecs.lookup(wide).name
    for narrow, wide in (
        ("latin_1", "cp1252"),
        ("ascii", "cp1252"),
        ("iso8859_9", "cp1254"),
        ("iso8859_11", "cp874"),
        ("tis_620", "cp874"),
        ("gb2312", "gb18030"),
        ("gbk", "gb18030"),
        ("big5", "big5hkscs"),
        ("shift_jis", "cp932"),
        ("euc_kr", "cp949"),
    )
}

_UTF8 = codecs.lookup("utf-8").name
_HIGH_BYTES = bytes(range(0x80, 0x100))
_UTF16 = frozenset({codecs.lookup("utf-16-le").name, codecs.lookup("utf-16-be").name})

# The WHATWG prescan stops at 1024 bytes; real pages put a long <head> (inline CSS,
# scripts, comments) before their <meta charset>, so we look further, as the brief asks.
PRESCAN_BYTES = 4096
# charset-normalizer decodes the whole input once per candidate codec, so its cost grows
# with the input; 64 KB holds plenty of text for a confident guess (tens of thousands of
# characters) while keeping detection to milliseconds on multi-megabyte pages.
DETECT_BYTES = 65_536
# charset-normalizer's own default: a decoding with a mess ratio at or above this is "chaotic".
MESS_THRESHOLD = 0.2
# A page labelled UTF-8 whose bytes are not all UTF-8 is a mislabelled legacy page only if
# there is enough to tell: with fewer non-ASCII bytes than this (a few stray or cut bytes in
# an ASCII page), detection has no evidence to overrule the label, and the page is read as
# UTF-8 with U+FFFD, as browsers read it.
MIN_DETECT_EVIDENCE = 16
# Detection picks among the encodings browsers decode HTML in (the WHATWG Encoding
# Standard's), never a DOS code page such as cp775 or cp437.
WEB_ENCODINGS = [
    "utf_8", "ascii", "latin_1", "cp1250", "cp1251", "cp1252", "cp1253", "cp1254", "cp1255", "cp1256", "cp1257",
    "cp1258", "iso8859_2", "iso8859_3", "iso8859_4", "iso8859_5", "iso8859_6", "iso8859_7", "iso8859_8",
    "iso8859_10", "iso8859_11", "iso8859_13", "iso8859_14", "iso8859_15", "iso8859_16", "koi8_r", "koi8_u",
    "mac_roman", "mac_cyrillic", "cp866", "cp874", "tis_620", "shift_jis", "cp932", "euc_jp", "iso2022_jp",
    "gb2312", "gbk", "gb18030", "big5", "big5hkscs", "euc_kr", "cp949", "utf_16", "utf_16_le", "utf_16_be",
]  # fmt: skip

_COMMENT = re.compile(rb"<!--.*?(?:-->|\Z)", re.DOTALL)
_META_TAG = re.compile(rb"<meta[\s/][^>]*>?", re.IGNORECASE)
_ATTR = re.compile(rb"""([^\s"'>/=]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]*)))?""")
_CHARSET_IN_CONTENT = re.compile(r"""charset\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s;"']+))""", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Decoded:
    """The text of a page, the codec that produced it, how it was chosen, and what went wrong."""

    text: str
    encoding: str
    source: EncodingSource
    warnings: tuple[str, ...] = ()


def lookup_label(label: str | None) -> str | None:
    """The Python codec for a WHATWG encoding label, or None for an unknown label."""
    if label is None:
        return None
    return WHATWG_LABELS.get(label.strip().strip("\"'").strip().lower())


def decode_html(raw: bytes, content_type: str | None = None) -> Decoded:
    """Decode an HTML page: BOM, then Content-Type charset, then `<meta>`, then detection, then UTF-8."""
    warnings: list[str] = []
    bom = sniff_bom(raw)
    if bom is not None:
        # A BOM wins over every label, as in browsers; bad bytes after it become U+FFFD.
        # (Browsers know no UTF-32; its mark is unambiguous enough to honour all the same.)
        codec, body = bom
        text, clean = _decode(body, codec)
        if not clean:
            warnings.append(f"bytes invalid in {codec} after its byte-order mark replaced with U+FFFD")
        return Decoded(text, codec, "bom", tuple(warnings))

    declared: list[tuple[EncodingSource, str]] = []
    header_label = _charset_from_content_type(content_type) if content_type else None
    if header_label is not None:
        header_codec = lookup_label(header_label)
        if header_codec is None:
            warnings.append(f"unknown charset {header_label!r} in Content-Type ignored")
        else:
            declared.append(("header", header_codec))
    meta_label = prescan_meta_charset(raw[:PRESCAN_BYTES])
    if meta_label is not None:
        meta_codec = lookup_label(meta_label)
        if meta_codec is None:
            warnings.append(f"unknown charset {meta_label!r} in <meta> ignored")
        else:
            # A <meta> readable as ASCII cannot be UTF-16; WHATWG reads it as UTF-8.
            declared.append(("meta", _UTF8 if meta_codec in _UTF16 else meta_codec))

    for source, codec in declared:
        result = _try_declared(raw, codec, source, warnings)
        if result is not None:
            return result

    return _detect(raw, warnings)


def prescan_meta_charset(head: bytes) -> str | None:
    """The charset label of the first `<meta charset>` or `<meta http-equiv=Content-Type>` in `head`."""
    head = _COMMENT.sub(b"", head)
    for tag in _META_TAG.finditer(head):
        attrs: dict[bytes, bytes] = {}
        for match in _ATTR.finditer(tag.group(0)[5:]):
            name = match.group(1).lower()
            if name not in attrs:  # WHATWG: the first occurrence of an attribute counts
                attrs[name] = match.group(2) or match.group(3) or match.group(4) or b""
        if b"charset" in attrs:
            return attrs[b"charset"].decode("latin-1").strip() or None
        if attrs.get(b"http-equiv", b"").strip().lower() == b"content-type" and b"content" in attrs:
            label = _charset_from_content_type(attrs[b"content"].decode("latin-1"))
            if label is not None:
                return label
    return None


def _charset_from_content_type(value: str) -> str | None:
    match = _CHARSET_IN_CONTENT.search(value)
    if match is None:
        return None
    label = (match.group(1) or match.group(2) or match.group(3) or "").strip()
    return label or None


def _decode(raw: bytes, codec: str) -> tuple[str, bool]:
    """Decode strictly if possible, else with U+FFFD; the flag says whether it was clean."""
    try:
        return raw.decode(codec), True
    except UnicodeDecodeError:
        return raw.decode(codec, errors="replace"), False


def _try_declared(raw: bytes, codec: str, source: EncodingSource, warnings: list[str]) -> Decoded | None:
    """Decode with a declared codec, or None (with a warning) when the label is not believable."""
    try:
        text = raw.decode(codec)
    except UnicodeDecodeError as exc:
        if codec == _UTF8 and _non_ascii(_sample(raw)) < MIN_DETECT_EVIDENCE:
            warnings.append(f"bytes invalid in declared {source} charset utf-8 replaced with U+FFFD")
            return Decoded(raw.decode(codec, errors="replace"), codec, source, tuple(warnings))
        warnings.append(f"declared {source} charset {codec} does not decode byte {exc.start}; label ignored")
        return None
    if codec == _UTF8 or codec in _UTF16 or text.isascii():
        return Decoded(text, codec, source, tuple(warnings))
    if _is_multibyte_utf8(raw):
        warnings.append(f"declared {source} charset {codec} but the bytes are valid UTF-8; decoded as UTF-8")
        return Decoded(raw.decode("utf-8"), "utf-8", "detected", tuple(warnings))
    sample = _sample(raw)
    declared_mess = mess_ratio(sample.decode(codec, errors="replace"), MESS_THRESHOLD)
    if declared_mess < MESS_THRESHOLD:
        return Decoded(text, codec, source, tuple(warnings))
    guess = _guess(sample)
    if guess is not None and guess != codec:
        guess_mess = mess_ratio(sample.decode(guess, errors="replace"), MESS_THRESHOLD)
        if guess_mess < declared_mess:
            warnings.append(f"declared {source} charset {codec} gives garbled text; detected {guess} instead")
            return _decode_detected(raw, guess, warnings)
    warnings.append(f"declared {source} charset {codec} gives text that looks garbled; kept for want of better")
    return Decoded(text, codec, source, tuple(warnings))


def _detect(raw: bytes, warnings: list[str]) -> Decoded:
    """Detect the encoding of undeclared (or wrongly declared) bytes; UTF-8 with U+FFFD as a last resort."""
    try:
        # Cheap and decisive: valid UTF-8 is what nearly every modern page is, and a legacy
        # encoding is practically never valid UTF-8 by accident. Also covers the whole input,
        # where detection only sees DETECT_BYTES.
        return Decoded(raw.decode("utf-8"), "utf-8", "detected", tuple(warnings))
    except UnicodeDecodeError:
        pass
    guess = detect_encoding(raw)
    if guess is not None:
        return _decode_detected(raw, guess, warnings)
    warnings.append("encoding not declared and not detected; decoded as UTF-8 with U+FFFD")
    return Decoded(raw.decode("utf-8", errors="replace"), "utf-8", "default", tuple(warnings))


def _decode_detected(raw: bytes, codec: str, warnings: list[str]) -> Decoded:
    text, clean = _decode(raw, codec)
    if not clean:
        # Detection saw only the first DETECT_BYTES; the tail disagrees in places.
        warnings.append(f"bytes invalid in detected charset {codec} replaced with U+FFFD")
    return Decoded(text, codec, "detected", tuple(warnings))


def detect_encoding(raw: bytes) -> str | None:
    """The codec charset detection finds for `raw` (from its first DETECT_BYTES), as its browser superset; or None."""
    return _guess(_sample(raw))


def _guess(sample: bytes) -> str | None:
    """charset-normalizer's best codec for `sample`, widened to the browser superset."""
    # preemptive_behaviour=False: do not let an in-document <meta> label decide; we only
    # get here when the labels were absent or not believable.
    matches = charset_normalizer.from_bytes(sample, preemptive_behaviour=False, cp_isolation=WEB_ENCODINGS)
    best = matches.best()
    if best is None:
        return None
    tied = [codecs.lookup(m.encoding).name for m in matches if (m.chaos, m.coherence) == (best.chaos, best.coherence)]
    name = min(tied, key=lambda codec: _TIE_ORDER.index(codec) if codec in _TIE_ORDER else len(_TIE_ORDER))
    wider = _DETECTED_SUPERSETS.get(name)
    if wider is not None:
        try:
            sample.decode(wider)
        except UnicodeDecodeError:  # latin-1 bytes 0x81/0x8d/0x8f/0x90/0x9d are undefined in cp1252
            return name
        return wider
    return name


def _sample(raw: bytes) -> bytes:
    """The first DETECT_BYTES, cut after a newline or '>' so no multi-byte character is split."""
    if len(raw) <= DETECT_BYTES:
        return raw
    head = raw[:DETECT_BYTES]
    # 0x0A and 0x3E are never trail bytes in UTF-8, Shift_JIS, GBK, Big5 or EUC encodings.
    cut = max(head.rfind(b"\n"), head.rfind(b">"))
    return head[: cut + 1] if cut > DETECT_BYTES // 2 else head


def _non_ascii(raw: bytes) -> int:
    """How many bytes of `raw` are not ASCII."""
    return len(raw) - len(raw.translate(None, _HIGH_BYTES))


def _is_multibyte_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return not raw.isascii()
