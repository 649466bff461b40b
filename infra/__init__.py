"""Process plumbing every process uses: Redis, telemetry, encryption, safe XML, logs, threads.

May import: third-party libraries only; no package of the project.
"""
