"""Persistence: the tables, the engine, group commit, row inserts, SQLite's turns, clock, migrations.

No rules of the product live here: which status may follow which is `domain`'s business.
May import: `infra`. Never `domain`, `schemas`, `worker`, `integrations`, `bridge`.
"""
