"""The pipeline core, free of Prefect: configuration, discovery, fetching, normalising batches, backfills.

`flows/` wires it to Prefect (flows, tasks, schedules, the CLI); nothing here imports Prefect.
"""
