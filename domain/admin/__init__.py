"""Administration: finding cases, the overview, one case's page, actions on cases, bulk replay.

May import: `domain` (every feature), `store`, `infra`, `schemas`.
"""
