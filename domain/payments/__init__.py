"""Payments: the payment state machine in the database, the one place a payment's status moves.

The providers' protocols are in `integrations.payment_providers`, the talking to them in
`worker.payment_flow`. May import: `domain` (config, problems, delivery), `store`, `infra`.
"""
