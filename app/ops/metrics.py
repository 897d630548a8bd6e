"""Prometheus metrics at ``/metrics``.

Counters and the latency histogram are kept by ``prometheus_client`` in each process; with
several uvicorn workers ``blend727 serve`` points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh
directory before the workers start, every process writes its values there, and a scrape —
answered by any one process — adds them all up. What the database knows (the outbox: its
depth, the age of the oldest score waiting, the failed and dead ones) is read from the
database at scrape time, so it is right whichever process answers and whichever process
queued or sent the scores.

Only ``/metrics`` needs the registry; the hot path only increments counters (~1 µs).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.db import Database
from app.core.time import as_utc, utcnow
from app.passback.models import OutboxStatus, ScoreOutbox
from lti.errors import REASONS, LaunchRefused

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

LAUNCHES = Counter(
    "blend727_launches_total",
    "LTI launches accepted, by LTI message type and the role blend727 gave the person.",
    ["message_type", "role"],
)
REFUSED = Counter(
    "blend727_launches_refused_total",
    "LTI logins and launches refused, by reason code (lti/errors.py).",
    ["reason"],
)
REQUEST_SECONDS = Histogram(
    "blend727_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template, method and status.",
    ["route", "method", "status"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
for _reason in REASONS:  # every reason shows (at 0) from the start
    REFUSED.labels(_reason)

#: Statuses of scores the LMS does not have yet, or that need a person.
OPEN_STATUSES = (
    OutboxStatus.PENDING,
    OutboxStatus.SENDING,
    OutboxStatus.FAILED,
    OutboxStatus.DEAD,
)


@contextmanager
def counting_refusals() -> Iterator[None]:
    """Count a login or launch refused inside the block by its reason, and let it go on."""
    try:
        yield
    except LaunchRefused as exc:
        REFUSED.labels(exc.code).inc()
        raise


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or os.environ.get(MULTIPROC_ENV.lower()) or None


class OutboxCollector(Collector):
    """Outbox figures read from the database at scrape time (right across processes)."""

    def __init__(self, database: Database, now: datetime | None = None) -> None:
        self.database = database
        self.now = now

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "blend727_database_up", "1 when the database answered this scrape's queries."
        )
        try:
            counts, oldest = self._read()
        except Exception:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        scores = GaugeMetricFamily(
            "blend727_outbox_scores",
            "Scores in the outbox not (yet) accepted by the LMS, by status: pending and "
            "sending are waiting; failed (refused for good) and dead (retried too long) need "
            "a person.",
            labels=["status"],
        )
        for status in OPEN_STATUSES:
            scores.add_metric([status.value], counts.get(status.value, 0))
        yield scores
        depth = counts.get(OutboxStatus.PENDING.value, 0) + counts.get(
            OutboxStatus.SENDING.value, 0
        )
        yield GaugeMetricFamily(
            "blend727_outbox_depth", "Scores waiting to be sent (pending + sending).", depth
        )
        now = self.now or utcnow()
        age = max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0
        yield GaugeMetricFamily(
            "blend727_outbox_oldest_pending_age_seconds",
            "Age of the oldest score waiting to be sent (0 when none waits).",
            age,
        )

    def _read(self) -> tuple[dict[str, int], datetime | None]:
        waiting = (OutboxStatus.PENDING, OutboxStatus.SENDING)
        with self.database.session(readonly=True) as db:
            rows = db.execute(
                select(ScoreOutbox.status, func.count())
                .where(ScoreOutbox.status.in_(OPEN_STATUSES))
                .group_by(ScoreOutbox.status)
            ).all()
            oldest = db.scalar(
                select(func.min(ScoreOutbox.created_at)).where(ScoreOutbox.status.in_(waiting))
            )
        counts = {str(status): int(n) for status, n in rows}
        return counts, as_utc(oldest) if oldest is not None else None


class _ThisProcess(Collector):
    """The default registry's metrics (one process: no multiprocess directory)."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


def exposition(database: Database) -> tuple[bytes, str]:
    """The text a scrape gets: every process's counters and histograms, and the database's
    figures."""
    registry = CollectorRegistry(auto_describe=False)
    directory = multiprocess_dir()
    if directory:
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry, path=directory)
    else:
        registry.register(_ThisProcess())
    registry.register(OutboxCollector(database))
    return generate_latest(registry), CONTENT_TYPE_LATEST


UNMATCHED = "<unmatched>"


class MetricsMiddleware:
    """Times every HTTP request; labelled by the route's template (``/learn/classes/{id}``),
    never the raw path, so the number of series stays bounded."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            REQUEST_SECONDS.labels(_route_of(scope), scope["method"], str(status)).observe(
                time.perf_counter() - started
            )


def _route_of(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else UNMATCHED
