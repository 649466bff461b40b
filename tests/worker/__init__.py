"""Tests of the worker processes: delivery end to end, outages, faults, waking, the digest."""
