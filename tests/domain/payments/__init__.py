"""Tests of the payment state machine."""
