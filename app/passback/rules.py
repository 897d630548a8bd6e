"""When to try a score again, and what an answer from the LMS means: plain functions."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from enum import StrEnum

# One rule for Moodle's "strictly later, to the second" timestamps: the AGS client's.
from lti.ags import next_timestamp as next_timestamp

BASE_DELAY = timedelta(seconds=5)
MAX_DELAY = timedelta(hours=1)
# A Retry-After is honoured up to this (an LMS asking for a week is asking for too much).
MAX_RETRY_AFTER = timedelta(hours=6)
# After this long without the LMS accepting it, a score becomes a dead letter for a person
# to look at (the LMS down for a day is survived: three days).
DEAD_AFTER = timedelta(days=3)
LEASE = timedelta(minutes=2)
# A refusal (400/422 "not gradable", 404 "column gone") is tried this many times in all
# before the score goes on the failed list: a proxy's passing 404 during an LMS upgrade must
# not fail a grade, a real refusal must not be retried for three days.
REFUSALS_BEFORE_FAILED = 3


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


def outcome_for(kind: str, attempts: int | None = None) -> Outcome:
    """What an answer means for a score on its ``attempts``-th try (``None``: the kind alone).
    A refusal stays a retry until ``REFUSALS_BEFORE_FAILED`` tries."""
    outcome = OUTCOME_BY_KIND.get(kind, Outcome.RETRY)
    if outcome == Outcome.FAILED and attempts is not None and attempts < REFUSALS_BEFORE_FAILED:
        return Outcome.RETRY
    return outcome


#: 5xx statuses of a gateway or a site in maintenance: the whole LMS is out, not one score.
GATEWAY_STATUSES = frozenset({502, 503, 504})


def platform_wide(kind: str, status: int | None, *, at_token_endpoint: bool = False) -> bool:
    """Whether an answer says every score for this LMS would fare the same just now: no
    answer at all (connection refused, timeout), a gateway or maintenance page, a rate
    limit, a refused token or access. The worker then stops sending to that LMS for the
    round and the other scores wait with the same next try (one request to a down LMS per
    round, not one per score; a Retry-After applies to them all)."""
    if at_token_endpoint or kind in ("rate_limited", "token_refused", "forbidden"):
        return True
    return kind == "unreachable" and (status is None or status in GATEWAY_STATUSES)


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
        delay = min(retry_after, MAX_RETRY_AFTER.total_seconds())
    return timedelta(seconds=delay)


def is_dead(created_at: datetime, now: datetime) -> bool:
    return now - created_at > DEAD_AFTER


# -- what an administrator reads -------------------------------------------------------------


def _(message: str) -> str:
    """Marks an English message id for extraction; translated where it is shown."""
    return message


REASONS: dict[str, str] = {
    "timeout": _("The LMS did not answer in time."),
    "no_connection": _("The LMS could not be reached (no connection)."),
    "server_error": _("The LMS had an error of its own (HTTP %(status)s)."),
    "rate_limited": _("The LMS asked blend727 to send more slowly (HTTP 429)."),
    "token_down": _(
        "The LMS's token service is not answering (HTTP %(status)s): blend727 cannot sign in "
        "to send grades."
    ),
    "token_refused": _(
        "The LMS refused blend727's credentials (HTTP %(status)s): check the tool's client ID "
        "and keys in the LMS."
    ),
    "forbidden": _(
        "The LMS refused access to its gradebook (HTTP %(status)s): check that the tool may "
        "send grades (grade sync) in the LMS."
    ),
    "not_found": _("The gradebook column is gone from the LMS (HTTP %(status)s)."),
    "rejected": _("The LMS refused this score (HTTP %(status)s)."),
    "bad_response": _(
        "The LMS answered with something that is not a gradebook answer (a web page or broken "
        "data)."
    ),
    "conflict": _("The LMS already held this score, or a newer one."),
    "platform_off": _("This LMS's registration is disabled or removed in blend727."),
    "unknown": _("Sending failed for a reason blend727 does not know."),
}


def split_error(last_error: str | None) -> tuple[str | None, str]:
    """``"kind: detail"`` as stored in ``score_outbox.last_error`` → ``(kind, detail)``."""
    if not last_error:
        return None, ""
    kind, sep, detail = last_error.partition(": ")
    if not sep or not kind.replace("_", "").isalpha():
        return None, last_error
    return kind, detail


def reason_code(last_error: str | None, status: int | None) -> str | None:
    """Which of ``REASONS`` explains a stored error (``None``: there is none)."""
    kind, detail = split_error(last_error)
    if kind is None:
        return "unknown" if last_error else None
    if kind == "forbidden" and "platform disabled" in detail:
        return "platform_off"
    if kind == "unreachable":
        token = detail.startswith("token endpoint")
        if status is None:
            return "timeout" if "Timeout" in detail else "no_connection"
        if status == 429:
            return "rate_limited"
        return "token_down" if token else "server_error"
    if kind == "rate_limited":
        return "rate_limited"
    if kind in REASONS:
        return kind
    return "unknown"
