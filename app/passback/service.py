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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import requests
from sqlalchemy.orm import Session

from app.core.db import Database
from app.core.errors import ValidationFailed
from app.core.time import utcnow
from app.identity.models import ResourceLink, User
from app.keys.service import KeyService
from app.passback.models import OutboxStatus, ScoreOutbox
from app.passback.repository import OutboxRepository
from app.passback.rules import LEASE, Outcome, is_dead, next_timestamp, outcome_for, retry_delay
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


@dataclass
class RunResult:
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    dead: int = 0
    lost_lease: int = 0
    details: list[str] = field(default_factory=list)


class OutboxWorker:
    """Sends due scores. Run by ``blend727 worker`` and, for small installations, inside
    ``blend727 serve``. Any number of them may run against one PostgreSQL."""

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
    ) -> None:
        self.database = database
        # Work to do before each round (the result sweep: app.grading.service.ResultSweeper).
        self.before_round = before_round
        self.http = http
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self.batch = batch
        self.rng = rng or random.Random()  # noqa: S311 - jitter
        self.token_cache = token_cache

    def run_once(self, now: datetime | None = None) -> RunResult:
        now = now or utcnow()
        if self.before_round is not None:
            self.before_round(now)
        result = RunResult()
        with self.database.session() as db:
            ids = OutboxRepository(db).claim(self.worker_id, now, now + LEASE, self.batch)
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
        for row in rows:
            self._send(row, platforms.get(row.deployment_id), tool_key, result)
        return result

    def _send(self, row: ScoreOutbox, platform: Any, tool_key: Any, result: RunResult) -> None:
        from lti.ags import ScoreToSend, post_score
        from lti.services import ServiceError

        kind: str | None = None
        retry_after: float | None = None
        status_code: int | None = None
        detail = ""
        if platform is None or not platform.active:
            kind, detail = "forbidden", "platform disabled or removed"
        else:
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
                kind = exc.kind
                status_code = exc.status
                detail = str(getattr(exc, "platform_message", None) or exc.detail or exc.kind)
                retry_after = getattr(exc, "retry_after", None)
            except Exception as exc:
                log.exception("unexpected error sending score %s", row.id)
                kind, detail = "unreachable", f"{type(exc).__name__}: {exc}"
        now = utcnow()
        outcome = Outcome.SENT if kind is None else outcome_for(kind)
        with self.database.session() as db:
            repo = OutboxRepository(db)
            if outcome == Outcome.SENT:
                done = repo.finish(
                    row.id,
                    self.worker_id,
                    status=OutboxStatus.SENT,
                    sent_at=now,
                    last_error=None if kind is None else f"{kind}: {detail}",
                    last_http_status=status_code,
                )
                result.sent += done
            elif outcome == Outcome.FAILED:
                done = repo.finish(
                    row.id,
                    self.worker_id,
                    status=OutboxStatus.FAILED,
                    last_error=f"{kind}: {detail}"[:2000],
                    last_http_status=status_code,
                )
                result.failed += done
            elif is_dead(row.window_start, now):
                done = repo.finish(
                    row.id,
                    self.worker_id,
                    status=OutboxStatus.DEAD,
                    last_error=f"{kind}: {detail}"[:2000],
                    last_http_status=status_code,
                )
                result.dead += done
            else:
                delay = retry_delay(row.attempts, retry_after=retry_after, rng=self.rng)
                done = repo.finish(
                    row.id,
                    self.worker_id,
                    status=OutboxStatus.PENDING,
                    next_attempt_at=now + delay,
                    last_error=f"{kind}: {detail}"[:2000],
                    last_http_status=status_code,
                )
                result.retried += done
            if not done:
                result.lost_lease += 1
