"""Tests of the E-Payment provider plugins against the provider simulator."""
