"""What a run reports: per-source counts, backfill outcomes, and their Markdown (the Prefect artifacts)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from pipeline.dedup import DedupSummary
from pipeline.ingest import SourceSummary

__all__ = ["BackfillFailed", "BackfillSummary", "RunFailed", "RunSummary"]


@dataclass(slots=True)
class RunSummary:
    """The result of one ingest run."""

    run_id: str
    data: str
    seconds: float = 0.0
    sources: list[SourceSummary] = field(default_factory=list)
    duplicates: DedupSummary | None = None  # the update of the duplicate index after the sources
    duplicates_error: str | None = None  # why that update failed (the articles are written all the same)
    report: str | None = None  # where the run left the corpus report (`pipeline.report`)
    report_error: str | None = None  # why writing it failed

    def total(self, name: str) -> int:
        """Sum of one counter over sources."""
        return sum(int(getattr(s, name)) for s in self.sources)

    def markdown(self) -> str:
        """The summary as a Markdown table (the Prefect artifact)."""
        cols = ["discovered", "new", "changed", "unchanged", "written", "superseded", "quarantined", "deferred"]
        lines = ["| source | " + " | ".join(cols) + " | partitions |", "|---" * (len(cols) + 2) + "|"]
        for s in self.sources:
            parts = ", ".join(s.partitions) or "-"
            lines.append(f"| {s.source} | " + " | ".join(str(getattr(s, c)) for c in cols) + f" | {parts} |")
        lines.append("| **total** | " + " | ".join(str(self.total(c)) for c in cols) + " | |")
        for s in self.sources:
            if s.error:
                lines.append("")
                lines.append(f"**{s.source} failed**: {s.error}")
        for label, counts in (
            ("Quarantined", {f"{s.source}:{r}": n for s in self.sources for r, n in s.reasons.items()}),
            ("Deferred", {f"{s.source}:{r}": n for s in self.sources for r, n in s.deferrals.items()}),
        ):
            if counts:
                lines.append("")
                lines.append(f"{label} by reason: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
        notes = [f"- {s.source}: {note}" for s in self.sources for note in s.notes]
        if notes:
            lines += ["", "Notes:", *notes]
        lines.append("")
        lines += _duplicates(self.duplicates, self.duplicates_error)
        lines += _report(self.report, self.report_error)
        lines.append(f"Run `{self.run_id}` in {self.seconds:.1f} s; data under `{self.data}`.")
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        """Plain-data form (JSON-ready); ledger entries are in the ledger (`newsflow query ... FROM runs`)."""
        data = asdict(self)
        for source in data["sources"]:
            source.pop("ledger", None)
        return data


class RunFailed(Exception):
    """Some sources of a run failed; `summary` holds every source's outcome (the others ran)."""

    def __init__(self, summary: RunSummary) -> None:
        super().__init__("; ".join(str(s.error) for s in summary.sources if s.error))
        self.summary = summary

    def __reduce__(self) -> tuple[type[RunFailed], tuple[RunSummary]]:
        return (RunFailed, (self.summary,))


class BackfillFailed(Exception):
    """Some partitions of a backfill failed (each is in the ledger with its error)."""


@dataclass(slots=True)
class BackfillSummary:
    """The result of one backfill run: its plan and each partition's ledger entry."""

    run_id: str
    source: str
    data: str
    dry_run: bool
    plan: dict[str, Any]
    entries: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    duplicates: DedupSummary | None = None
    duplicates_error: str | None = None
    report: str | None = None
    report_error: str | None = None

    def failed(self) -> list[str]:
        """Partitions whose unit failed in this run."""
        return [e["partition"] for e in self.entries if e["status"] == "failed"]

    def markdown(self) -> str:
        """Plan and outcomes as a Markdown table (the Prefect artifact)."""
        done = {e["partition"]: e for e in self.entries}
        lines = [
            f"Backfill of `{self.source}` over {self.plan['start']} .. {self.plan['end']}"
            + (" (dry run: nothing written)" if self.dry_run else ""),
            "",
            "| partition | items | rows before | plan | status | rows after | removed | quarantined | moved |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for u in self.plan["units"]:
            e = done.get(u["partition"], {})
            cells = [str(e.get(k, "")) for k in ("status", "written", "removed", "quarantined", "moved")]
            lines.append(
                f"| {u['partition']} | {u['items']} | {u['rows']} | {u['action']} | " + " | ".join(cells) + " |"
            )
        lines.append("")
        lines.append(f"Inputs dated outside the range: {self.plan['outside']}.")
        if self.plan["rejected"]:
            lines.append("Inputs giving no article: " + ", ".join(f"{k} {v}" for k, v in self.plan["rejected"].items()))
        for e in self.entries:
            if e["error"]:
                lines.append(f"- {e['partition']} failed: {e['error']}")
        return "\n".join(
            lines + _duplicates(self.duplicates, self.duplicates_error) + _report(self.report, self.report_error)
        )

    def as_dict(self) -> dict[str, Any]:
        """Plain-data form (JSON-ready)."""
        return asdict(self)


def _duplicates(done: DedupSummary | None, error: str | None) -> list[str]:
    """The duplicate index's line of a summary (none when it did not run)."""
    if error:
        return [f"Duplicates and clusters not updated: {error} (`newsflow dedup` catches up)", ""]
    return [done.line().capitalize() + ".", ""] if done is not None else []


def _report(path: str | None, error: str | None) -> list[str]:
    """The report's line of a summary (none when it was not written)."""
    if error:
        return [f"Report not written: {error} (`newsflow report` writes it)", ""]
    return [f"Report with charts: `{path}`.", ""] if path else []
