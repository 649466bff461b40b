"""Tests of the plumbing: Redis connections, safe XML, Standard Webhooks signatures."""
