"""Text fingerprints for duplicates: an exact key, and MinHash signatures with LSH band keys.

Two articles are exact duplicates when their words are the same (`text_key`: case,
spacing and punctuation folded), and near-duplicates when their sets of word
5-shingles overlap enough (Jaccard similarity, estimated from MinHash signatures).

Parameters, and why (measured by `bench/dedup.py`, figures in BENCHMARKS.md):

- `SHINGLE` = 5 words: long enough that articles on one topic share few shingles
  (their names and phrases repeat, their sentences do not), short enough that an edit
  costs only the shingles around it.
- `NUM_PERM` = 128 permutations: the estimate's standard error near the threshold is
  sqrt(J(1 - J) / 128), about 0.044 at J = 0.5.
- `BANDS` x `ROWS` = 32 x 4 (all 128 values): two texts become candidates when all 4
  values of any band agree, so with probability 1 - (1 - J^4)^32: 0.87 at J = 0.5,
  0.99 at J = 0.6, 0.27 at J = 0.3. Candidates are then checked on the whole
  signature.
- `THRESHOLD` = 0.5 estimated Jaccard: a reprint with a paragraph added or dropped, other
  boilerplate around it or a third cut off stays above it; distinct articles on one
  story fall far below.
- `MIN_WORDS` = 30: a shorter text has too few shingles for the estimate to mean much
  (a caption, a one-line brief); it is matched only exactly.

The MinHash itself is rensa's (Rust, bulk over many texts); words are hashed by rensa
too. Shingles are combined from the word hashes with NumPy over a whole batch at
once: building each shingle as a Python string cost more than the rest together.
"""

from __future__ import annotations

import hashlib
import string
from collections.abc import Sequence

import numpy as np
import rensa

__all__ = [
    "BANDS",
    "MIN_WORDS",
    "NUM_PERM",
    "ROWS",
    "SHINGLE",
    "SIGNATURE_VERSION",
    "THRESHOLD",
    "band_keys",
    "estimate",
    "estimates",
    "signatures",
    "text_key",
    "words",
]

SHINGLE = 5
NUM_PERM = 128
BANDS = 32
ROWS = 4
THRESHOLD = 0.5
MIN_WORDS = 30
SEED = 20241
# Changes whenever a signature would change: stored signatures of another version are rebuilt.
SIGNATURE_VERSION = f"words-v2 shingle={SHINGLE} perm={NUM_PERM} seed={SEED} rensa={rensa.RMinHash.ALGORITHM_VERSION}"

_MIX = np.uint64(0x9E3779B97F4A7C15)  # odd 64-bit constant (the golden ratio's): multiplying by it mixes bits
# ASCII punctuation becomes a space in the UTF-8 bytes, in one C pass (`bytes.translate`): a
# regex over the text took 2.6 times as long. Other characters are word characters, but for
# the typographic punctuation news text is full of, made spaces first.
_PUNCTUATION = bytes(32 if chr(i) in string.punctuation and chr(i) != "_" else i for i in range(256))
_TYPOGRAPHIC = ("\u2018", "\u2019", "\u201c", "\u201d", "\u2013", "\u2014", "\u2026", "\u00a0", "\u00ab", "\u00bb")


def words(text: str) -> list[bytes]:
    """The text's words (lower case, UTF-8, punctuation dropped): what both fingerprints are made of."""
    for mark in _TYPOGRAPHIC:
        if mark in text:
            text = text.replace(mark, " ")
    return text.lower().encode("utf-8", "surrogatepass").translate(_PUNCTUATION).split()


def text_key(tokens: Sequence[bytes]) -> str:
    """The exact-duplicate key of a text's words (hex BLAKE2b, 128 bits)."""
    return hashlib.blake2b(b" ".join(tokens), digest_size=16).hexdigest()


def signatures(token_lists: Sequence[Sequence[bytes]]) -> np.ndarray:
    """MinHash signatures (one row of NUM_PERM uint32 per text) of the texts' word 5-shingles.

    A text of fewer than SHINGLE words is one shingle of all its words; an empty one
    has an empty shingle set, whose signature matches nothing but another empty text.
    """
    n = len(token_lists)
    if n == 0:
        return np.zeros((0, NUM_PERM), dtype=np.uint32)
    hashed = rensa.RMinHash.hash_token_sets(token_lists)
    lengths = np.fromiter((len(h) for h in hashed), dtype=np.int64, count=n)
    flat = np.concatenate([np.array(h, dtype=np.uint64) for h in hashed]) if n else np.zeros(0, np.uint64)
    shingles, counts = _shingles(flat, lengths)
    offsets = np.zeros(n + 1, dtype=np.uint64)
    np.cumsum(counts, out=offsets[1:])
    matrix = rensa.RMinHash.digest_matrix_from_flat_token_hashes(shingles, offsets, NUM_PERM, SEED)
    return np.array(matrix.to_rows(), dtype=np.uint32).reshape(n, NUM_PERM)


def _shingles(flat: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hashes of every run of SHINGLE consecutive words within each text, and how many each text has."""
    ends = np.cumsum(lengths)
    starts = ends - lengths
    # Texts shorter than a shingle: one "shingle" of all their words, padded with zeros.
    pad = SHINGLE - 1
    padded = np.zeros(len(flat) + pad * len(lengths), dtype=np.uint64)
    positions = np.arange(len(flat)) + pad * np.repeat(np.arange(len(lengths)), lengths)
    padded[positions] = flat
    acc = padded[: len(padded) - pad].copy()
    for j in range(1, SHINGLE):
        acc = (acc * _MIX) ^ padded[j : len(padded) - pad + j]
    acc ^= acc >> np.uint64(29)
    # A text of L words (padded to L + pad) has max(L - pad, 1) shingles, from its start.
    counts = np.where(lengths > 0, np.maximum(lengths - pad, 1), 0)
    padded_starts = starts + pad * np.arange(len(lengths))
    take = np.repeat(padded_starts, counts) + (
        np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    )
    return acc[take], counts


def band_keys(sigs: np.ndarray) -> np.ndarray:
    """Per signature, one signed 64-bit key per band (the band's number mixed in), for an index lookup."""
    if len(sigs) == 0:
        return np.zeros((0, BANDS), dtype=np.int64)
    bands = sigs.reshape(len(sigs), BANDS, ROWS).astype(np.uint64)
    key = np.broadcast_to(np.arange(1, BANDS + 1, dtype=np.uint64), (len(sigs), BANDS)).copy()
    for r in range(ROWS):
        key = (key * _MIX) ^ bands[:, :, r]
    key ^= key >> np.uint64(31)
    return key.view(np.int64)


def estimate(a: np.ndarray, b: np.ndarray) -> float:
    """The Jaccard similarity two signatures estimate: the share of their values that agree."""
    return float(np.count_nonzero(a == b)) / NUM_PERM


def estimates(rows: np.ndarray, b: np.ndarray) -> np.ndarray:
    """`estimate` of each signature of `rows` (one a row) against `b`, in one NumPy pass."""
    agree: np.ndarray = np.count_nonzero(rows == b, axis=1)
    return agree / NUM_PERM
