"""Intake: a posted form's fields shaped, validated, screened, routed and stored in one go.

May import: `domain` (config, settings, problems, payments), `store`, `infra`, `schemas`.
"""
