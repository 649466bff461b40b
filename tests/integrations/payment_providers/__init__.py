"""Tests of the E-Payment providers against the stand-in provider, end to end too."""
