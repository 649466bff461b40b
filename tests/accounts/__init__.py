"""Accounts, roles, hashed API tokens, login sessions and office-scoped fetch links (issue 8)."""
