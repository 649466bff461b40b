"""Tests of the E-Payment flow (issue 7)."""
