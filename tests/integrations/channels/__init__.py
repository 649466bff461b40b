"""Tests of the delivery channels against a real demo back office on loopback."""
