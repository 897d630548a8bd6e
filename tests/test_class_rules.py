"""Cohort splitting and compliance rules, as plain functions (no HTTP, no database)."""

from __future__ import annotations

from collections import Counter
from datetime import date
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from app.classes.rules import (
    ClassFacts,
    CohortFacts,
    LearnerRef,
    Status,
    cohort_sizes,
    evaluate,
    plan_cohorts,
)

learners_st = st.lists(
    st.builds(
        LearnerRef,
        id=st.integers(1, 10_000),
        school=st.one_of(st.none(), st.sampled_from([f"Trường {i}" for i in range(12)])),
    ),
    max_size=400,
    unique_by=lambda lr: lr.id,
)


class TestCohortSplitting:
    @given(learners=learners_st, trainers=st.integers(0, 10))
    def test_every_learner_once_balanced_and_within_fifty(self, learners, trainers):
        plans = plan_cohorts(learners, list(range(1, trainers + 1)))
        assigned = [i for p in plans for i in p.learner_ids]
        assert sorted(assigned) == sorted(lr.id for lr in learners)
        sizes = [len(p.learner_ids) for p in plans]
        assert max(sizes) <= 50
        assert max(sizes) - min(sizes) <= 1
        assert len(plans) >= trainers
        assert [p.trainer_id for p in plans[:trainers]] == list(range(1, trainers + 1))

    def test_schools_stay_together_when_sizes_allow(self):
        learners = [
            LearnerRef(i, school)
            for school, start in (("A", 0), ("B", 100), ("C", 200))
            for i in range(start, start + 40)
        ]
        plans = plan_cohorts(learners, [1, 2, 3])
        schools_per_cohort = [
            {next(lr.school for lr in learners if lr.id == i) for i in p.learner_ids} for p in plans
        ]
        assert all(len(s) == 1 for s in schools_per_cohort)

    def test_a_big_school_is_split_and_small_ones_kept_whole(self):
        learners = [LearnerRef(i, "Big") for i in range(70)] + [
            LearnerRef(100 + i, "Small") for i in range(20)
        ]
        plans = plan_cohorts(learners, [1, 2])
        small_cohorts = {idx for idx, p in enumerate(plans) for i in p.learner_ids if i >= 100}
        assert len(small_cohorts) == 1
        assert sorted(len(p.learner_ids) for p in plans) == [45, 45]

    def test_more_learners_than_trainers_can_take_adds_trainerless_cohorts(self):
        plans = plan_cohorts([LearnerRef(i) for i in range(120)], [7])
        assert [len(p.learner_ids) for p in plans] == [40, 40, 40]
        assert [p.trainer_id for p in plans] == [7, None, None]

    def test_sizes(self):
        assert cohort_sizes(150, 3) == [50, 50, 50]
        assert cohort_sizes(151, 3) == [38, 38, 38, 37]
        assert cohort_sizes(0, 2) == [0, 0]


def facts(**overrides):
    base = dict(
        class_name="Lớp M4-01",
        programme="etep-7-2-7",
        capacity=150,
        enrolled=100,
        self_study_periods=20,
        in_person_periods=16,
        follow_up_periods=14,
        cohorts=(
            CohortFacts("Nhóm 1", 50, True, Decimal(40)),
            CohortFacts("Nhóm 2", 50, True, Decimal("41.5")),
        ),
        unassigned=0,
        ends_on=date(2026, 12, 20),
        today=date(2026, 12, 1),
    )
    base.update(overrides)
    return ClassFacts(**base)


def status_of(results, code):
    return next(r.status for r in results if r.code == code)


class TestComplianceRules:
    def test_a_good_class_passes_everything(self):
        assert {r.status for r in evaluate(facts())} == {Status.PASS}

    def test_class_over_cap(self):
        assert status_of(evaluate(facts(enrolled=151, capacity=150)), "class_size") == Status.FAIL
        assert status_of(evaluate(facts(enrolled=120, capacity=100)), "class_size") == Status.FAIL
        # A class configured above 150 is still held to 150.
        assert status_of(evaluate(facts(enrolled=151, capacity=200)), "class_size") == Status.FAIL

    def test_in_person_share_is_exact_and_strict(self):
        hcmc = {"programme": "hcmc-digital-skills"}
        exactly_half = facts(
            self_study_periods=10, in_person_periods=20, follow_up_periods=10, **hcmc
        )
        assert status_of(evaluate(exactly_half), "in_person_share") == Status.FAIL
        just_over = facts(self_study_periods=10, in_person_periods=21, follow_up_periods=10, **hcmc)
        assert status_of(evaluate(just_over), "in_person_share") == Status.PASS
        # ETEP 7-2-7 has no share rule: 32% passes there.
        result = next(r for r in evaluate(facts()) if r.code == "in_person_share")
        assert result.status == Status.PASS
        assert result.params["percent"] == "32.0"

    @given(st.integers(0, 200), st.integers(0, 200), st.integers(0, 200))
    def test_share_rule_matches_arithmetic(self, a, b, c):
        result = evaluate(
            facts(
                programme="hcmc-digital-skills",
                self_study_periods=a,
                in_person_periods=b,
                follow_up_periods=c,
            )
        )
        expected = Status.PASS if (a + b + c) and 2 * b > a + b + c else Status.FAIL
        assert status_of(result, "in_person_share") == expected

    def test_cohorts_over_fifty_or_without_trainer(self):
        bad = facts(
            cohorts=(
                CohortFacts("Nhóm 1", 51, True, Decimal(40)),
                CohortFacts("Nhóm 2", 49, False, Decimal(0)),
            )
        )
        results = evaluate(bad)
        assert status_of(results, "cohort_size") == Status.FAIL
        assert status_of(results, "cohort_trainer") == Status.FAIL
        detail = next(r for r in results if r.code == "cohort_trainer").params["names"]
        assert detail == "Nhóm 2"

    def test_support_periods_pending_until_the_end_then_fail(self):
        short = (CohortFacts("Nhóm 1", 50, True, Decimal("39.5")),)
        assert status_of(evaluate(facts(cohorts=short)), "support_periods") == Status.PENDING
        after = facts(cohorts=short, today=date(2026, 12, 21))
        assert status_of(evaluate(after), "support_periods") == Status.FAIL

    def test_learners_outside_any_cohort(self):
        assert status_of(evaluate(facts(unassigned=3)), "all_assigned") == Status.FAIL
        no_cohorts = facts(cohorts=(), enrolled=10)
        assert status_of(evaluate(no_cohorts), "cohort_trainer") == Status.FAIL

    def test_counts_in_the_details(self):
        result = next(r for r in evaluate(facts(enrolled=151)) if r.code == "class_size")
        assert result.params == {"cap": 150, "enrolled": 151}
        assert Counter(r.code for r in evaluate(facts())) == Counter(
            [
                "class_size",
                "in_person_share",
                "cohort_size",
                "cohort_trainer",
                "all_assigned",
                "support_periods",
            ]
        )

    def test_fallback_is_reported_with_its_date_and_reason(self):
        results = evaluate(
            facts(
                virtual_fallback=True,
                fallback_reason="Bão số 9",
                fallback_decided_on=date(2026, 11, 30),
            )
        )
        info = next(r for r in results if r.code == "virtual_fallback")
        assert info.status == Status.PASS
        assert info.params == {"date": "30/11/2026", "reason": "Bão số 9"}
