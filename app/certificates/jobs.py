"""Long work off the event loop: building the ZIP of a class's certificates.

A ZIP of 150 certificates takes seconds of CPU (each PDF ~0.1 s). The administrator's
request only starts a job and is answered at once; the job runs in a small thread pool of
the process that accepted the request (never on the event loop), with database sessions of
its own, and reports its progress ("n of m") to a page that refreshes itself.

Nothing of a job lives in process memory: the ``certificate_job`` row holds its state,
progress, owner (the process running it) and, once done, the ZIP itself, so the next request
may reach any server process. The owner touches ``heartbeat_at`` as it works (and for its
jobs still waiting for a thread); a job whose heartbeat is older than ``LOST_AFTER`` — its
process died or was restarted — is shown as failed, and the class's ZIP may be started again.
Finished jobs are forgotten after ``KEEP`` (at most ``MAX_JOBS_PER_DEPLOYMENT`` are kept).
"""

from __future__ import annotations

import io
import logging
import secrets
import threading
import time
import zipfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from app.certificates.models import CertificateJob
from app.certificates.pdf import render_certificate
from app.certificates.repository import CertificateJobRepository
from app.certificates.rules import file_name, verify_url
from app.certificates.service import CertificateService
from app.core.db import Database
from app.core.time import utcnow
from app.ops.service import process_name

log = logging.getLogger("blend727.certificates")

#: How long a finished job (and its ZIP) is kept.
KEEP = timedelta(hours=2)
#: Jobs kept per deployment (the oldest finished ones are forgotten first).
MAX_JOBS_PER_DEPLOYMENT = 20
#: Jobs that run at once in a process; more wait their turn.
WORKERS = 2
#: A job not touched for this long belongs to a process that is gone.
LOST_AFTER = timedelta(minutes=2)
#: Seconds between two progress writes of a running job (each also a heartbeat).
PROGRESS_EVERY = 1.0

State = Literal["queued", "running", "done", "failed"]


def N_(message: str) -> str:
    """Marks an English message id for extraction; translated where it is shown."""
    return message


FAILED = N_(
    "The certificates could not be built. Try again; if it fails again, tell the people "
    "who run blend727."
)
LOST = N_(
    "Building the certificates stopped: the server process doing it was stopped or "
    "restarted. Start the ZIP file again from the Certificates page."
)


@dataclass(frozen=True)
class ZipJob:
    """What a page shows of a job (a copy of its row, without the ZIP)."""

    id: str
    deployment_id: int
    class_id: int
    class_code: str
    created_at: datetime
    state: State = "queued"
    total: int = 0
    done: int = 0
    finished_at: datetime | None = None
    #: An English message id when the job failed.
    error: str | None = None
    size: int | None = None

    @property
    def finished(self) -> bool:
        return self.state in ("done", "failed")

    @property
    def download_name(self) -> str:
        return f"chung-nhan-{self.class_code}.zip"


def _view(row: CertificateJob, now: datetime) -> ZipJob:
    state, error = row.state, row.error
    if state in ("queued", "running") and row.heartbeat_at < now - LOST_AFTER:
        state, error = "failed", LOST  # its process is gone; the next start marks it so
    return ZipJob(
        id=row.id,
        deployment_id=row.deployment_id,
        class_id=row.class_id,
        class_code=row.class_code,
        created_at=row.created_at,
        state=state,  # type: ignore[arg-type]
        total=row.total,
        done=row.done,
        finished_at=row.finished_at,
        error=error,
        size=row.zip_size,
    )


class Progress:
    """Given to the work: ``set(done, total)`` records progress (at most once a second, and
    always the last call before the work returns)."""

    def __init__(self, database: Database, job: ZipJob, owner: str) -> None:
        self.database = database
        self.job = job
        self.owner = owner
        self.done = 0
        self.total = 0
        self._written = 0.0

    def set(self, done: int, total: int, *, force: bool = False) -> None:
        self.done, self.total = done, total
        now = time.monotonic()
        if force or now - self._written >= PROGRESS_EVERY:
            self._written = now
            with self.database.session() as db:
                CertificateJobRepository(db).progress(
                    self.job.id, self.owner, done, total, utcnow()
                )


#: The work of a job: builds the ZIP, reporting progress; returns its bytes.
Work = Callable[[ZipJob, Progress], bytes]


class JobRegistry:
    """Creates, runs and reads ZIP jobs. Its only memory is this process's thread pool (and
    events that let a caller in this process wait for a job it runs)."""

    def __init__(self, workers: int = WORKERS) -> None:
        self._lock = threading.Lock()
        self._workers = workers
        self._pool: ThreadPoolExecutor | None = None
        self._finished: dict[str, threading.Event] = {}

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="certificates")
            return self._pool

    # -- reading ---------------------------------------------------------------------------
    def get(self, database: Database, deployment_id: int, job_id: str) -> ZipJob | None:
        """The job, if it is this deployment's (another tenant's job is unknown) and not
        forgotten yet."""
        now = utcnow()
        with database.session(readonly=True) as db:
            row = CertificateJobRepository(db).get(deployment_id, job_id)
            if row is None or _forgotten(row, now):
                return None
            return _view(row, now)

    def recent(self, database: Database, deployment_id: int) -> list[ZipJob]:
        now = utcnow()
        with database.session(readonly=True) as db:
            rows = CertificateJobRepository(db).recent(deployment_id, MAX_JOBS_PER_DEPLOYMENT)
            return [_view(r, now) for r in rows if not _forgotten(r, now)]

    def zip_data(self, database: Database, deployment_id: int, job_id: str) -> bytes | None:
        with database.session(readonly=True) as db:
            return CertificateJobRepository(db).zip_data(deployment_id, job_id)

    def wait(self, database: Database, job_id: str, timeout: float) -> bool:
        """Block until the job is finished (tests, command-line use); True if it is."""
        with self._lock:
            event = self._finished.get(job_id)
        if event is not None:
            return event.wait(timeout)
        deadline = time.monotonic() + timeout
        while True:
            with database.session(readonly=True) as db:
                row = CertificateJobRepository(db).by_id(job_id)
                job = _view(row, utcnow()) if row is not None else None
            if job is not None and job.finished:
                return True
            if job is None or time.monotonic() >= deadline:
                return False
            time.sleep(0.1)

    # -- starting --------------------------------------------------------------------------
    def create(
        self, database: Database, deployment_id: int, class_id: int, class_code: str
    ) -> tuple[ZipJob, bool]:
        """A new queued job owned by this process, or the class's job still under way
        (``False``: not new)."""
        now = utcnow()
        with database.session() as db:
            repo = CertificateJobRepository(db)
            repo.lock_class(class_id)
            repo.fail_lost(now - LOST_AFTER, now, LOST)
            repo.prune(now - KEEP, MAX_JOBS_PER_DEPLOYMENT - 1)  # room for a new one
            running = repo.under_way(deployment_id, class_id)
            if running is not None:
                return _view(running, now), False
            row = CertificateJob(
                id=secrets.token_hex(12),
                deployment_id=deployment_id,
                class_id=class_id,
                class_code=class_code,
                state="queued",
                total=0,
                done=0,
                owner=process_name(),
                created_at=now,
                heartbeat_at=now,
            )
            repo.add(row)
            return _view(row, now), True

    def submit(self, database: Database, job: ZipJob, work: Work) -> None:
        """Run ``work`` for the job in this process's pool."""
        with self._lock:
            self._finished[job.id] = threading.Event()
        self._executor().submit(self._run, database, job, work, process_name())

    def _run(self, database: Database, job: ZipJob, work: Work, owner: str) -> None:
        try:
            with database.session() as db:
                if not CertificateJobRepository(db).start(job.id, owner, utcnow()):
                    return  # taken as lost meanwhile: a new job will do the work
            progress = Progress(database, job, owner)
            try:
                data = work(job, progress)
            except Exception:
                log.exception("certificate ZIP job %s (class %s) failed", job.id, job.class_id)
                with database.session() as db:
                    CertificateJobRepository(db).finish(
                        job.id, owner, utcnow(), state="failed", error=FAILED
                    )
                return
            with database.session() as db:
                CertificateJobRepository(db).finish(
                    job.id,
                    owner,
                    utcnow(),
                    state="done",
                    done=progress.done,
                    total=progress.total,
                    zip_data=data,
                    zip_size=len(data),
                )
        except Exception:
            log.exception("certificate ZIP job %s: could not record its outcome", job.id)
        finally:
            with self._lock:
                event = self._finished.pop(job.id, None)
            if event is not None:
                event.set()


def _forgotten(row: CertificateJob, now: datetime) -> bool:
    return row.finished_at is not None and now - row.finished_at > KEEP


JOBS = JobRegistry()


def build_class_zip(database: Database, base_url: str, now: datetime) -> Work:
    """The work of a class ZIP job: issue what is due (one transaction), then draw each PDF
    into the ZIP, counting as it goes."""

    def work(job: ZipJob, progress: Progress) -> bytes:
        with database.session() as db:
            printable = CertificateService(db).issue_class(job.deployment_id, job.class_id, now)
        total = len(printable)
        progress.set(0, total, force=True)
        buffer = io.BytesIO()
        taken: set[str] = set()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
            for done, item in enumerate(printable, start=1):
                pdf = render_certificate(item.snapshot, item.code, verify_url(base_url, item.code))
                zf.writestr(file_name(item.name, taken), pdf)
                progress.set(done, total)
        progress.done = total
        return buffer.getvalue()

    return work
