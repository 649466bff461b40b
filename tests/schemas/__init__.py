"""Tests of the services' schemas."""
