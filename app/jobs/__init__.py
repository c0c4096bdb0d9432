"""Training jobs: the store they share (SQLite or Redis), the queue (Huey), the worker that trains,
the per-process event hub that streams their progress, and the registry of usable models.

This package is the only place that knows about SQLite or Redis.
"""
