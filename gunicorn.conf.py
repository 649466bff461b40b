"""Gunicorn settings for the web process; each can be overridden with GUNICORN_CMD_ARGS."""

import multiprocessing
from pathlib import Path

# scripts/run and the systemd unit pass --bind (BRIDGE_PORT); this is the default without.
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
# gunicorn's control socket (gunicornc) would default to one path per user
# ($XDG_RUNTIME_DIR/gunicorn.ctl), shared by every instance of every checkout: each new one
# would take it over. It belongs to this checkout; the systemd unit puts it under /run/bridge.
control_socket = str(Path(__file__).resolve().parent / "var" / "gunicorn.ctl")
