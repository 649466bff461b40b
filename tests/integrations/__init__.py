"""Tests of the plugins: delivery channels and E-Payment providers."""
