"""The JSON API under /api/v1/: status, attachments, the pull inbox, tokens, admin, OpenAPI."""
