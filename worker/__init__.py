"""The worker processes: RQ jobs, the runner, the sweeper and the delivery queue; no Flask.

Jobs are plain typed functions taking ids (`jobs`); the database is the state machine, the
queue only transport (`queue`, `pacing`, `queue_truth`). The sweeper wakes due offices and runs
the administration's periodic steps (bulk replay, digest, purge, payment reconciliation).
May import: `integrations`, `domain`, `store`, `infra`, `schemas`. Never `bridge`.
"""
