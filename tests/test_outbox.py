"""The score outbox: a score owed to the LMS is written with the grade and kept until the
LMS accepts it; several workers never take the same row."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from app.core.errors import ValidationFailed
from app.identity.models import ResourceLink, User
from app.passback.models import OutboxStatus, ScoreOutbox
from app.passback.repository import OutboxRepository
from app.passback.rules import (
    BASE_DELAY,
    MAX_DELAY,
    Outcome,
    next_timestamp,
    outcome_for,
    retry_delay,
)
from app.passback.service import enqueue_score, line_item_belongs
from app.platforms.repository import PlatformRepository

ENDPOINT = {
    "scope": ["https://purl.imsglobal.org/spec/lti-ags/scope/score"],
    "lineitems": "https://lms.test/mod/lti/services.php/2/lineitems?type_id=3",
    "lineitem": "https://lms.test/mod/lti/services.php/2/lineitems/7/lineitem?type_id=3",
}
T0 = datetime(2026, 12, 3, 2, 0, 0, 500_000, tzinfo=UTC)


class TestRetryRules:
    def test_outcomes(self):
        assert outcome_for("conflict") == Outcome.SENT  # Moodle's 409: it already holds it
        assert outcome_for("rejected") == Outcome.FAILED  # not gradable: a person must look
        assert outcome_for("unreachable") == Outcome.RETRY
        assert outcome_for("rate_limited") == Outcome.RETRY
        assert outcome_for("something new") == Outcome.RETRY  # never drop what we don't know

    @given(st.integers(1, 40), st.one_of(st.none(), st.floats(0, 10_000)))
    def test_delay_bounds(self, attempts, retry_after):
        delay = retry_delay(attempts, retry_after=retry_after, rng=random.Random(attempts))
        assert delay >= BASE_DELAY / 2
        assert delay <= MAX_DELAY * 6
        if retry_after is not None:
            assert delay.total_seconds() >= min(retry_after, MAX_DELAY.total_seconds() * 6) - 1e-6

    @given(st.lists(st.integers(-5, 5), min_size=1, max_size=30))
    def test_timestamps_strictly_increase_in_whole_seconds(self, jumps):
        previous = None
        now = T0
        for jump in jumps:
            now += timedelta(seconds=jump)  # clocks may even go back
            stamp = next_timestamp(previous, now)
            assert stamp.microsecond == 0
            if previous is not None:
                assert stamp >= previous + timedelta(seconds=1)
            previous = stamp


class TestLineItemsStayInTheirCourse:
    def test_own_and_container_line_items_only(self):
        assert line_item_belongs(ENDPOINT["lineitem"], ENDPOINT)
        assert line_item_belongs(
            "https://lms.test/mod/lti/services.php/2/lineitems/9/lineitem?type_id=3", ENDPOINT
        )
        # Another course's line items, another host, or no AGS claim at all: refused.
        assert not line_item_belongs(
            "https://lms.test/mod/lti/services.php/3/lineitems/9/lineitem?type_id=3", ENDPOINT
        )
        assert not line_item_belongs(
            "https://evil.test/mod/lti/services.php/2/lineitems/9", ENDPOINT
        )
        assert not line_item_belongs(ENDPOINT["lineitem"], None)


@pytest.fixture()
def link_and_user(db, platform):
    row = PlatformRepository(db).by_issuer_and_client(platform.issuer, platform.client_id)
    deployment_pk = PlatformRepository(db).deployment_pk(row.id, "1")
    link = ResourceLink(
        deployment_id=deployment_pk, resource_link_id="rl-1", ags_endpoint=ENDPOINT, custom={}
    )
    user = User(platform_id=row.id, sub="42", name="An")
    db.add_all([link, user])
    db.flush()
    return deployment_pk, link, user


def _enqueue(db, deployment_pk, link, user, *, now, given="8.5", progress="FullyGraded", url=None):
    return enqueue_score(
        db,
        deployment_id=deployment_pk,
        resource_link=link,
        line_item_url=url or ENDPOINT["lineitem"],
        user=user,
        score_given=Decimal(given) if given is not None else None,
        score_maximum=Decimal(10),
        activity_progress="Completed",
        grading_progress=progress,
        now=now,
    )


class TestEnqueue:
    def test_a_newer_score_supersedes_a_waiting_one_and_is_a_second_later(self, db, link_and_user):
        deployment_pk, link, user = link_and_user
        first = _enqueue(db, deployment_pk, link, user, now=T0)
        second = _enqueue(db, deployment_pk, link, user, now=T0 + timedelta(milliseconds=300))
        db.refresh(first)
        assert first.status == OutboxStatus.SUPERSEDED
        assert second.status == OutboxStatus.PENDING
        assert second.score_timestamp == first.score_timestamp + timedelta(seconds=1)

    def test_score_given_only_when_fully_graded(self, db, link_and_user):
        deployment_pk, link, user = link_and_user
        pending = _enqueue(db, deployment_pk, link, user, now=T0, progress="Pending")
        assert pending.score["scoreGiven"] is None
        final = _enqueue(db, deployment_pk, link, user, now=T0 + timedelta(seconds=5))
        assert final.score["scoreGiven"] == "8.5"

    def test_foreign_line_item_is_refused_and_nothing_is_queued(self, db, link_and_user):
        deployment_pk, link, user = link_and_user
        with pytest.raises(ValidationFailed):
            _enqueue(
                db,
                deployment_pk,
                link,
                user,
                now=T0,
                url="https://lms.test/mod/lti/services.php/99/lineitems/1/lineitem",
            )
        assert db.scalars(select(ScoreOutbox)).all() == []

    def test_out_of_range_score_is_refused(self, db, link_and_user):
        deployment_pk, link, user = link_and_user
        with pytest.raises(ValidationFailed):
            _enqueue(db, deployment_pk, link, user, now=T0, given="11")


class TestClaiming:
    def test_claim_takes_due_rows_once_and_reclaims_after_the_lease(self, db, link_and_user):
        deployment_pk, link, user = link_and_user
        row = _enqueue(db, deployment_pk, link, user, now=T0)
        repo = OutboxRepository(db)
        assert repo.claim("w1", T0, T0 + timedelta(minutes=2), 10) == [row.id]
        # Another worker finds nothing while the lease holds…
        assert repo.claim("w2", T0 + timedelta(seconds=30), T0 + timedelta(minutes=3), 10) == []
        # …and takes it over when the first worker died and its lease ran out.
        later = T0 + timedelta(minutes=5)
        assert repo.claim("w2", later, later + timedelta(minutes=2), 10) == [row.id]
        # The dead worker's late answer is ignored: w2 holds the row now.
        assert repo.finish(row.id, "w1", status=OutboxStatus.SENT) is False
        assert repo.finish(row.id, "w2", status=OutboxStatus.SENT) is True
