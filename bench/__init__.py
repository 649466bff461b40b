"""Benchmarks (not tests): intake and delivery throughput and latency."""
