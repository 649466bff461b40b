"""`python -m bench.delivery`: the delivery benchmark (see bench/delivery/__init__.py)."""

from __future__ import annotations

from bench.delivery.run import main

if __name__ == "__main__":
    raise SystemExit(main())
