"""Accounts: roles, who acts (account or token), passwords, logins, admin sessions, API tokens.

May import: `domain` (problems, settings), `store`, `infra`, `schemas`.
"""
