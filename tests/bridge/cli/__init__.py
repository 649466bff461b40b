"""Tests of `python -m bridge`: commands, accounts, operations and their one context."""
