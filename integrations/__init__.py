"""The outside world's protocols, as plugins: delivery channels and E-Payment providers.

Both the web process (the pull inbox, the pay link) and the worker call them, so they live
apart from both. `registry` is the plugin registry they share.
May import: `domain`, `store`, `infra`, `schemas`. Never `worker` or `bridge`.
"""
