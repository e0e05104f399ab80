"""gunicorn settings for the portal (deploy/README in docs/operations.md).

    gunicorn -c deploy/gunicorn.conf.py portal.wsgi:application

Everything can be changed from the environment: PORTAL_BIND (127.0.0.1:8000), WEB_CONCURRENCY
(workers: 2 * CPUs + 1), WEB_TIMEOUT (30 s), and gunicorn's own FORWARDED_ALLOW_IPS (the proxy's
address; 127.0.0.1 by default)."""

import multiprocessing
import os

wsgi_app = "portal.wsgi:application"
bind = os.environ.get("PORTAL_BIND", "127.0.0.1:8000").split(",")
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2 + 1))
worker_class = "sync"
# A request that takes longer is killed (and logged); the database bounds (DB_STATEMENT_TIMEOUT_MS,
# 30 s by default) end a slow query before that.
timeout = int(os.environ.get("WEB_TIMEOUT", "30"))
graceful_timeout = 20
keepalive = 5
# Recycle workers now and then, so a slow leak never becomes an outage.
max_requests = 2000
max_requests_jitter = 200
# Load Django once in the master, then fork: faster start, less memory.
preload_app = True
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
proc_name = "portal-web"
