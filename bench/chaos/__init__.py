"""The chaos run: real processes, a mixed load and random faults, then the "nothing lost" checks.

`python -m bench.chaos [--quick] [--store sqlite|postgres|both] [--seed N] [--sentinel]`;
bench/README.md describes what runs, which faults are injected and which invariants are checked.
"""
