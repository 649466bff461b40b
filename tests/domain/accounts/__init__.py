"""Tests of passwords, logins, sessions and API tokens."""
