"""Language: normalise declared tags (BCP 47-ish) and detect the language of text with py3langid."""

from __future__ import annotations

import re
from functools import cache
from typing import Protocol

__all__ = ["MAX_DETECT_CHARS", "MIN_CONFIDENCE", "MIN_LETTERS", "detect_language", "normalize_language_tag"]

# ISO 639-1: the two-letter codes the schema stores.
# fmt: off
ISO_639_1 = frozenset((
    "aa", "ab", "ae", "af", "ak", "am", "an", "ar", "as", "av", "ay", "az", "ba", "be", "bg", "bh", "bi", "bm", "bn",
    "bo", "br", "bs", "ca", "ce", "ch", "co", "cr", "cs", "cu", "cv", "cy", "da", "de", "dv", "dz", "ee", "el", "en",
    "eo", "es", "et", "eu", "fa", "ff", "fi", "fj", "fo", "fr", "fy", "ga", "gd", "gl", "gn", "gu", "gv", "ha", "he",
    "hi", "ho", "hr", "ht", "hu", "hy", "hz", "ia", "id", "ie", "ig", "ii", "ik", "io", "is", "it", "iu", "ja", "jv",
    "ka", "kg", "ki", "kj", "kk", "kl", "km", "kn", "ko", "kr", "ks", "ku", "kv", "kw", "ky", "la", "lb", "lg", "li",
    "ln", "lo", "lt", "lu", "lv", "mg", "mh", "mi", "mk", "ml", "mn", "mr", "ms", "mt", "my", "na", "nb", "nd", "ne",
    "ng", "nl", "nn", "no", "nr", "nv", "ny", "oc", "oj", "om", "or", "os", "pa", "pi", "pl", "ps", "pt", "qu", "rm",
    "rn", "ro", "ru", "rw", "sa", "sc", "sd", "se", "sg", "si", "sk", "sl", "sm", "sn", "so", "sq", "sr", "ss", "st",
    "su", "sv", "sw", "ta", "te", "tg", "th", "ti", "tk", "tl", "tn", "to", "tr", "ts", "tt", "tw", "ty", "ug", "uk",
    "ur", "uz", "ve", "vi", "vo", "wa", "wo", "xh", "yi", "yo", "za", "zh", "zu",
))
# Withdrawn two-letter codes still seen in the wild -> their current code.
DEPRECATED_639_1 = {"iw": "he", "in": "id", "ji": "yi", "jw": "jv", "mo": "ro"}
# Three-letter (ISO 639-2/B, 639-2/T, 639-3) codes of widely published languages -> ISO 639-1.
ISO_639_3_TO_1 = {
    "ara": "ar", "ben": "bn", "bul": "bg", "cat": "ca", "ces": "cs", "cze": "cs", "chi": "zh", "zho": "zh",
    "cmn": "zh", "dan": "da", "deu": "de", "ger": "de", "ell": "el", "gre": "el", "eng": "en", "est": "et",
    "eus": "eu", "baq": "eu", "fas": "fa", "per": "fa", "fin": "fi", "fra": "fr", "fre": "fr", "glg": "gl",
    "heb": "he", "hin": "hi", "hrv": "hr", "hun": "hu", "ind": "id", "ita": "it", "jpn": "ja", "kor": "ko",
    "lav": "lv", "lit": "lt", "msa": "ms", "may": "ms", "nld": "nl", "dut": "nl", "nob": "nb", "nno": "nn",
    "nor": "no", "pol": "pl", "por": "pt", "ron": "ro", "rum": "ro", "rus": "ru", "slk": "sk", "slo": "sk",
    "slv": "sl", "spa": "es", "srp": "sr", "swa": "sw", "swe": "sv", "tgl": "tl", "tha": "th", "tur": "tr",
    "ukr": "uk", "urd": "ur", "vie": "vi",
}
# English names sometimes put in <meta name="language"> instead of a code.
LANGUAGE_NAMES = {
    "arabic": "ar", "chinese": "zh", "czech": "cs", "danish": "da", "dutch": "nl", "english": "en",
    "finnish": "fi", "french": "fr", "german": "de", "greek": "el", "hebrew": "he", "hindi": "hi",
    "hungarian": "hu", "indonesian": "id", "italian": "it", "japanese": "ja", "korean": "ko", "norwegian": "no",
    "persian": "fa", "polish": "pl", "portuguese": "pt", "romanian": "ro", "russian": "ru", "spanish": "es",
    "swedish": "sv", "thai": "th", "turkish": "tr", "ukrainian": "uk", "vietnamese": "vi",
}
# fmt: on

_TAG = re.compile(r"([A-Za-z]{2,3})(?:[-_][A-Za-z0-9]{1,8})*")

# Detection only reads the start of the text: py3langid's cost is linear in the input, and
# the language of an article is settled by its first kilobyte (the 892 dev pages' languages
# are the same from 1 KB as from 4 KB; BENCHMARKS.md has the times).
MAX_DETECT_CHARS = 1024
# Fewer letters than this and py3langid guesses: 20-character slices of plain news
# sentences in en/es scored 0.50-0.56 in our tests, two-word headlines much less.
MIN_LETTERS = 20
# Normalised probability (py3langid norm_probs, which scales the softmax by sqrt(bytes)
# so it stays calibrated across lengths). Chosen from tests/test_language.py's samples:
# one news sentence in each of en/de/fr/es/ru/ar/zh/tr/pt/ja scores >= 0.72 at full length
# and >= 0.84 at 40 characters, while names, URLs, numbers and keyboard-mash of the same
# lengths score <= 0.40 (or come out as "zxx", no linguistic content); 0.5 sits between.
MIN_CONFIDENCE = 0.5


class _Identifier(Protocol):
    def classify(self, text: str) -> tuple[str, float]: ...


def normalize_language_tag(tag: str | None) -> str | None:
    """The ISO 639-1 primary subtag of a language tag ('en-US', 'EN_gb', 'zh-Hant-TW' -> 'en'/'zh'), else None."""
    if not tag:
        return None
    # Content-Language may list several ("en, fr"); the first is the main one.
    first = tag.split(",")[0].split(";")[0].strip()
    named = LANGUAGE_NAMES.get(first.casefold())
    if named is not None:
        return named
    match = _TAG.fullmatch(first)
    if match is None:
        return None
    primary = match.group(1).lower()
    if len(primary) == 3:
        return ISO_639_3_TO_1.get(primary)
    primary = DEPRECATED_639_1.get(primary, primary)
    return primary if primary in ISO_639_1 else None


def detect_language(text: str) -> str | None:
    """The ISO 639-1 code of the language of `text`, or None when too short or not confident."""
    sample = text[:MAX_DETECT_CHARS]
    if sum(ch.isalpha() for ch in sample) < MIN_LETTERS:
        return None
    lang, confidence = _identifier().classify(sample)
    if confidence < MIN_CONFIDENCE:
        return None
    # "zxx" (no linguistic content) and any non-639-1 label become None here.
    return normalize_language_tag(lang)


@cache
def _identifier() -> _Identifier:
    """py3langid's model (shipped in the wheel), loaded on first use, once per process."""
    # Imported here: numpy and the ~0.5 s model load are paid only by callers that detect.
    from py3langid.langid import MODEL_FILE, LanguageIdentifier  # type: ignore[import-untyped]

    identifier: _Identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    return identifier
