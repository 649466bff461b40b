"""Tests of the harness: real processes, private redis-servers, scratch PostgreSQL databases."""
