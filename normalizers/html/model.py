"""The extractor's learned parts: forests of oblivious trees and word tables, shipped as data.

`scripts/train_extractor.py` fits the models (CatBoost, symmetric trees) on the
development pages and writes `model.json` beside this module: the tables of
`features.Tables`, the two block models, the page-confidence model and the figures of
the cross-validation that chose them. Here they are only evaluated, with NumPy: a
symmetric tree asks the same question of every node at one depth, so a block's leaf
in every tree is a handful of array operations for the whole page at once, with no
per-tree or per-node Python loop.

The file is read once per process, on first use; it is part of the package, like code.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np

from normalizers.html.features import BLOCK_FEATURES, CONTEXT_FEATURES, Tables

__all__ = ["Forest", "Model", "load_model"]

MODEL_FILE = "model.json"
_ROWS_PER_SLICE = 1024


@dataclass(frozen=True, slots=True)
class Forest:
    """Symmetric trees: per tree, `depth` (feature, border) questions and 2**depth leaf values."""

    features: np.ndarray  # (depth, trees) int: the column each tree asks about at each level
    borders: np.ndarray  # (depth, trees, 1) float: a value above the border sets the level's bit
    values: np.ndarray  # (trees * 2**depth,) float: tree t's leaves start at t * 2**depth
    offsets: np.ndarray  # (trees, 1) int32: where each tree's leaves start in `values`
    scale: float
    bias: float
    logistic: bool  # a probability (classifier) rather than a value (regressor)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Forest:
        """A forest from the form `scripts/train_extractor.py` writes (per tree: features, borders, leaf values)."""
        values = np.asarray(data["values"], dtype=np.float64)
        trees, leaves = values.shape
        return cls(
            features=np.ascontiguousarray(np.asarray(data["features"], dtype=np.intp).T),
            borders=np.ascontiguousarray(np.asarray(data["borders"], dtype=np.float32).T)[:, :, None],
            values=values.ravel(),
            offsets=(np.arange(trees, dtype=np.int32) * leaves)[:, None],
            scale=float(data["scale"]),
            bias=float(data["bias"]),
            logistic=bool(data["logistic"]),
        )

    def predict(self, rows: np.ndarray) -> np.ndarray:
        """The model's output for each row (a probability for a classifier)."""
        if not len(rows):
            return np.zeros(0, dtype=np.float64)
        raw = np.empty(len(rows), dtype=np.float64)
        # Columns as rows, so each level's question gathers whole columns; in slices, so
        # a huge page's (trees, rows) leaf table stays small.
        for start in range(0, len(rows), _ROWS_PER_SLICE):
            part = np.ascontiguousarray(rows[start : start + _ROWS_PER_SLICE].T)
            leaves = (part[self.features[0]] > self.borders[0]).view(np.uint8).astype(np.int32)
            for level in range(1, len(self.features)):
                leaves |= (part[self.features[level]] > self.borders[level]).view(np.uint8).astype(np.int32) << level
            leaves += self.offsets
            raw[start : start + part.shape[1]] = np.take(self.values, leaves).sum(axis=0)
        raw = raw * self.scale + self.bias
        if self.logistic:
            raw = 1.0 / (1.0 + np.exp(-raw))
        return raw


@dataclass(frozen=True, slots=True)
class Model:
    """Everything the extractor learned: tables, the two block models, the confidence model."""

    tables: Tables
    blocks: Forest  # reads BLOCK_FEATURES
    context: Forest  # reads BLOCK_FEATURES + CONTEXT_FEATURES
    confidence: Forest  # reads decide.PAGE_FEATURES
    info: dict[str, Any]  # how and on what it was trained, and its cross-validated figures


@functools.cache
def load_model() -> Model:
    """The packaged model, read once per process."""
    data = json.loads(resources.files("normalizers.html").joinpath(MODEL_FILE).read_text(encoding="utf-8"))
    if tuple(data["block_features"]) != BLOCK_FEATURES or tuple(data["context_features"]) != CONTEXT_FEATURES:
        raise RuntimeError(f"{MODEL_FILE} was trained on other features: run scripts/train_extractor.py")
    return Model(
        tables=Tables(names=data["tables"]["names"], words=data["tables"]["words"]),
        blocks=Forest.from_dict(data["blocks"]),
        context=Forest.from_dict(data["context"]),
        confidence=Forest.from_dict(data["confidence"]),
        info=data["info"],
    )
