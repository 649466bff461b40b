"""Tests of the delivery state machine, its clock and retention."""
