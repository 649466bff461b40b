"""The rules of the product, by feature; no HTTP, no RQ, no Redis.

Packages: `intake/` (a posted form to a stored, routed submission), `delivery/` (the delivery
state machine, signed fetch links, retention), `payments/` (the payment state machine),
`accounts/` (roles, accounts, tokens, sessions, logins), `admin/` (what administrators find,
read and do). Beside them the three things every feature reads: `config` (the routing
configuration), `settings` (the environment, typed) and `problems` (every refusal, RFC 9457).

May import: `store`, `infra`, `schemas`. Never Flask, RQ, `worker`, `integrations`, `bridge`.
"""
