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

    features: np.ndarray  # (trees, depth) int: the column each level asks about
    borders: np.ndarray  # (trees, depth) float: a value above the border sets the level's bit
    values: np.ndarray  # (trees, 2**depth) float
    scale: float
    bias: float
    logistic: bool  # a probability (classifier) rather than a value (regressor)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Forest:
        """A forest from the form `scripts/train_extractor.py` writes."""
        return cls(
            features=np.asarray(data["features"], dtype=np.intp),
            borders=np.asarray(data["borders"], dtype=np.float32),
            values=np.asarray(data["values"], dtype=np.float64),
            scale=float(data["scale"]),
            bias=float(data["bias"]),
            logistic=bool(data["logistic"]),
        )

    def predict(self, rows: np.ndarray) -> np.ndarray:
        """The model's output for each row (a probability for a classifier)."""
        if not len(rows):
            return np.zeros(0, dtype=np.float64)
        powers = 1 << np.arange(self.features.shape[1], dtype=np.intp)
        trees = np.arange(self.values.shape[0])
        raw = np.empty(len(rows), dtype=np.float64)
        # In slices: the (rows, trees, depth) comparisons of a huge page would not fit in memory at once.
        for start in range(0, len(rows), _ROWS_PER_SLICE):
            part = rows[start : start + _ROWS_PER_SLICE]
            leaves = (part[:, self.features] > self.borders).astype(np.intp) @ powers  # (rows, trees)
            raw[start : start + len(part)] = self.values[trees, leaves].sum(axis=1)
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
