"""gunicorn settings of the API.

`gunicorn "quote_service:create_app()"` reads this file from the working
directory (the repository root, `/app` in the image); options on the command
line, such as `--bind` or `--workers`, win over it.

Slow clients: gunicorn's default sync worker serves one request at a time,
and reading a request body blocks it, so two clients that send half a body
and wait took the whole API down. Here each worker process runs a pool of
threads (gthread): a slow client holds one thread, not a process, and a body
that stops arriving for BODY_READ_TIMEOUT seconds ends the request with a
400. A client can still tie up threads by trickling bytes just fast enough,
which is why a deployment puts a buffering reverse proxy in front (it reads
each request whole before passing it on); these settings keep the API
answering without one, or when the proxy is bypassed.
"""

from __future__ import annotations

import os

# Each process a pool of threads. The work is mostly waiting on PostgreSQL,
# so threads serve as well as processes and cost far less memory.
worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "32"))
# A worker silent this long (a stuck process, not a slow request) is restarted.
timeout = 30
graceful_timeout = 30
# Idle keep-alive connections wait in the worker's poller, holding no thread.
keepalive = 5
# Seconds a request body may stall before the request is given up (400).
BODY_READ_TIMEOUT = float(os.environ.get("GUNICORN_BODY_TIMEOUT", "10"))
# Query strings may carry an email address (the queue's `q`): no access log.
accesslog = None


def pre_request(worker, req):  # gunicorn's hook: (worker, request)
    """Bound every read of this request's body: a stalled client frees its thread."""
    sock = getattr(getattr(req, "unreader", None), "sock", None)
    if sock is not None and hasattr(sock, "settimeout"):
        sock.settimeout(BODY_READ_TIMEOUT)
