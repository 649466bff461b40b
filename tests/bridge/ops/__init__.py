"""Tests of the operations endpoints: liveness and readiness."""
