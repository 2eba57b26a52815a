"""Arrow schemas derived from the record dataclasses, so no schema is written twice."""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

import pyarrow as pa

from normalizers.schema import SCHEMA_VERSION, Article

__all__ = ["ARTICLE_SCHEMA", "arrow_schema", "articles_to_table", "records_to_table"]

_SCALARS: dict[Any, pa.DataType] = {
    str: pa.string(),
    int: pa.int64(),
    bool: pa.bool_(),
    float: pa.float64(),
    datetime: pa.timestamp("us", tz="UTC"),
}
_NAMED = {"int16": pa.int16(), "int32": pa.int32(), "int64": pa.int64()}


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return rest[0], True
    return tp, False


def _arrow_type(tp: Any, hint: str | None = None) -> pa.DataType:
    if hint is not None:
        return _NAMED[hint]
    if tp in _SCALARS:
        return _SCALARS[tp]
    if typing.get_origin(tp) in (tuple, list):
        (item, *_rest) = typing.get_args(tp)
        return pa.list_(_field_type(item))
    if dataclasses.is_dataclass(tp):
        return pa.struct(_fields(tp))
    raise TypeError(f"no Arrow type for {tp!r}")


def _field_type(tp: Any) -> pa.DataType:
    inner, _ = _unwrap_optional(tp)
    return _arrow_type(inner)


def _fields(cls: type) -> list[pa.Field]:
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        inner, nullable = _unwrap_optional(hints[f.name])
        doc = f.metadata.get("doc", "")
        out.append(
            pa.field(
                f.name,
                _arrow_type(inner, f.metadata.get("arrow")),
                nullable=nullable,
                metadata={"description": doc} if doc else None,
            )
        )
    return out


@functools.cache
def arrow_schema(cls: type) -> pa.Schema:
    """Arrow schema of a record dataclass; field docs become field `description` metadata."""
    return pa.schema(_fields(cls), metadata={"newsflow.record": cls.__name__})


ARTICLE_SCHEMA = arrow_schema(Article).with_metadata(
    {"newsflow.record": "Article", "newsflow.schema_version": str(SCHEMA_VERSION)}
)


def _converter(tp: Any) -> Callable[[Any], Any]:
    """A function turning a field value into what `pa.Table.from_pydict` accepts."""
    inner, _ = _unwrap_optional(tp)
    if typing.get_origin(inner) in (tuple, list):
        (item,) = typing.get_args(inner)[:1]
        conv = _converter(item)
        if conv is _identity:
            return list
        return lambda v: [conv(x) for x in v]
    if dataclasses.is_dataclass(inner):
        hints = typing.get_type_hints(inner)
        convs = [(f.name, _converter(hints[f.name])) for f in dataclasses.fields(inner)]
        return lambda v: {name: c(getattr(v, name)) for name, c in convs}
    return _identity


def _identity(v: Any) -> Any:
    return v


@functools.cache
def _column_plan(cls: type) -> tuple[tuple[str, Callable[[Any], Any]], ...]:
    hints = typing.get_type_hints(cls)
    return tuple((f.name, _converter(hints[f.name])) for f in dataclasses.fields(cls))


def records_to_table(records: Iterable[Any], cls: type, schema: pa.Schema | None = None) -> pa.Table:
    """Build an Arrow table from dataclass records of type `cls`."""
    rows = list(records)
    plan = _column_plan(cls)
    columns = {
        name: [v for v in (getattr(r, name) for r in rows)] if conv is _identity
        else [None if (x := getattr(r, name)) is None else conv(x) for r in rows]
        for name, conv in plan
    }
    return pa.Table.from_pydict(columns, schema=schema or arrow_schema(cls))


def articles_to_table(articles: Iterable[Article]) -> pa.Table:
    """Arrow table of articles in `ARTICLE_SCHEMA`."""
    return records_to_table(articles, Article, ARTICLE_SCHEMA)
