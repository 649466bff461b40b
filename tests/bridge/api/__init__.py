"""Tests of the JSON API: status, access by role and office, admin actions, views."""
