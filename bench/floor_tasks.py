"""The workers' floor: a no-op task and a bare acknowledgement, on the project's Celery settings.

`celery -A bench.floor_tasks worker` runs them with the same broker, the same
settings (`quote_service.config.celery_settings`: acks late, prefetch 1...)
and the same command-line options as the project's worker; only the queue
differs, so the two workers never take each other's messages.
"""

from __future__ import annotations

import os
import smtplib
from email.message import EmailMessage

import psycopg
import redis
from celery import Celery
from kombu import Queue

from bench.database import FLOOR_TABLE, libpq_url
from quote_service.config import celery_settings

QUEUE = "bench-floor"
#: Incremented by each no-op task, so the harness sees the round trips complete.
DONE_KEY = "bench:floor:done"
NOOP = "bench.noop"
ACK = "bench.floor_ack"


def make_celery(redis_url: str) -> Celery:
    """A Celery app with the project's settings on the floor's own queue."""
    app = Celery("bench_floor")
    app.config_from_object(
        {
            **celery_settings(redis_url),
            # Only its own queue: the project's queues are the project worker's.
            "task_default_queue": QUEUE,
            "task_queues": (Queue(QUEUE),),
            "task_routes": {},
        }
    )
    return app


# Processes started by the harness (the floor's worker and API) find REDIS_URL set.
celery = make_celery(os.environ.get("REDIS_URL", ""))

# One connection of each kind per process, opened after the pool forked.
_redis: redis.Redis | None = None
_database: psycopg.Connection | None = None


def _redis_client() -> redis.Redis:
    global _redis
    if _redis is None:
        _redis = redis.Redis.from_url(os.environ["REDIS_URL"])
    return _redis


def _connection() -> psycopg.Connection:
    global _database
    if _database is None or _database.closed:
        _database = psycopg.connect(libpq_url(os.environ["DATABASE_URL"]), autocommit=True)
    return _database


@celery.task(name=NOOP)
def noop() -> None:
    """Nothing but the count that tells the harness this round trip is done."""
    _redis_client().incr(DONE_KEY)


@celery.task(name=ACK)
def floor_ack(row_id: int) -> None:
    """Read the address of a stored request and send it a one-line email."""
    row = (
        _connection()
        .execute(f"SELECT email FROM {FLOOR_TABLE} WHERE id = %s", (row_id,))
        .fetchone()
    )
    if row is None:
        return
    message = EmailMessage()
    message["From"] = "no-reply@quote-service.example"
    message["To"] = row[0]
    message["Subject"] = "We received your request"
    message.set_content("We received your request.")
    with smtplib.SMTP(os.environ["SMTP_HOST"], int(os.environ["SMTP_PORT"]), timeout=10) as smtp:
        smtp.send_message(message)
