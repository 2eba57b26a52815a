"""decode_html: BOM, header, <meta>, detection; mislabelled pages never become silent mojibake."""

from __future__ import annotations

import codecs

from hypothesis import given, settings
from hypothesis import strategies as st

from normalizers.encoding import DETECT_BYTES, decode_html, lookup_label, prescan_meta_charset

RUSSIAN = (
    "Правительство России объявило о новых мерах поддержки экономики. Министр финансов заявил, "
    "что бюджет будет сбалансирован в следующем году, а инфляция снизится до четырёх процентов."
)


def _page(body: str, head: str = "", title: str = "Новости") -> str:
    return f"<!doctype html><html><head>{head}<title>{title}</title></head><body><p>{body}</p></body></html>"


def test_cp1251_labelled_utf8_in_header_and_meta_is_detected_with_warning() -> None:
    raw = _page(RUSSIAN, '<meta charset="utf-8">').encode("cp1251")
    got = decode_html(raw, "text/html; charset=UTF-8")
    assert RUSSIAN in got.text
    assert got.encoding == "cp1251"
    assert got.source == "detected"
    assert any("utf-8" in w and "header" in w for w in got.warnings)
    assert any("meta" in w for w in got.warnings)


def test_cp1251_without_any_label_is_detected() -> None:
    got = decode_html(_page(RUSSIAN).encode("cp1251"))
    assert RUSSIAN in got.text
    assert (got.encoding, got.source) == ("cp1251", "detected")


def test_cp1251_labelled_latin1_decodes_but_garbled_is_redetected() -> None:
    # cp1252 decodes every Cyrillic byte to accented Latin letters: a silent mojibake without the mess check.
    got = decode_html(_page(RUSSIAN).encode("cp1251"), "text/html; charset=iso-8859-1")
    assert RUSSIAN in got.text
    assert got.source == "detected"
    assert any("garbled" in w for w in got.warnings)


def test_utf8_labelled_legacy_is_utf8() -> None:
    raw = _page(RUSSIAN, '<meta charset="windows-1251">').encode("utf-8")
    got = decode_html(raw)
    assert RUSSIAN in got.text
    assert (got.encoding, got.source) == ("utf-8", "detected")
    assert got.warnings


def test_bom_wins_over_wrong_header_and_meta() -> None:
    raw = codecs.BOM_UTF8 + _page(RUSSIAN, '<meta charset="koi8-r">').encode("utf-8")
    got = decode_html(raw, "text/html; charset=windows-1251")
    assert RUSSIAN in got.text
    assert not got.text.startswith("\ufeff")
    assert (got.encoding, got.source, got.warnings) == ("utf-8", "bom", ())


def test_utf16_bom() -> None:
    raw = codecs.BOM_UTF16_LE + _page(RUSSIAN).encode("utf-16-le")
    got = decode_html(raw, "text/html; charset=utf-8")
    assert RUSSIAN in got.text
    assert (got.encoding, got.source) == ("utf-16-le", "bom")


def test_iso_8859_1_label_means_windows_1252() -> None:
    body = "He said \u201cit\u2019s over\u201d \u2014 and left. Caf\u00e9 cr\u00e8me."
    raw = _page(body, '<meta http-equiv="Content-Type" content="text/html; charset=ISO-8859-1">', "News").encode(
        "cp1252"
    )
    assert b"\x93" in raw and b"\x94" in raw
    got = decode_html(raw)
    assert body in got.text
    assert (got.encoding, got.source, got.warnings) == ("cp1252", "meta", ())


def test_header_label_is_used() -> None:
    body = "Straße, Größe, Übermaß: die Bundesregierung hat am Mittwoch neue Maßnahmen beschlossen."
    got = decode_html(_page(body, title="Nachrichten").encode("cp1252"), 'text/html; charset="latin1"')
    assert body in got.text
    assert (got.encoding, got.source) == ("cp1252", "header")


def test_shift_jis_with_meta_charset() -> None:
    body = "日本政府は水曜日、新たな経済対策を発表した。物価高に対応するため、家計への支援を拡充する。"
    raw = f'<html><head><meta charset="Shift_JIS"><title>ニュース</title></head><body><p>{body}</p></body></html>'
    got = decode_html(raw.encode("cp932"))
    assert body in got.text
    assert (got.encoding, got.source) == ("cp932", "meta")


def test_gbk_with_meta_http_equiv() -> None:
    body = "中国政府周三宣布了新的经济刺激措施，以支持国内消费和就业。"
    head = "<meta http-equiv=Content-Type content='text/html;charset=gb2312'>"
    raw = f"<html><head>{head}</head><body>{body}</body></html>"
    got = decode_html(raw.encode("gbk"))
    assert body in got.text
    assert (got.encoding, got.source) == ("gb18030", "meta")


def test_unknown_label_is_ignored_with_warning() -> None:
    got = decode_html(_page(RUSSIAN).encode("utf-8"), "text/html; charset=x-klingon")
    assert RUSSIAN in got.text
    assert got.source == "detected"
    assert any("x-klingon" in w for w in got.warnings)


def test_meta_in_comment_is_ignored_and_late_meta_found() -> None:
    head = "<!-- <meta charset=koi8-r> -->" + "<style>" + "x" * 2000 + "</style><meta charset=windows-1251>"
    assert prescan_meta_charset(head.encode()) == "windows-1251"
    got = decode_html(_page(RUSSIAN, head).encode("cp1251"))
    assert (got.encoding, got.source) == ("cp1251", "meta")


def test_meta_utf16_label_means_utf8() -> None:
    got = decode_html(_page(RUSSIAN, '<meta charset="utf-16">').encode("utf-8"))
    assert RUSSIAN in got.text
    assert (got.encoding, got.source) == ("utf-8", "meta")


def test_ascii_without_label_and_empty_input() -> None:
    assert decode_html(b"<p>hello</p>") == decode_html(b"<p>hello</p>", None)
    assert decode_html(b"<p>hello</p>").text == "<p>hello</p>"
    assert decode_html(b"").text == ""


def test_huge_input_detection_is_bounded_and_tail_kept() -> None:
    para = f"<p>{RUSSIAN}</p>\n"
    raw = _page(para * (3 * DETECT_BYTES // len(para.encode("cp1251")))).encode("cp1251")
    assert len(raw) > 2 * DETECT_BYTES
    got = decode_html(raw)
    assert got.encoding == "cp1251"
    assert got.text.endswith("</html>")
    assert "\ufffd" not in got.text


def test_lookup_label() -> None:
    assert lookup_label(" UTF8 ") == "utf-8"
    assert lookup_label("us-ascii") == "cp1252"
    assert lookup_label("x-sjis") == "cp932"
    assert lookup_label("rot13") is None
    assert lookup_label(None) is None


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=3000), st.none() | st.text(max_size=60))
def test_random_bytes_never_raise(raw: bytes, content_type: str | None) -> None:
    got = decode_html(raw, content_type)
    assert isinstance(got.text, str)
    codecs.lookup(got.encoding)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40), st.binary(max_size=200))
def test_random_meta_never_raises(label: str, tail: bytes) -> None:
    raw = f"<meta charset='{label}'><meta http-equiv=content-type content='charset={label}'>".encode() + tail
    assert isinstance(decode_html(raw, f"text/html; charset={label}").text, str)


def test_a_utf8_label_over_a_few_stray_bytes_is_kept_with_replacement_characters() -> None:
    paragraphs = b"<p>Plain ascii paragraph number one with words.</p>" * 8
    raw = b'<html><head><meta charset="utf-8"></head><body><h1>News \xc3\x28 here</h1>' + paragraphs + b"\x80\x81\x82"
    got = decode_html(raw)
    assert (got.encoding, got.source) == ("utf-8", "meta")
    assert "News \ufffd( here" in got.text and "\u251c" not in got.text  # not a DOS code page's box drawing
    assert any("U+FFFD" in w for w in got.warnings)


def test_a_utf8_label_over_a_legacy_page_still_gives_way_to_detection() -> None:
    text = "Él está aquí, señor. ¿Qué pasó con la niña? Mañana volverá a la ciudad con su café. " * 6
    raw = b'<html><head><meta charset="utf-8"></head><body><p>' + text.encode("cp1252") + b"</p></body></html>"
    got = decode_html(raw)
    assert got.source == "detected" and "señor" in got.text
