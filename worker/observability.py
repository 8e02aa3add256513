"""What the worker tells operators: task counters, a metrics server and log context.

- Logging stays as `create_app()` configured it (`LOG_LEVEL`, `LOG_FORMAT`):
  answering Celery's `setup_logging` signal keeps Celery from replacing it, so
  `celery worker -l` has no effect on our lines.
- Around each task the request id (the `request_id` message header the outbox
  relay sets, else the task's own id) and the task's id and name are bound, so
  the task's lines carry them and the outbox rows it writes inherit the id.
- `quote_service_tasks_total{task, outcome}` counts finished tasks (success,
  failure, retry).
- With `WORKER_METRICS_PORT` set, the worker serves its metrics on that port
  (one port per worker on a host): from its main process with a pool that
  does not fork, from its relay process with the prefork pool (fork rule). With the default prefork
  pool, tasks run in child processes: set `PROMETHEUS_MULTIPROC_DIR` (an empty
  directory of the worker's own, not the API's) so the server adds up every
  child's counters; with `--pool solo` or `threads` it is not needed.
"""

from __future__ import annotations

import logging
import threading
from typing import Any
from wsgiref.simple_server import WSGIServer

from celery import Task, bootsteps
from celery.signals import (
    setup_logging,
    task_failure,
    task_postrun,
    task_prerun,
    task_retry,
    task_success,
)
from celery.worker import WorkController
from prometheus_client import REGISTRY, Counter, start_http_server
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector, CollectorRegistry

from quote_service.logging_setup import request_id_var, sane_request_id, task_var

log = logging.getLogger(__name__)

TASKS = Counter(
    "quote_service_tasks",
    "Celery tasks finished, by task name and outcome (success, failure, retry).",
    ["task", "outcome"],
)


@setup_logging.connect
def _keep_our_logging(**kwargs: Any) -> None:
    """create_app() configured logging already; a receiver here stops Celery redoing it."""


@task_prerun.connect
def _bind_task_context(task: Task, task_id: str, **kwargs: Any) -> None:
    request_id = sane_request_id(getattr(task.request, "request_id", None)) or task_id
    request_id_var.set(request_id)
    task_var.set((task_id, task.name))


@task_postrun.connect
def _unbind_task_context(**kwargs: Any) -> None:
    request_id_var.set(None)
    task_var.set(None)


@task_success.connect
def _count_success(sender: Task, **kwargs: Any) -> None:
    TASKS.labels(sender.name, "success").inc()


@task_failure.connect
def _count_failure(sender: Task, **kwargs: Any) -> None:
    TASKS.labels(sender.name, "failure").inc()


@task_retry.connect
def _count_retry(sender: Task, **kwargs: Any) -> None:
    TASKS.labels(sender.name, "retry").inc()


class MetricsServer:
    """prometheus-client's HTTP server on a port, for the life of the worker."""

    def __init__(self, port: int, multiprocess_dir: str) -> None:
        self.port = port
        self.multiprocess_dir = multiprocess_dir
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    def registry(self) -> Collector:
        if not self.multiprocess_dir:
            return REGISTRY
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=self.multiprocess_dir)
        return registry

    def start(self) -> None:
        self._server, self._thread = start_http_server(self.port, registry=self.registry())
        log.info("worker metrics on port %d", self.port)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = self._thread = None


class MetricsServerStep(bootsteps.StartStopStep):
    """Runs a MetricsServer in the worker's main process when WORKER_METRICS_PORT is set.

    Not with the prefork pool: a process that forks runs no thread (the
    shared design's fork rule), so there the relay's process serves the
    metrics (worker/relay.py).
    """

    def include_if(self, worker: WorkController) -> bool:
        from celery.concurrency.prefork import TaskPool as PreforkPool

        pool = worker.pool_cls
        forks = isinstance(pool, type) and issubclass(pool, PreforkPool)
        return worker.app.flask_app.config["WORKER_METRICS_PORT"] is not None and not forks

    def create(self, worker: WorkController) -> MetricsServer:
        config = worker.app.flask_app.config
        return MetricsServer(config["WORKER_METRICS_PORT"], config["PROMETHEUS_MULTIPROC_DIR"])
