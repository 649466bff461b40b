"""Tests of idempotency: repeats, reuses and concurrent arrivals."""
