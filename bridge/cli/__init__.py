"""`python -m bridge ...`: the operators' command line (set-up, accounts, cases, replay)."""
