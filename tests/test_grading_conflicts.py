"""Two trainers grading the same hand-in: never a silent lost update.

A grade form carries the grade it was based on (``expected_grade_id``: the newest grade's id,
or ``none``); when someone else graded meanwhile the second save is refused with 409, names
who gave which grade when, and shows the form again on the new base so the trainer can
replace it knowingly. History stays append-only. The JSON API does the same with
``expected_grade_id`` or ``If-Match: "grade-<id>"``. (Real simultaneous saves on PostgreSQL:
``tests/test_concurrency.py``.)
"""

from __future__ import annotations

import re

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.learning.models import SubmissionGrade
from tests.test_learning import (  # noqa: F401 - fixtures of the learning world
    Person,
    World,
    _handed_in,
    fake_clock,
    history,
    settings,
    vn,
)
from tests.test_learning import world as world  # the fixture


def grades(db: Session) -> int:
    return int(db.scalar(select(func.count()).select_from(SubmissionGrade)) or 0)


def base_of(page: str) -> str:
    found = re.search(r'name="expected_grade_id" value="([^"]+)"', page)
    assert found, "the grade form carries no base"
    return found.group(1)


def post(p: Person, url: str, score: str, feedback: str, base: str, **extra: str):
    data = {"csrf_token": p.csrf, "score": score, "feedback": feedback, "expected_grade_id": base}
    return p.device.post(url, data=data | extra)


class TestTwoTrainersOnTheGradingPage:
    def test_the_later_save_is_refused_showing_both_then_confirmed(
        self, world: World, db: Session
    ) -> None:
        w = world
        hv1 = w.learners[0]
        e1 = w.enrolment(hv1)
        w.clock.set(vn(6))
        (sub,) = _handed_in(w, hv1, "Bản cuối")
        url = f"/grading/submissions/{sub}/grade"
        # Both open the learner's page while the hand-in has no grade.
        trainer_base = base_of(w.trainer.device.get(f"/grading/enrolments/{e1}").text)
        admin_base = base_of(w.admin.device.get(f"/grading/enrolments/{e1}").text)
        assert trainer_base == admin_base == "none"

        w.clock.set(vn(8, 14))
        assert post(w.admin, url, "8", "Tốt", admin_base).status_code == 303
        w.clock.set(vn(8, 20))
        refused = post(w.trainer, url, "7,5", "Cần thêm hoạt động", trainer_base)
        assert refused.status_code == 409
        page = refused.text
        assert "Lê Quản Trị" in page and "14:00 08/12/2026" in page
        assert "8,00" in page and "7,50" in page and "Cần thêm hoạt động" in page
        assert grades(db) == 1  # nothing of the refused save was kept
        new_base = base_of(page)
        assert new_base != "none"
        assert f'action="{url}"' in page

        # The trainer compares and keeps theirs: saved on the new base, both stay in history.
        confirmed = post(w.trainer, url, "7,5", "Cần thêm hoạt động", new_base)
        assert confirmed.status_code == 303
        assert grades(db) == 2
        changes = history(w.trainer, e1)
        assert [(c["old"], c["new"], c["by"]) for c in changes] == [
            ("8.00", "7.50", "Trần Cốt Cán"),
            (None, "8.00", "Lê Quản Trị"),
        ]
        # The page now carries the newest grade as the base for the next change.
        assert base_of(w.admin.device.get(f"/grading/enrolments/{e1}").text) != new_base

    def test_the_cohort_dashboard_form_is_checked_too(self, world: World, db: Session) -> None:
        w = world
        hv1 = w.learners[0]
        w.clock.set(vn(6))
        (sub,) = _handed_in(w, hv1, "Bản cuối")
        detail = w.admin.device.get(f"/api/v1/classes/{w.cls}").json()
        cohort = next(c["id"] for c in detail["cohorts"] if c["trainer_user_id"] == w.trainer.id)
        w.clock.set(vn(8, 14))
        assert (
            post(w.admin, f"/grading/submissions/{sub}/grade", "9", "", "none").status_code == 303
        )
        url = f"/cohorts/{cohort}/submissions/{sub}/grade"
        refused = post(w.trainer, url, "5", "", "none", sort="name", flag="to_grade")
        assert refused.status_code == 409
        assert f'action="{url}"' in refused.text and "9,00" in refused.text
        assert 'name="flag" value="to_grade"' in refused.text  # the dashboard view is kept
        assert grades(db) == 1
        again = post(w.trainer, url, "5", "", base_of(refused.text), sort="name")
        assert again.status_code == 303 and grades(db) == 2


class TestTwoTrainersThroughTheApi:
    def test_409_names_the_current_grade_and_if_match_replaces_it(
        self, world: World, db: Session
    ) -> None:
        w = world
        hv1 = w.learners[0]
        w.clock.set(vn(6))
        (sub,) = _handed_in(w, hv1, "Bản cuối")
        url = f"/api/v1/grading/submissions/{sub}/grade"
        w.clock.set(vn(8, 14))
        first = w.admin.device.post(url, json={"score": 8, "expected_grade_id": "none"})
        assert first.status_code == 200, first.text
        grade_id = first.json()["grade"]["id"]
        assert first.headers["etag"] == f'"grade-{grade_id}"'

        for stale in (
            {"json": {"score": 6, "expected_grade_id": None}},
            {"json": {"score": 6}, "headers": {"If-Match": '"grade-none"'}},
        ):
            refused = w.trainer.device.post(url, **stale)
            assert refused.status_code == 409
            assert refused.headers["content-type"].startswith("application/problem+json")
            problem = refused.json()
            assert problem["code"] == "grade_changed"
            assert problem["current_grade"]["id"] == grade_id
            assert problem["current_grade"]["score"] == "8.00"
            assert problem["current_grade"]["graded_by"] == "Lê Quản Trị"
            assert problem["your_grade"]["score"] == "6.00"
        assert grades(db) == 1

        replaced = w.trainer.device.post(
            url, json={"score": 6}, headers={"If-Match": first.headers["etag"]}
        )
        assert replaced.status_code == 200 and grades(db) == 2
        bad = w.trainer.device.post(url, json={"score": 7, "expected_grade_id": "latest"})
        assert bad.status_code == 422
        # Without a base nothing is checked (documented): the newest word wins.
        assert w.admin.device.post(url, json={"score": 9}).status_code == 200
