"""Delivery: the delivery state machine in the database, fetch links, queue crashes, retention.

May import: `domain` (config, settings, problems, accounts), `store`, `infra`, `schemas`.
"""
