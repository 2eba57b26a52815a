"""Language tags and detection."""

from __future__ import annotations

import pytest

from normalizers.language import MAX_DETECT_CHARS, detect_language, normalize_language_tag

SENTENCES = {
    "en": "The government announced on Wednesday a new package of measures to support households facing rising "
    "energy prices.",
    "de": "Die Bundesregierung hat am Mittwoch ein neues Maßnahmenpaket beschlossen, um Haushalte bei steigenden "
    "Energiepreisen zu entlasten.",
    "fr": "Le gouvernement a annoncé mercredi un nouveau train de mesures pour soutenir les ménages face à la hausse "
    "des prix de l'énergie.",
    "es": "El Gobierno anunció el miércoles un nuevo paquete de medidas para apoyar a los hogares ante el aumento de "
    "los precios de la energía.",
    "ru": "Правительство в среду объявило о новом пакете мер по поддержке домохозяйств в условиях роста цен на "
    "энергоносители.",
    "ar": "أعلنت الحكومة يوم الأربعاء عن حزمة جديدة من الإجراءات لدعم الأسر في مواجهة ارتفاع أسعار الطاقة.",
    "zh": "政府周三宣布了一揽子新措施，以帮助家庭应对不断上涨的能源价格。",
    "tr": "Hükümet çarşamba günü, artan enerji fiyatları karşısında hanelere destek olmak için yeni bir önlem paketi "
    "açıkladı.",
    "pt": "O governo anunciou na quarta-feira um novo pacote de medidas para apoiar as famílias diante da alta dos "
    "preços da energia.",
    "ja": "政府は水曜日、エネルギー価格の高騰に直面する家計を支援するための新たな対策を発表した。",
}


@pytest.mark.parametrize(("lang", "sentence"), sorted(SENTENCES.items()))
def test_detects_news_sentences(lang: str, sentence: str) -> None:
    assert detect_language(sentence) == lang
    if lang not in {"zh", "ja"}:  # 40 characters of CJK is a long sentence, already tested above
        assert detect_language(sentence[:40]) == lang


@pytest.mark.parametrize(
    "text",
    ["", "   ", "Breaking news", "OK", "12345 67890 12345 67890 12345", "http://example.com/a/b/c/d/e/f/g/h/i/j"],
)
def test_short_or_empty_text_is_none(text: str) -> None:
    assert detect_language(text) is None


@pytest.mark.parametrize(
    "text",
    ["Donald Trump Joe Biden Kamala Harris", "Tokyo Paris Berlin London Madrid Rome", "asdkj qwe zxc vbnm poiuy"],
)
def test_low_confidence_or_no_language_is_none(text: str) -> None:
    assert detect_language(text) is None


def test_only_the_start_is_read() -> None:
    text = SENTENCES["de"] * (MAX_DETECT_CHARS // len(SENTENCES["de"]) + 1) + SENTENCES["en"] * 1000
    assert detect_language(text) == "de"


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("en-US", "en"),
        ("EN_gb", "en"),
        ("zh-Hant-TW", "zh"),
        ("de", "de"),
        (" fr-FR ", "fr"),
        ("en, fr", "en"),
        ("pt-BR;q=0.9", "pt"),
        ("iw", "he"),
        ("eng", "en"),
        ("ger", "de"),
        ("English", "en"),
        ("xx", None),
        ("und", None),
        ("x-default", None),
        ("english-ish", None),
        ("12", None),
        ("", None),
        (None, None),
        ("e", None),
        ("en-", None),
    ],
)
def test_normalize_language_tag(tag: str | None, expected: str | None) -> None:
    assert normalize_language_tag(tag) == expected
