"""Tests of persistence: group commit, row inserts, SQLite's turns, migrations, query plans."""
