"""`python -m bridge ...`: the operators' command line (set-up, accounts, cases, replay).

Every command gets its settings, store and Redis from one `context.Context`, which closes
them when the command ends.
"""
