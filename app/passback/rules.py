"""When to try a score again, and what an answer from the LMS means: plain functions."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from enum import StrEnum

# One rule for Moodle's "strictly later, to the second" timestamps: the AGS client's.
from lti.ags import next_timestamp as next_timestamp

BASE_DELAY = timedelta(seconds=5)
MAX_DELAY = timedelta(hours=1)
# After this long without the LMS accepting it, a score becomes a dead letter for a person
# to look at (the LMS down for a day is survived: three days).
DEAD_AFTER = timedelta(days=3)
LEASE = timedelta(minutes=2)


class Outcome(StrEnum):
    SENT = "sent"
    RETRY = "retry"
    FAILED = "failed"


# ServiceError kinds (lti.services / lti.ags) and what they mean for a score.
OUTCOME_BY_KIND: dict[str, Outcome] = {
    # Moodle answers 409 when it already holds a score with this timestamp or a later one:
    # for a score we sent before (a worker died before recording it) that IS acceptance;
    # every new score gets a strictly later timestamp when it is queued.
    "conflict": Outcome.SENT,
    "rejected": Outcome.FAILED,  # 400/422: e.g. the person is not gradable in the course
    "not_found": Outcome.FAILED,  # the line item is gone
    "forbidden": Outcome.RETRY,  # a setting an administrator can fix (grade sync scope)
    "token_refused": Outcome.RETRY,
    "rate_limited": Outcome.RETRY,
    "unreachable": Outcome.RETRY,
    "bad_response": Outcome.RETRY,
}


def outcome_for(kind: str) -> Outcome:
    return OUTCOME_BY_KIND.get(kind, Outcome.RETRY)


def retry_delay(
    attempts: int, *, retry_after: float | None = None, rng: random.Random | None = None
) -> timedelta:
    """Exponential backoff with full jitter (AWS's "full jitter": uniform in [0, cap]),
    never below half the base, never above MAX_DELAY, and never sooner than the LMS's
    ``Retry-After``."""
    rng = rng or random.Random()  # noqa: S311 - jitter, not security
    cap = min(MAX_DELAY.total_seconds(), BASE_DELAY.total_seconds() * (2 ** max(attempts - 1, 0)))
    delay = max(BASE_DELAY.total_seconds() / 2, rng.uniform(0, cap))
    if retry_after is not None and retry_after > delay:
        delay = min(retry_after, MAX_DELAY.total_seconds() * 6)
    return timedelta(seconds=delay)


def is_dead(created_at: datetime, now: datetime) -> bool:
    return now - created_at > DEAD_AFTER
