"""Prefect flows, discovery and the `newsflow` CLI.

Prefect is imported lazily (by `flows.flow`), so the CLI and the worker processes
that only normalise do not pay for it, and settings can be applied before it loads.
"""
