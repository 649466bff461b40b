"""The citizen's payment routes and pages, and the providers' callbacks."""
