"""Gunicorn settings for the web process; each can be overridden with GUNICORN_CMD_ARGS."""

import multiprocessing
from pathlib import Path

from domain.settings import log_options
from infra.logs import gunicorn_logconfig

# scripts/run and the systemd unit pass --bind (BRIDGE_PORT); this is the default without.
bind = "127.0.0.1:8000"
# One worker per core (threads share a worker's GIL), each with threads that overlap what a
# request waits for: its commit is shared with the other threads' (store/group_commit.py, one
# fsync for many 202s; ADR 12). bench/README.md has the settings measured; ADR 16's sweep
# (bench.intake --settings ... --rounds 3, on a quiet machine) decides what ships here.
workers = multiprocessing.cpu_count()
worker_class = "gthread"
threads = 8
# A worker holds at most this many connections (busy ones plus kept-alive idle ones), so
# kept-alive clients spread over the workers instead of piling onto the one that accepted
# first; more wait in the listen backlog until a kept-alive one is closed (keepalive).
worker_connections = 2 * threads
timeout = 30
graceful_timeout = 20
keepalive = 5
# gunicorn believes no forwarded header (by default it takes X-Forwarded-Proto and friends
# from 127.0.0.1): the app alone decides whom to believe, by BRIDGE_PROXY_HOPS and
# BRIDGE_TRUSTED_PROXIES (bridge/proxy.py), so a header is never applied twice or by two rules.
forwarded_allow_ips = ""
secure_scheme_headers: dict[str, str] = {}
# Request line and header limits stay at gunicorn's defaults; body limits are the app's.
# gunicorn's own lines (start, workers booting and dying, signals) in BRIDGE_LOG_FORMAT, so
# a log collector reads one format from the web unit; its level follows BRIDGE_LOG_LEVEL.
_log_level, _log_format = log_options()
loglevel = _log_level.lower()
logconfig_dict = gunicorn_logconfig(_log_format, _log_level)
accesslog = "-"
access_log_format = '{"event": "http.request", "method": "%(m)s", "path": "%(U)s", "status": %(s)s, "bytes": %(B)s, "duration_ms": %(M)s}'
# gunicorn's control socket (gunicornc) would default to one path per user
# ($XDG_RUNTIME_DIR/gunicorn.ctl), shared by every instance of every checkout: each new one
# would take it over. It belongs to this checkout; the systemd unit puts it under /run/bridge.
control_socket = str(Path(__file__).resolve().parent / "var" / "gunicorn.ctl")
