"""Queue scores and send them.

``enqueue_score`` runs inside the caller's transaction (the one that writes the grade), so a
grade and the score owed to the LMS are committed together or not at all. ``OutboxWorker``
claims due rows in a short transaction, talks to the LMS outside any transaction, and
records each outcome in another short one: a worker killed at any point leaves rows that
another worker picks up when their lease runs out, and the LMS's 409 for a score it already
holds counts as delivery, so every score lands exactly once.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import requests
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.rules import Actor, Subject
from app.audit.service import AuditLog, system_actor
from app.classes.models import TrainingClass
from app.core.db import Database
from app.core.errors import NotFound, ValidationFailed
from app.core.time import utcnow
from app.identity.models import ResourceLink, User
from app.keys.service import KeyService
from app.passback.models import OutboxStatus, ScoreOutbox
from app.passback.repository import OutboxRepository
from app.passback.rules import (
    LEASE,
    Outcome,
    is_dead,
    next_timestamp,
    outcome_for,
    platform_wide,
    retry_delay,
)
from app.platforms.repository import PlatformRepository

log = logging.getLogger("blend727.passback")

ACTIVITY = {"Initialized", "Started", "InProgress", "Submitted", "Completed"}
GRADING = {"FullyGraded", "Pending", "PendingManual", "Failed", "NotReady"}


def url_hash(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()


def _origin(url: object) -> tuple[str, str] | None:
    """``(scheme, host[:port])`` of an http(s) URL, lower-cased; ``None`` for anything else."""
    if not isinstance(url, str):
        return None
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.netloc:
        return None
    return scheme, parts.netloc.lower()


def platform_urls(platform: Any) -> tuple[str, ...]:
    """The addresses an administrator registered for a platform: its own origins."""
    names = ("issuer", "token_url", "auth_login_url", "keyset_url")
    return tuple(u for u in (getattr(platform, n, None) for n in names) if isinstance(u, str))


def line_item_belongs(
    url: str, endpoint: dict[str, Any] | None, platform: Sequence[str] = ()
) -> bool:
    """The line item must be the resource link's own, or in its course's line items
    container: a grade can never be posted to another course's line item. It must also live
    on the platform's own origin — one of its registered addresses (``platform``) or the
    claim's container — since every score carries the platform's bearer token (the lesson
    of Open edX's CVE-2023-23611: the tool decides where grades go, not a request)."""
    if not endpoint:
        return False
    target = _origin(url)
    if target is None:
        return False
    container = endpoint.get("lineitems")
    if url == endpoint.get("lineitem"):
        allowed = {_origin(u) for u in platform} | {_origin(container)}
        return target in allowed
    if not isinstance(container, str) or _origin(container) != target:
        return False
    return urlsplit(url).path.startswith(urlsplit(container).path.rstrip("/") + "/")


def enqueue_score(
    session: Session,
    *,
    deployment_id: int,
    resource_link: ResourceLink,
    line_item_url: str,
    user: User,
    score_given: Decimal | None,
    score_maximum: Decimal,
    activity_progress: str,
    grading_progress: str,
    comment: str | None = None,
    now: datetime | None = None,
    platform: Sequence[str] | None = None,
) -> ScoreOutbox:
    """Queue one score. ``platform``: the platform's registered addresses
    (``platform_urls``), looked up from the deployment when not given."""
    if resource_link.deployment_id != deployment_id:
        raise ValidationFailed(
            "%(field)s does not belong to this LMS", params={"field": "resource_link"}
        )
    if platform is None:
        platform = platform_urls(PlatformRepository(session).record_for_deployment(deployment_id))
    if not line_item_belongs(line_item_url, resource_link.ags_endpoint, platform):
        raise ValidationFailed(
            "%(field)s is not a line item of this activity's course",
            params={"field": "line_item_url"},
        )
    if activity_progress not in ACTIVITY or grading_progress not in GRADING:
        raise ValidationFailed("%(field)s is not valid", params={"field": "progress"})
    if score_given is not None and not (0 <= score_given <= score_maximum):
        raise ValidationFailed("%(field)s is not valid", params={"field": "score_given"})
    now = now or utcnow()
    repo = OutboxRepository(session)
    digest = url_hash(line_item_url)
    timestamp = next_timestamp(repo.last_timestamp(digest, user.sub), now)
    repo.supersede_pending(digest, user.sub, timestamp)
    row = ScoreOutbox(
        deployment_id=deployment_id,
        resource_link_id=resource_link.id,
        line_item_url=line_item_url,
        line_item_url_hash=digest,
        user_id=user.id,
        lms_user_id=user.sub,
        score={
            # scoreGiven only when final: Moodle drops it otherwise (see lti.ags).
            "scoreGiven": str(score_given)
            if score_given is not None and grading_progress == "FullyGraded"
            else None,
            "scoreMaximum": str(score_maximum),
            "activityProgress": activity_progress,
            "gradingProgress": grading_progress,
            "comment": comment,
        },
        score_timestamp=timestamp,
        status=OutboxStatus.PENDING,
        next_attempt_at=now,
        created_at=now,
        window_start=now,
    )
    repo.add(row)
    return row


#: What the audit log says a retried score became (it is sent at the worker's next round).
QUEUED = "queued"


class OutboxService:
    """What an administrator does to the scores owed to the LMS. ``actor``: who does it, for
    the audit log (the tool itself when ``None``)."""

    def __init__(self, session: Session, actor: Actor | None = None) -> None:
        self.session = session
        self.repo = OutboxRepository(session)
        self.actor = actor

    def _subject(self, row: ScoreOutbox) -> Subject:
        """The score as people name it: whose, and for which activity (the gradebook column
        is the resource link's), in the class that sends it."""
        user = self.session.get(User, row.user_id) if row.user_id is not None else None
        link = self.session.get(ResourceLink, row.resource_link_id)
        who = user.display_name if user is not None else f"#{row.lms_user_id}"
        what = (link.title or link.resource_link_id) if link is not None else None
        class_id = self.session.scalar(
            select(TrainingClass.id)
            .where(
                TrainingClass.deployment_id == row.deployment_id,
                TrainingClass.resource_link_id == row.resource_link_id,
            )
            .order_by(TrainingClass.id)
            .limit(1)
        )
        return Subject("score", row.id, " · ".join(p for p in (who, what) if p), class_id)

    def retry(self, deployment_id: int, row_id: int, now: datetime | None = None) -> ScoreOutbox:
        """Send a failed, dead or waiting score again at the next round (a new retry window).
        Another LMS's score, or one being sent or already sent, is not found."""
        now = now or utcnow()
        row = self.repo.retryable(deployment_id, row_id)
        if row is None:
            raise NotFound()
        before = row.status
        if not self.repo.retry_now(deployment_id, row_id, now):  # a worker took it meanwhile
            raise NotFound()
        actor = self.actor or system_actor(self.session, deployment_id)
        AuditLog(self.session).record(
            actor, "passback.retry", self._subject(row), {"delivery": before}, {"delivery": QUEUED}
        )
        return row


@dataclass
class RunResult:
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    dead: int = 0
    lost_lease: int = 0
    deferred: int = 0  # not sent this round: their LMS had just failed for every score
    details: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Failure:
    """How one score's send failed, as the worker records it."""

    kind: str
    status: int | None
    detail: str
    retry_after: float | None = None
    at_token_endpoint: bool = False

    @property
    def error(self) -> str:
        return f"{self.kind}: {self.detail}"[:2000]


def _platform_key(platform: Any, row: ScoreOutbox) -> tuple[str, ...]:
    """Scores to one registration share its token endpoint and gradebook host."""
    if platform is None:
        return ("deployment", str(row.deployment_id))
    return ("platform", str(platform.issuer), str(platform.client_id))


class OutboxWorker:
    """Sends due scores. Run by ``blend727 worker`` and, for small installations, inside
    ``blend727 serve``. Any number of them may run against one PostgreSQL.

    A worker holds the rows it claimed for ``lease``; before each send it makes sure that at
    least ``send_timeout``'s worth of the lease is left (renewing it for the rest of the
    batch when not), so a score is never sent by a worker whose claim another worker may
    already have taken over. When an LMS fails as a whole (``rules.platform_wide``) the
    rest of its scores in the batch wait for the same next try instead of being sent into
    the same failure.
    """

    def __init__(
        self,
        database: Database,
        http: requests.Session,
        *,
        worker_id: str | None = None,
        batch: int = 50,
        rng: random.Random | None = None,
        token_cache: Any = None,
        before_round: Callable[[datetime], None] | None = None,
        lease: timedelta = LEASE,
        send_timeout: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.database = database
        # Work to do before each round (the result sweep: app.grading.service.ResultSweeper).
        self.before_round = before_round
        self.http = http
        # At most 64 characters (score_outbox.claimed_by): a long host name is cut, the pid and
        # the object id that make the claim this worker's own are kept whole.
        self.worker_id = (worker_id or f"{socket.gethostname()[:36]}:{os.getpid()}:{id(self):x}")[
            :64
        ]
        self.batch = batch
        self.rng = rng or random.Random()  # noqa: S311 - jitter
        self.token_cache = token_cache
        self.lease = lease
        # The longest one send may take: a token request and the score's own request, each
        # at most its connect (≤ 3 s) and read timeouts (lti.http).
        self.send_budget = 2 * (min(send_timeout, 3.0) + send_timeout)
        self._clock = clock

    def run_once(self, now: datetime | None = None) -> RunResult:
        now = now or utcnow()
        if self.before_round is not None:
            self.before_round(now)
        result = RunResult()
        started = self._clock()
        with self.database.session() as db:
            ids = OutboxRepository(db).claim(self.worker_id, now, now + self.lease, self.batch)
        result.claimed = len(ids)
        if not ids:
            return result
        with self.database.session(readonly=True) as db:
            rows = OutboxRepository(db).rows(ids)
            platforms = {
                r.deployment_id: PlatformRepository(db).record_for_deployment(r.deployment_id)
                for r in rows
            }
            tool_key = KeyService(db).signing_key()
        lease_left_until = started + self.lease.total_seconds()
        held = set(ids)
        blocked: dict[tuple[str, ...], tuple[_Failure, datetime]] = {}
        for index, row in enumerate(rows):
            if self._clock() + self.send_budget > lease_left_until:
                # Not enough of the claim left for a send: extend it for what remains (only
                # the rows still ours), counted on the round's own clock.
                elapsed = timedelta(seconds=self._clock() - started)
                with self.database.session() as db:
                    held = set(
                        OutboxRepository(db).renew(
                            [r.id for r in rows[index:]],
                            self.worker_id,
                            now + elapsed + self.lease,
                        )
                    )
                lease_left_until = self._clock() + self.lease.total_seconds()
            if row.id not in held:
                result.lost_lease += 1
                continue
            platform = platforms.get(row.deployment_id)
            key = _platform_key(platform, row)
            if key in blocked:
                self._defer(row, *blocked[key], result)
                continue
            failure, next_try = self._send(row, platform, tool_key, result)
            if failure is not None and platform_wide(
                failure.kind, failure.status, at_token_endpoint=failure.at_token_endpoint
            ):
                blocked[key] = (failure, next_try)
        return result

    def _post(self, row: ScoreOutbox, platform: Any, tool_key: Any) -> _Failure | None:
        from lti.ags import ScoreToSend, post_score
        from lti.services import ServiceError

        if platform is None or not platform.active:
            return _Failure("forbidden", None, "platform disabled or removed")
        score = row.score
        try:
            post_score(
                registration=platform,
                tool_key=tool_key,
                http=self.http,
                line_item_url=row.line_item_url,
                score=ScoreToSend(
                    user_id=row.lms_user_id,
                    score_given=float(score["scoreGiven"]) if score.get("scoreGiven") else None,
                    score_maximum=float(score["scoreMaximum"]),
                    activity_progress=score["activityProgress"],
                    grading_progress=score["gradingProgress"],
                    timestamp=row.score_timestamp,
                    comment=score.get("comment"),
                ),
                token_cache=self.token_cache,
            )
        except ServiceError as exc:
            return _Failure(
                exc.kind,
                exc.status,
                str(getattr(exc, "platform_message", None) or exc.detail or exc.kind),
                getattr(exc, "retry_after", None),
                bool(getattr(exc, "at_token_endpoint", False)),
            )
        except Exception as exc:
            log.exception("unexpected error sending score %s", row.id)
            return _Failure("unreachable", None, f"{type(exc).__name__}: {exc}")
        return None

    def _send(
        self, row: ScoreOutbox, platform: Any, tool_key: Any, result: RunResult
    ) -> tuple[_Failure | None, datetime]:
        """Send one score and record the outcome; returns the failure (``None``: delivered)
        and when the score is tried again."""
        failure = self._post(row, platform, tool_key)
        now = utcnow()
        next_try = now
        outcome = Outcome.SENT if failure is None else outcome_for(failure.kind, row.attempts)
        with self.database.session() as db:
            repo = OutboxRepository(db)
            if failure is None or outcome == Outcome.SENT:
                done = repo.finish(
                    row.id,
                    self.worker_id,
                    status=OutboxStatus.SENT,
                    sent_at=now,
                    last_error=None if failure is None else failure.error,
                    last_http_status=None if failure is None else failure.status,
                )
                result.sent += done
            elif outcome == Outcome.FAILED:
                done = repo.finish(
                    row.id,
                    self.worker_id,
                    status=OutboxStatus.FAILED,
                    last_error=failure.error,
                    last_http_status=failure.status,
                )
                result.failed += done
            elif is_dead(row.window_start, now):
                done = repo.finish(
                    row.id,
                    self.worker_id,
                    status=OutboxStatus.DEAD,
                    last_error=failure.error,
                    last_http_status=failure.status,
                )
                result.dead += done
            else:
                delay = retry_delay(row.attempts, retry_after=failure.retry_after, rng=self.rng)
                next_try = now + delay
                done = repo.finish(
                    row.id,
                    self.worker_id,
                    status=OutboxStatus.PENDING,
                    next_attempt_at=next_try,
                    last_error=failure.error,
                    last_http_status=failure.status,
                )
                result.retried += done
            if not done:
                result.lost_lease += 1
        if failure is not None:
            log.info(
                "score %s not delivered: %s",
                row.id,
                failure.kind,
                extra={"reason": failure.kind, "http_status": failure.status, "outcome": outcome},
            )
        return failure, next_try

    def _defer(
        self, row: ScoreOutbox, failure: _Failure, next_try: datetime, result: RunResult
    ) -> None:
        """Not sent: its LMS just failed for another score. The claim's attempt is given
        back; the score waits for the same next try, with the LMS's reason."""
        now = utcnow()
        dead = is_dead(row.window_start, now)
        with self.database.session() as db:
            done = OutboxRepository(db).finish(
                row.id,
                self.worker_id,
                status=OutboxStatus.DEAD if dead else OutboxStatus.PENDING,
                next_attempt_at=next_try,
                attempts=max(row.attempts - 1, 0),
                last_error=failure.error,
                last_http_status=failure.status,
            )
        if not done:
            result.lost_lease += 1
        elif dead:
            result.dead += 1
        else:
            result.deferred += 1
