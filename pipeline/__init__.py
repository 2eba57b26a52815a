"""The pipeline core, free of Prefect: from configuration to the corpus report.

Configuration, discovery, fetching, normalising batches, backfills, duplicates, learned
boilerplate and the report. `flows/` wires it to Prefect (flows, tasks, schedules, the
CLI); nothing here imports Prefect.
"""
