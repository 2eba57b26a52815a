"""Text fingerprints for duplicates: an exact key, and MinHash signatures with LSH band keys.

Two articles are exact duplicates when their words are the same (`Fingerprint.key`:
case, spacing and punctuation folded), and near-duplicates when their sets of word
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

Speed: a text's fingerprint is NumPy over its UTF-8 bytes, texts grouped so the arrays
stay in the CPU's cache: words are found by comparing bytes, hashed from 8-byte reads
at their starts (no Python object per word), shingled over whole groups at once, and
MinHashed by rensa (Rust) from the shingles' hashes. Word hashes are 64-bit mixes of
the word's bytes and length; the exact key is BLAKE2b over them, so two texts share it
only when their words do.
"""

from __future__ import annotations

import hashlib
import string
from collections.abc import Sequence
from dataclasses import dataclass

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
    "Fingerprint",
    "band_keys",
    "estimate",
    "fingerprints",
]

SHINGLE = 5
NUM_PERM = 128
BANDS = 32
ROWS = 4
THRESHOLD = 0.5
MIN_WORDS = 30
SEED = 20241
# Changes whenever a signature or exact key would change: stored ones of another version are rebuilt.
SIGNATURE_VERSION = f"words-v3 shingle={SHINGLE} perm={NUM_PERM} seed={SEED} rensa={rensa.RMinHash.ALGORITHM_VERSION}"

_MIX = np.uint64(0x9E3779B97F4A7C15)  # odd 64-bit constant (the golden ratio's): multiplying by it mixes bits
# MurmurHash3's 64-bit finaliser: every input bit reaches every output bit.
_FMIX_1 = np.uint64(0xFF51AFD7ED558CCD)
_FMIX_2 = np.uint64(0xC4CEB9FE1A85EC53)
_33 = np.uint64(33)
# The low k bytes of a little-endian 64-bit read, k = 0..8.
_LOW_BYTES = np.array([(1 << (8 * k)) - 1 for k in range(9)], dtype=np.uint64)
# One table pass folds case (ASCII) and turns ASCII punctuation, whitespace and control
# characters into spaces; other bytes are word bytes. Typographic punctuation news text
# is full of is made spaces first.
_FOLD = bytes(
    32 if i <= 32 or (chr(i) in string.punctuation and chr(i) != "_") else ord(chr(i).lower()) if i < 128 else i
    for i in range(256)
)
_TYPOGRAPHIC = ("\u2018", "\u2019", "\u201c", "\u201d", "\u2013", "\u2014", "\u2026", "\u00a0", "\u00ab", "\u00bb")
# Texts are fingerprinted in groups of about this many bytes: the arrays of a group (some
# 20 bytes a byte of text) then stay in the CPU's cache, which more than halves the time.
_GROUP_BYTES = 1 << 17
# Words longer than this (unspaced scripts, blobs) are hashed one by one with BLAKE2b, so
# the 8-byte passes over a group's words stay few whatever a text holds.
_LONG_WORD = 256


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """A text's exact-duplicate key, its number of words and its MinHash signature."""

    key: str  # hex BLAKE2b, 128 bits, of the words
    words: int
    signature: np.ndarray | None  # NUM_PERM uint32; None under MIN_WORDS words (matched only exactly)


def fingerprints(texts: Sequence[str]) -> list[Fingerprint]:
    """The fingerprints of texts; a text's does not depend on the others given with it."""
    out: list[Fingerprint] = []
    group: list[bytes] = []
    size = 0
    for text in texts:
        data = _folded(text)
        group.append(data)
        size += len(data)
        if size >= _GROUP_BYTES:
            out.extend(_group(group))
            group, size = [], 0
    if group:
        out.extend(_group(group))
    return out


def _folded(text: str) -> bytes:
    """The text's UTF-8 bytes, lower case, punctuation and whitespace as spaces."""
    for mark in _TYPOGRAPHIC:
        if mark in text:
            text = text.replace(mark, " ")
    if not text.isascii():  # the table folds ASCII only; str.lower knows every script's case
        text = text.lower()
    return text.encode("utf-8", "surrogatepass").translate(_FOLD)


def _group(datas: list[bytes]) -> list[Fingerprint]:
    """Fingerprints of a group of folded texts, in one set of array passes."""
    # Texts are joined by a space, with one before and 8 after, so every word starts and
    # ends inside the buffer and an 8-byte read at any word byte stays inside it.
    buf = b" " + b" ".join(datas) + b" " * 8
    word = np.frombuffer(buf, np.uint8) > 32
    edges = np.flatnonzero(word[1:] ^ word[:-1]) + 1  # on booleans: several times faster than np.diff
    starts, ends = edges[0::2], edges[1::2]
    hashes = _word_hashes(buf, starts, ends)
    text_ends = 1 + np.cumsum(np.fromiter((len(d) + 1 for d in datas), dtype=np.int64, count=len(datas)))
    bounds = np.searchsorted(starts, text_ends).tolist()
    counts = np.diff(bounds, prepend=0)
    signed = counts >= MIN_WORDS
    rows = _signatures(hashes, counts, signed)
    out = []
    first = 0
    n = 0
    for last, words, has in zip(bounds, counts.tolist(), signed.tolist(), strict=True):
        key = hashlib.blake2b(hashes[first:last].tobytes(), digest_size=16).hexdigest()
        signature = None
        if has:
            signature = rows[n]
            n += 1
        out.append(Fingerprint(key, words, signature))
        first = last
    return out


def _word_hashes(buf: bytes, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """A 64-bit hash of each word `buf[start:end]`, from its bytes and length."""
    reads = np.ndarray((len(buf) - 7,), dtype="<u8", buffer=buf, strides=(1,))  # 8 bytes from every offset
    lengths = ends - starts
    hashes: np.ndarray = reads[starts] & _LOW_BYTES[np.minimum(lengths, 8)]
    longer = np.flatnonzero(lengths > 8)
    step = 8
    while longer.size and step < _LONG_WORD:
        part = reads[starts[longer] + step] & _LOW_BYTES[np.minimum(lengths[longer] - step, 8)]
        hashes[longer] = (hashes[longer] * _MIX) ^ part
        step += 8
        longer = longer[lengths[longer] > step]
    hashes ^= lengths.astype(np.uint64) * _FMIX_1
    hashes ^= hashes >> _33
    hashes *= _FMIX_1
    hashes ^= hashes >> _33
    hashes *= _FMIX_2
    hashes ^= hashes >> _33
    for i in np.flatnonzero(lengths > _LONG_WORD).tolist():
        digest = hashlib.blake2b(buf[starts[i] : ends[i]], digest_size=8).digest()
        hashes[i] = int.from_bytes(digest, "little")
    return hashes


def _signatures(hashes: np.ndarray, counts: np.ndarray, signed: np.ndarray) -> np.ndarray:
    """MinHash signatures (NUM_PERM uint32 a row) of the word SHINGLE-shingles of the `signed` texts."""
    n = int(signed.sum())
    if n == 0:
        return np.zeros((0, NUM_PERM), dtype=np.uint32)
    pad = SHINGLE - 1
    shingles = hashes[: len(hashes) - pad].copy()
    for j in range(1, SHINGLE):
        shingles *= _MIX
        shingles ^= hashes[j : len(hashes) - pad + j]
    shingles ^= shingles >> np.uint64(29)
    # A shingle counts when it starts in a signed text and ends in it: +1 at such a text's
    # first word, -1 where its last shingle ends, summed along the words.
    ends = np.cumsum(counts)
    firsts = (ends - counts)[signed]
    marks = np.zeros(len(hashes) + 1, dtype=np.int8)
    marks[firsts] = 1
    marks[ends[signed] - pad] = -1
    keep = np.cumsum(marks[: len(shingles)], dtype=np.int8).view(bool)
    offsets = np.zeros(n + 1, dtype=np.uint64)
    np.cumsum(counts[signed] - pad, out=offsets[1:])
    matrix = rensa.RMinHash.digest_matrix_from_flat_token_hashes(shingles[keep], offsets, NUM_PERM, SEED)
    return np.array(matrix.to_rows(), dtype=np.uint32).reshape(n, NUM_PERM)


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
