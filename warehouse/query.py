"""DuckDB over the warehouse: the views `newsflow query` offers (see `connect`)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa

from warehouse.boilerplate import LEARNED_SCHEMA
from warehouse.coverage import COVERAGE_SCHEMA
from warehouse.dedup import CLUSTER_SCHEMA
from warehouse.journal import settle
from warehouse.layout import DataRoot
from warehouse.ledger import LEDGER_SCHEMA
from warehouse.quarantine import QUARANTINE_SCHEMA
from warehouse.schema import ARTICLE_SCHEMA
from warehouse.writer import VERSION_SCHEMA

__all__ = ["QueryError", "connect"]

# Month folders are zero-padded (month=03), which DuckDB would otherwise read as a
# string; the views pin the partition column types.
_ARTICLE_PARTITIONS = {"source": "VARCHAR", "year": "INTEGER", "month": "INTEGER"}
_SOURCE_PARTITIONS = {"source": "VARCHAR"}


# Per source and day (UTC): the ingest runs' counts, the duplicates among the articles
# written that day (not their cluster's original), and the quarantined inputs by reason.
_COVERAGE = """
CREATE VIEW coverage AS
WITH runs AS (
    SELECT source, day, count(*) AS runs, sum(expected) AS expected, sum(read) AS read, sum(written) AS written,
           sum(unchanged) AS unchanged, sum(superseded) AS superseded, sum(quarantined) AS quarantined,
           sum(deferred) AS deferred
    FROM _coverage_runs GROUP BY ALL
), copies AS (
    SELECT a.source, CAST(timezone('UTC', a.ingested_at) AS DATE) AS day, count(*) AS duplicates
    FROM articles a JOIN _clusters c USING (article_id) WHERE NOT c.is_original GROUP BY ALL
), reasons AS (
    SELECT source, day, map(list(reason ORDER BY reason), list(n ORDER BY reason)) AS quarantined_by_reason
    FROM (SELECT source, CAST(timezone('UTC', quarantined_at) AS DATE) AS day, reason, count(*) AS n
          FROM quarantine_log GROUP BY ALL)
    GROUP BY ALL
)
SELECT r.*, coalesce(c.duplicates, 0) AS duplicates, q.quarantined_by_reason
FROM runs r LEFT JOIN copies c USING (source, day) LEFT JOIN reasons q USING (source, day)
"""


class QueryError(Exception):
    """The warehouse cannot be queried (e.g. the data root does not exist)."""


def connect(root: Path) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with views over the data root.

    `articles`; `clusters`, each article's duplicate and cluster fields; `quarantine`,
    the inputs failing now (each once, its latest record); `quarantine_log`, every
    record of every run; `runs`, the run ledger; `article_versions`, earlier versions of
    revised articles; `coverage`, per source and day; `boilerplate`, the blocks each
    source has learned as boilerplate.
    """
    data = DataRoot(root)
    if not root.is_dir():
        raise QueryError(f"data root {root} does not exist (run `newsflow run` first, or pass --data)")
    # A command killed while publishing a commit left its journal: finish it first, so
    # the query sees that commit whole (or, if it cannot, as the next command will).
    settle(data)
    con = duckdb.connect()
    _view(con, "articles", data.articles, ARTICLE_SCHEMA, _ARTICLE_PARTITIONS)
    _view(con, "_clusters", data.clusters, CLUSTER_SCHEMA, _ARTICLE_PARTITIONS)
    # A cluster's size is counted here, not stored: an article joining a cluster rewrites only its own row.
    con.execute(
        "CREATE VIEW clusters AS SELECT *, count(*) OVER (PARTITION BY cluster_id) AS cluster_size FROM _clusters"
    )
    _view(con, "quarantine", data.quarantine_current, QUARANTINE_SCHEMA, _SOURCE_PARTITIONS)
    _view(con, "quarantine_log", data.quarantine, QUARANTINE_SCHEMA, _SOURCE_PARTITIONS)
    _view(con, "runs", data.runs, LEDGER_SCHEMA, _SOURCE_PARTITIONS)
    _view(con, "_article_versions", data.article_versions, VERSION_SCHEMA, _ARTICLE_PARTITIONS)
    # The version number of each earlier version: 1 for the first an article had.
    con.execute(
        "CREATE VIEW article_versions AS SELECT *, "
        "row_number() OVER (PARTITION BY article_id ORDER BY ingested_at, changed_at) AS version FROM _article_versions"
    )
    _view(con, "_coverage_runs", data.coverage, COVERAGE_SCHEMA, _SOURCE_PARTITIONS)
    con.execute(_COVERAGE)
    _view(con, "boilerplate", data.boilerplate, LEARNED_SCHEMA, _SOURCE_PARTITIONS)
    return con


def _view(
    con: duckdb.DuckDBPyConnection, name: str, folder: Path, schema: pa.Schema, partitions: dict[str, str]
) -> None:
    if any(folder.glob("**/*.parquet")):
        glob = str(folder / "**" / "*.parquet").replace("'", "''")
        types = ", ".join(f"'{k}': {v}" for k, v in partitions.items())
        con.execute(
            f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{glob}', hive_partitioning = true, "
            # union_by_name: partitions written under an older schema version lack the
            # newer columns until they are rewritten; they read as nulls.
            f"union_by_name = true, hive_types = {{{types}}})"
        )
        return
    # No data yet: an empty view with the right columns, so queries still plan.
    con.register(f"_{name}_empty", schema.empty_table())
    extra = ", ".join(f"CAST(NULL AS {v}) AS {k}" for k, v in partitions.items() if k not in schema.names)
    con.execute(f"CREATE VIEW {name} AS SELECT *{', ' + extra if extra else ''} FROM _{name}_empty")
