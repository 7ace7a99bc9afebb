"""Plumbing used by more than one worker: settings, logging, Kafka, PostgreSQL, metrics serving.

No business rules live here.
"""
