"""Training jobs' machinery: the store everything is kept in (SQLite or Redis), the queue (Huey), the
worker that trains, and the per-process event hub that streams progress. No decisions for people live
here (those are :mod:`app.services`'); this package is the only place that knows about SQLite or Redis.
"""
