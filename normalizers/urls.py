"""URLs as identities: the one spelling of an article's URL that ids, fetch state and de-duplication use.

Every place that derives an identity from a URL goes through `canonical_url`: a feed or
sitemap entry's key (de-duplication, the raw store's fetch state, the pipeline's
`SourceMeta.key`), a sidecar's `url`, a page's canonical link or og:url, the URL a page
was fetched from, and through them `meta.article_id`. Two spellings of one address meet,
so one article gets one id however it reached us.

Pure: standard library only, no lookups (no DNS, no public-suffix list).
"""

from __future__ import annotations

import re
import urllib.parse

from normalizers.common import UNSHOWABLE

__all__ = ["DEFAULT_PORTS", "HTTP_SCHEMES", "TRACKING_PARAMS", "TRACKING_PREFIXES", "canonical_url"]

HTTP_SCHEMES = ("http", "https")
DEFAULT_PORTS = {"http": 80, "https": 443}
# Query parameters that only say how the reader arrived (campaign, click and referral ids),
# never which page: dropped by `canonical_url`. Compared lower-case.
TRACKING_PARAMS = frozenset(
    {
        "fbclid",  # Facebook click id
        "gclid",  # Google Ads click id
        "gclsrc",
        "dclid",  # Google Display click id
        "gbraid",  # Google Ads (iOS)
        "wbraid",
        "msclkid",  # Microsoft Ads click id
        "yclid",  # Yandex click id
        "twclid",  # Twitter/X click id
        "ttclid",  # TikTok click id
        "li_fat_id",  # LinkedIn
        "igshid",  # Instagram share id
        "igsh",
        "mc_cid",  # Mailchimp campaign / member ids
        "mc_eid",
        "_ga",  # Google Analytics cross-domain linker
        "_gl",
        "_hsenc",  # HubSpot
        "_hsmi",
        "mkt_tok",  # Marketo
        "oly_anon_id",  # Omeda
        "oly_enc_id",
        "vero_id",  # Vero
        "ref_src",  # Twitter embeds
        "ref_url",
        "cmpid",  # campaign ids used by many news sites
        "ocid",
        "smid",  # New York Times share id
    }
)
TRACKING_PREFIXES = ("utm_", "pk_", "mtm_")  # Google/Matomo/Piwik campaign families

# Characters left as they are in a path / query / user name; everything else (spaces,
# quotes, non-ASCII) is percent-encoded as UTF-8, so both spellings of one URL meet. `%`
# is kept so that an existing escape is not escaped twice.
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"
_QUERY_SAFE = _PATH_SAFE + "?"
_USERINFO_SAFE = "%:!$&'()*+,;=-._~"
_PERCENT_ESCAPE = re.compile(r"%[0-9a-fA-F]{2}")
# A host name after IDNA: RFC 3986's reg-name characters but `%` (a space, a quote or `<` is no
# host, and browsers refuse a percent-encoded one: `a.example%2Fstory` is a broken link).
_REG_NAME = re.compile(r"[a-z0-9\-._~!$&'()*+,;=]+")


def canonical_url(url: str) -> str:
    """The identity spelling of an absolute http(s) URL; raises ValueError (saying why) for anything else.

    Surrounding whitespace and the fragment go; scheme and host are lower-cased, a
    non-ASCII host is IDNA-encoded, a default port (`:80`, `:443`) is dropped; path, query
    and user name are percent-encoded as UTF-8 where they hold anything but URL
    characters (a space is `%20`, never `+`), with upper-case escapes; an empty path is
    `/`; tracking parameters (`TRACKING_PARAMS`, `TRACKING_PREFIXES`) and empty query
    pieces go. The other query parameters keep their order: it is the site's spelling,
    and servers may read it (sorting would merge only URLs a server treats alike, and
    would re-key every stored fetch state). Idempotent.

    Refused: control or bidi characters, a relative URL, a scheme other than http(s),
    no host, a bad port, a host that is not a valid IDN or host name, and text that
    cannot be encoded (lone surrogates). A `javascript:`, `file:` or `data:` URL is never
    an article's address.
    """
    text = url.strip()
    if UNSHOWABLE.search(text):
        raise ValueError("it contains control characters")
    try:
        parts = urllib.parse.urlsplit(text)
        port = parts.port  # raises on a port that is not a number in 0..65535
    except ValueError as exc:  # unbalanced IPv6 brackets, a bad port
        raise ValueError(f"it is not a valid URL ({exc})") from exc
    scheme = parts.scheme.lower()
    if not scheme:
        raise ValueError("it is relative (no scheme)")
    if scheme not in HTTP_SCHEMES:
        raise ValueError("only http(s) URLs are article URLs")
    host = parts.hostname
    if not host:
        raise ValueError("it has no host")
    if ":" in host:  # an IPv6 literal, which urlsplit has checked
        host = f"[{host}]"
    else:
        if not host.isascii():
            try:
                host = host.encode("idna").decode("ascii")
            except UnicodeError as exc:
                raise ValueError(f"its host {host[:100]!r} is not a valid IDN") from exc
        if not _REG_NAME.fullmatch(host):
            raise ValueError(f"its host {host[:100]!r} is not a host name")
    try:
        userinfo = parts.netloc.rpartition("@")[0]
        netloc = (_quote(userinfo, _USERINFO_SAFE) + "@" if userinfo else "") + host
        if port is not None and port != DEFAULT_PORTS[scheme]:
            netloc += f":{port}"
        path = _quote(parts.path, _PATH_SAFE) or "/"
        query = _quote(_strip_tracking(parts.query), _QUERY_SAFE)
    except UnicodeEncodeError as exc:  # lone surrogates
        raise ValueError("it is not a valid URL (it cannot be encoded as UTF-8)") from exc
    return urllib.parse.urlunsplit((scheme, netloc, path, query, ""))


def _quote(text: str, safe: str) -> str:
    """`text` percent-encoded but for `safe`, with every escape upper-case (`%c3` and `%C3` are one byte)."""
    return _PERCENT_ESCAPE.sub(lambda m: m.group(0).upper(), urllib.parse.quote(text, safe=safe))


def _strip_tracking(query: str) -> str:
    kept = []
    for piece in query.split("&"):
        if not piece:
            continue
        name = urllib.parse.unquote_plus(piece.partition("=")[0]).strip().lower()
        if name in TRACKING_PARAMS or name.startswith(TRACKING_PREFIXES):
            continue
        kept.append(piece)
    return "&".join(kept)
