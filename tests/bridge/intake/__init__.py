"""Tests of the Formcycle webhook: accepted, authenticated, refused, and property tests."""
