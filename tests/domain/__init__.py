"""Tests of the rules: settings and configuration, and each feature's folder."""
