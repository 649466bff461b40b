"""Tests of the pay link, the citizen's return and the providers' callbacks."""
