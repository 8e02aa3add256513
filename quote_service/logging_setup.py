"""Logging, configured in one place, and the request id that follows a request into its tasks.

Every line is JSON (`LOG_FORMAT=json`, the default) with `time`, `level`,
`logger`, `message` and `request_id`; lines logged inside a Celery task also
carry `task_id` and `task_name`. `LOG_FORMAT=text` is for humans at a terminal.

The request id comes from a sane incoming `X-Request-ID` header or is made
here, is returned in the response's `X-Request-ID`, is written into the outbox
rows the request causes (`services.outbox.enqueue`), travels as a Celery
message header and is bound again by the worker around each task
(`worker.observability`), so one request can be followed end to end.

Lines carry references and ids, never personal data: the access line below
names the URL rule, not the raw path, whose query may hold an email address.
"""

from __future__ import annotations

import logging
import re
import sys
import time
import uuid
from contextvars import ContextVar
from typing import IO, Any

from flask import Flask, Response, g, request
from pythonjsonlogger.json import JsonFormatter

REQUEST_ID_HEADER = "X-Request-ID"
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")

#: The request id of the HTTP request or task running in this context.
request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
#: `(task_id, task_name)` of the Celery task running in this context.
task_var: ContextVar[tuple[str, str] | None] = ContextVar("task", default=None)

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
# Our handler is found again by this name when the app is created once more.
HANDLER_NAME = "quote_service"

log = logging.getLogger("quote_service.requests")


def sane_request_id(value: str | None) -> str | None:
    """`value` if it may be used as a request id (it ends up in logs and headers)."""
    if value and _SANE_REQUEST_ID.fullmatch(value):
        return value
    return None


def new_request_id() -> str:
    return uuid.uuid4().hex


def current_request_id() -> str | None:
    return request_id_var.get()


class ContextFilter(logging.Filter):
    """Stamps each record with the request id and, inside a task, the task's id and name."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        task = task_var.get()
        if task is not None and not hasattr(record, "task_id"):
            record.task_id, record.task_name = task
        return True


class StderrHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is at the time (test runners and CLIs swap it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> IO[str]:  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value: IO[str]) -> None:
        pass


class TextFormatter(logging.Formatter):
    """The text format, with `-` for a line outside any request."""

    def format(self, record: logging.LogRecord) -> str:
        if getattr(record, "request_id", None) is None:
            record.request_id = "-"
        return super().format(record)


def make_formatter(log_format: str) -> logging.Formatter:
    if log_format == "text":
        return TextFormatter(TEXT_FORMAT)
    return JsonFormatter(
        "{levelname}{name}{message}{request_id}",
        style="{",
        rename_fields={"levelname": "level", "name": "logger"},
        timestamp="time",
    )


def make_handler(log_format: str, stream: IO[str] | None = None) -> logging.Handler:
    """A handler with our format and context; on stderr unless `stream` is given."""
    handler: logging.Handler = StderrHandler() if stream is None else logging.StreamHandler(stream)
    handler.setFormatter(make_formatter(log_format))
    handler.addFilter(ContextFilter())
    return handler


def configure_logging(level: str, log_format: str) -> None:
    """Give the root logger our one handler; calling it again replaces it, nothing else."""
    root = logging.getLogger()
    for existing in [h for h in root.handlers if h.get_name() == HANDLER_NAME]:
        root.removeHandler(existing)
    handler = make_handler(log_format)
    handler.set_name(HANDLER_NAME)
    root.addHandler(handler)
    root.setLevel(level)
    # Werkzeug's request lines print the raw path and query, where a
    # coordinator's search may hold an email address; ours name the rule.
    logging.getLogger("werkzeug").setLevel(max(logging.WARNING, root.level))


def init_app(app: Flask) -> None:
    """Configure logging from the app's settings and give every request an id.

    Registered before the other extensions, so the id is bound before any of
    their hooks can log or refuse the request.
    """
    configure_logging(app.config["LOG_LEVEL"], app.config["LOG_FORMAT"])
    app.before_request(_bind_request_id)
    app.after_request(_answer_with_request_id)
    app.teardown_request(_unbind_request_id)


def _bind_request_id() -> None:
    request_id = sane_request_id(request.headers.get(REQUEST_ID_HEADER)) or new_request_id()
    g.request_id = request_id
    g.request_id_token = request_id_var.set(request_id)
    g.request_started = time.perf_counter()


def _answer_with_request_id(response: Response) -> Response:
    request_id = g.get("request_id") or new_request_id()
    response.headers[REQUEST_ID_HEADER] = request_id
    started = g.get("request_started")
    rule = request.url_rule.rule if request.url_rule else "unmatched"
    extra: dict[str, Any] = {
        "method": request.method,
        "route": rule,
        "status": response.status_code,
    }
    if started is not None:
        extra["duration_ms"] = round((time.perf_counter() - started) * 1000, 1)
    log.info("%s %s %s", request.method, rule, response.status_code, extra=extra)
    return response


def _unbind_request_id(error: BaseException | None = None) -> None:
    token = g.pop("request_id_token", None)
    if token is not None:
        request_id_var.reset(token)
