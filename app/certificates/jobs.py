"""Long work off the event loop: building the ZIP of a class's certificates.

A ZIP of 150 certificates takes seconds of CPU (each PDF ~0.1 s). The administrator's
request only starts a job and is answered at once; the job runs in a small thread pool
(never on the event loop), with a database session of its own, and reports its progress
("n of m") to a page that refreshes itself. The finished ZIP is a temporary file, served
by the job's download address and deleted when the job is forgotten (after ``KEEP``).

The registry is in process memory: with several server processes an administrator's next
request may reach a process that does not know the job. A shared store (database table or
Redis) is needed then — see issue #6.
"""

from __future__ import annotations

import logging
import os
import secrets
import tempfile
import threading
import zipfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

from app.certificates.pdf import render_certificate
from app.certificates.rules import file_name, verify_url
from app.certificates.service import CertificateService
from app.core.db import Database
from app.core.time import utcnow

log = logging.getLogger("blend727.certificates")

#: How long a finished job (and its ZIP) is kept.
KEEP = timedelta(hours=2)
#: Jobs kept per deployment (the oldest finished ones are forgotten first).
MAX_JOBS_PER_DEPLOYMENT = 20
#: Jobs that run at once in a process; more wait their turn.
WORKERS = 2

State = Literal["queued", "running", "done", "failed"]


def N_(message: str) -> str:
    """Marks an English message id for extraction; translated where it is shown."""
    return message


FAILED = N_(
    "The certificates could not be built. Try again; if it fails again, tell the people "
    "who run blend727."
)


@dataclass
class ZipJob:
    id: str
    deployment_id: int
    class_id: int
    class_code: str
    created_at: datetime
    state: State = "queued"
    total: int = 0
    done: int = 0
    path: Path | None = None
    finished_at: datetime | None = None
    #: An English message id when the job failed.
    error: str | None = None
    _event: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def finished(self) -> bool:
        return self.state in ("done", "failed")

    @property
    def download_name(self) -> str:
        return f"chung-nhan-{self.class_code}.zip"


class JobRegistry:
    def __init__(self, workers: int = WORKERS) -> None:
        self._jobs: dict[str, ZipJob] = {}
        self._lock = threading.Lock()
        self._workers = workers
        self._pool: ThreadPoolExecutor | None = None

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="certificates")
            return self._pool

    # -- reading ---------------------------------------------------------------------------
    def get(self, deployment_id: int, job_id: str) -> ZipJob | None:
        """A copy of the job, if it is this deployment's (another tenant's job is unknown)."""
        self._prune()
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.deployment_id != deployment_id:
                return None
            return replace(job)

    def recent(self, deployment_id: int) -> list[ZipJob]:
        self._prune()
        with self._lock:
            jobs = [replace(j) for j in self._jobs.values() if j.deployment_id == deployment_id]
        return sorted(jobs, key=lambda j: j.created_at, reverse=True)

    def wait(self, job_id: str, timeout: float) -> bool:
        """Block until the job is finished (tests, command-line use); True if it is."""
        with self._lock:
            job = self._jobs.get(job_id)
        return job is not None and job._event.wait(timeout)

    # -- starting --------------------------------------------------------------------------
    def create(self, deployment_id: int, class_id: int, class_code: str) -> tuple[ZipJob, bool]:
        """A new queued job, or the class's job still under way (``False``: not new)."""
        self._prune()
        with self._lock:
            for job in self._jobs.values():
                if (
                    job.deployment_id == deployment_id
                    and job.class_id == class_id
                    and not job.finished
                ):
                    return replace(job), False
            job = ZipJob(
                id=secrets.token_hex(12),
                deployment_id=deployment_id,
                class_id=class_id,
                class_code=class_code,
                created_at=utcnow(),
            )
            self._jobs[job.id] = job
            return replace(job), True

    def submit(self, job_id: str, work: Callable[[ZipJob], None]) -> None:
        """Run ``work`` on the job in the pool (it reports progress on the job it is given)."""
        with self._lock:
            job = self._jobs[job_id]
        self._executor().submit(self._run, job, work)

    def _run(self, job: ZipJob, work: Callable[[ZipJob], None]) -> None:
        try:
            job.state = "running"
            work(job)
            job.state = "done"
        except Exception:
            log.exception("certificate ZIP job %s (class %s) failed", job.id, job.class_id)
            job.error = FAILED
            job.state = "failed"
        finally:
            job.finished_at = utcnow()
            job._event.set()

    # -- forgetting ------------------------------------------------------------------------
    def _prune(self) -> None:
        now = utcnow()
        with self._lock:
            gone = [
                j
                for j in self._jobs.values()
                if j.finished and j.finished_at is not None and now - j.finished_at > KEEP
            ]
            by_deployment: dict[int, list[ZipJob]] = {}
            for j in self._jobs.values():
                by_deployment.setdefault(j.deployment_id, []).append(j)
            for jobs in by_deployment.values():
                finished = sorted((j for j in jobs if j.finished), key=lambda j: j.created_at)
                gone += finished[: max(0, len(jobs) - MAX_JOBS_PER_DEPLOYMENT)]
            for j in gone:
                self._jobs.pop(j.id, None)
        for j in gone:
            if j.path is not None:
                j.path.unlink(missing_ok=True)


JOBS = JobRegistry()


def build_class_zip(database: Database, base_url: str, now: datetime) -> Callable[[ZipJob], None]:
    """The work of a class ZIP job: issue what is due (one transaction), then draw each PDF
    into a temporary ZIP, counting as it goes."""

    def work(job: ZipJob) -> None:
        with database.session() as db:
            printable = CertificateService(db).issue_class(job.deployment_id, job.class_id, now)
        job.total = len(printable)
        fd, name = tempfile.mkstemp(prefix="blend727-certificates-", suffix=".zip")
        path = Path(name)
        try:
            taken: set[str] = set()
            with os.fdopen(fd, "wb") as fh, zipfile.ZipFile(fh, "w", zipfile.ZIP_DEFLATED) as zf:
                for item in printable:
                    pdf = render_certificate(
                        item.snapshot, item.code, verify_url(base_url, item.code)
                    )
                    zf.writestr(file_name(item.name, taken), pdf)
                    job.done += 1
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        job.path = path

    return work
