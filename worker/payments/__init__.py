"""E-Payment provider plugins; importing this package registers the built-in providers."""
