"""Gunicorn settings for the web process; each can be overridden with GUNICORN_CMD_ARGS."""

import multiprocessing

bind = "127.0.0.1:8000"
# Sync workers: a request is validation, one commit and one enqueue; nothing waits long.
workers = multiprocessing.cpu_count() * 2 + 1
worker_class = "sync"
timeout = 30
graceful_timeout = 20
keepalive = 5
# Request line and header limits stay at gunicorn's defaults; body limits are the app's.
accesslog = "-"
access_log_format = '{"event": "http.request", "method": "%(m)s", "path": "%(U)s", "status": %(s)s, "bytes": %(B)s, "duration_ms": %(M)s}'
