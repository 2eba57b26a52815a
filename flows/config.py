"""The run configuration as the Prefect edge loads it: `pipeline.config`, with schedules checked by Prefect."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from pipeline.config import Config, ScheduleCheck
from pipeline.config import load_config as load_pipeline_config

__all__ = ["load_config", "prefect_schedule_check"]


def prefect_schedule_check(cron: str | None, timezone: str) -> None:
    """Raise ValueError unless Prefect's own schedule models accept the schedule: what the deployment will hold."""
    from prefect.client.schemas.schedules import CronSchedule, IntervalSchedule
    from pydantic import ValidationError

    try:
        if cron is None:
            IntervalSchedule(interval=timedelta(hours=1), timezone=timezone)
        else:
            CronSchedule(cron=cron, timezone=timezone)
    except ValidationError as exc:
        raise ValueError("; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())) from exc


def load_config(path: Path, check_schedule: ScheduleCheck | None = prefect_schedule_check) -> Config:
    """Read and validate a config file, schedules included; raises `ConfigError` with the offending key."""
    return load_pipeline_config(path, check_schedule)
