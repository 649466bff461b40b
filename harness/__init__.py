"""Real processes for the tests, the benchmarks and the chaos run.

Free ports, started processes with their log files and a supervisor that restarts them,
private redis-servers and scratch PostgreSQL databases. The product never imports this
package; it may import the product's packages, but never `tests` or `bench` (both use it).
"""
