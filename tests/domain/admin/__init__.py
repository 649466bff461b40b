"""Tests of the administrators' overview, actions on cases and bulk replay."""
