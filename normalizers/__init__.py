"""Pure normalisers: raw document bytes -> `Article` or `Rejection`. No I/O, no clock.

The HTML stack (`normalizers.html`) loads on first use, so text-only runs never import it.
"""

from normalizers.bounds import Budget, Unlimited
from normalizers.dispatch import normalize, normalizer_for
from normalizers.errors import NormalizerError, ProfileError, Rejection, RejectReason
from normalizers.meta import SourceMeta, article_id
from normalizers.profile import DEFAULT_RULES, HtmlSelectors, Rule, SourceProfile
from normalizers.schema import SCHEMA_VERSION, Article, Section, Stripped
from normalizers.text import normalize_text
from normalizers.urls import canonical_url

__all__ = [
    "DEFAULT_RULES",
    "SCHEMA_VERSION",
    "Article",
    "Budget",
    "HtmlSelectors",
    "NormalizerError",
    "ProfileError",
    "RejectReason",
    "Rejection",
    "Rule",
    "Section",
    "SourceMeta",
    "SourceProfile",
    "Stripped",
    "Unlimited",
    "article_id",
    "canonical_url",
    "normalize",
    "normalize_text",
    "normalizer_for",
]
