"""The request bodies the benchmarks post: the README's own examples, as Formcycle sends them.

The benchmarks read `examples/` (which tests post too) instead of importing the test suite, so
`bench/` runs without `tests/` and measures exactly what a new user's first request looks like.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl, urlencode

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
#: Formcycle's process id field: dropped, so each post's Idempotency-Key header decides.
IDEMPOTENCY_FIELD = "process_id"


def form_body(service: str) -> str:
    """The urlencoded example body of `service` without its process id."""
    raw = (EXAMPLES / f"{service}.form").read_text(encoding="utf-8").strip()
    pairs = [(k, v) for k, v in parse_qsl(raw, keep_blank_values=True) if k != IDEMPOTENCY_FIELD]
    return urlencode(pairs)
