"""Per-office pacing of bulk-replayed deliveries: one send slot per 1/rate seconds, across workers.

The bulk replay staggers due times already; this is what makes the rate a guarantee. A worker
that fell behind (a slow commit, a busy machine) would otherwise send the deliveries that
became due meanwhile back to back. Each paced send takes the office's next slot from Redis
(one atomic script, Redis's clock, so every worker on every host shares it) and waits for it.
"""

from __future__ import annotations

from redis import Redis

# Slots are 10 % wider than 1/rate, so the jitter between sending and arriving does not
# put one delivery more than the rate into any one-second window at the office.
SLOT_MARGIN = 1.1
_NEXT_SLOT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local last = tonumber(redis.call('GET', KEYS[1]) or '0')
local slot = math.max(now, last + tonumber(ARGV[1]))
redis.call('SET', KEYS[1], string.format('%.6f', slot), 'EX', 3600)
return string.format('%.6f', slot - now)
"""


def _key(office_id: str) -> str:
    return f"bridge:pace:{office_id}"


def next_slot(redis: Redis, office_id: str, rate_per_s: float) -> float:
    """Reserve the office's next send slot; returns how many seconds to wait for it."""
    spacing = SLOT_MARGIN / rate_per_s
    wait = redis.eval(_NEXT_SLOT, 1, _key(office_id), f"{spacing:.6f}")
    return max(0.0, float(wait))
