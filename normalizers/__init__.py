"""Pure normalisers: raw document bytes -> `Article` or `Rejection`. No I/O, no clock."""

from normalizers.errors import NormalizerError, ProfileError, Rejection, RejectReason
from normalizers.meta import SourceMeta, article_id, canonical_url
from normalizers.profile import DEFAULT_RULES, Rule, SourceProfile
from normalizers.schema import SCHEMA_VERSION, Article, Section, Stripped
from normalizers.text import normalize_text

__all__ = [
    "DEFAULT_RULES",
    "SCHEMA_VERSION",
    "Article",
    "NormalizerError",
    "ProfileError",
    "RejectReason",
    "Rejection",
    "Rule",
    "Section",
    "SourceMeta",
    "SourceProfile",
    "Stripped",
    "article_id",
    "canonical_url",
    "normalize_text",
]
