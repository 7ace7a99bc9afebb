"""Webhooks: the subscription API (served by the gateway) and the notifier, the process that
delivers alerts to subscribers (`python -m ingest_gateway.webhooks`).

Pure logic: egress.py (which addresses may be called), signing.py, backoff.py, circuit.py,
matching.py, offsets.py, attempts.py. Adapters: store.py (PostgreSQL), sender.py (HTTP),
dead_letters.py. Wiring: api.py (gateway handlers), dispatcher.py and service.py (notifier).
"""
