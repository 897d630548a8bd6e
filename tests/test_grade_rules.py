"""Module results on their own: component scores in, Circular 19 classification out."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, getcontext, localcontext

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from app.core.errors import ValidationFailed
from app.grading.rules import (
    MAX_REASON_CHARS,
    MESSAGES,
    MOODLE_ATTENDANCE_POINTS,
    AttendancePoints,
    Components,
    GradeError,
    GradePolicy,
    ModuleResult,
    Tier,
    Weights,
    apply_override,
    attendance_score,
    compute_result,
    follow_up_score,
    grading_progress,
    round_score,
    self_study_score,
    to_ags_score,
)
from modules.catalogue import AssessmentSpec, load_shipped

D = Decimal
AT = datetime(2025, 3, 14, 9, 30, tzinfo=UTC)
WEIGHTS = Weights(D("0.3"), D("0.2"), D("0.5"))
POLICY = GradePolicy(WEIGHTS)
TIERS = (
    Tier("kha", "Khá", "Good", D("7")),
    Tier("gioi", "Giỏi", "Very good", D("8.5")),
)
TIERED = GradePolicy(WEIGHTS, tiers=TIERS)


def comps(self_study: str | None, attendance: str | None, follow_up: str | None) -> Components:
    return Components(*(None if v is None else D(v) for v in (self_study, attendance, follow_up)))


def result_of(self_study: str, attendance: str, follow_up: str, policy=POLICY) -> ModuleResult:
    return compute_result(comps(self_study, attendance, follow_up), policy)


def codes(result: ModuleResult) -> list[str]:
    return [r.code for r in result.reasons]


# -- attendance ----------------------------------------------------------------------------


class TestAttendanceScore:
    """Moodle Attendance defaults: present 2, late 1, excused 1, absent 0."""

    def test_present_at_every_session_is_ten(self) -> None:
        marks = ["present"] * 4
        assert attendance_score(marks, MOODLE_ATTENDANCE_POINTS, 4) == D("10.00")

    def test_each_status_earns_its_points(self) -> None:
        # 2 + 1 + 1 + 0 = 4 of 8 possible points
        marks = ["present", "late", "excused", "absent"]
        assert attendance_score(marks, MOODLE_ATTENDANCE_POINTS, 4) == D("5.00")

    def test_sessions_not_held_yet_count_against_the_score(self) -> None:
        # Two of four sessions held, present at both: 4 of 8 points, not 10.
        assert attendance_score(["present", "present"], MOODLE_ATTENDANCE_POINTS, 4) == D("5.00")

    def test_an_unmarked_session_is_worth_nothing_but_counts(self) -> None:
        marks = ["present", None, "late"]
        assert attendance_score(marks, MOODLE_ATTENDANCE_POINTS, 4) == D("3.75")

    def test_no_session_held_yet_is_zero(self) -> None:
        assert attendance_score([], MOODLE_ATTENDANCE_POINTS, 4) == D("0.00")

    def test_the_module_sets_the_points(self) -> None:
        strict = AttendancePoints(D(1), D("0.5"), D(0), D(0))
        marks = ["present", "late", "excused", "absent"]
        assert attendance_score(marks, strict, 4) == D("3.75")

    def test_a_class_without_sessions_cannot_be_scored(self) -> None:
        with pytest.raises(GradeError) as err:
            attendance_score([], MOODLE_ATTENDANCE_POINTS, 0)
        assert err.value.code == "no_sessions"
        assert err.value.params["field"] == "total_sessions"

    def test_more_marks_than_sessions_is_refused(self) -> None:
        with pytest.raises(GradeError) as err:
            attendance_score(["present"] * 5, MOODLE_ATTENDANCE_POINTS, 4)
        assert err.value.code == "too_many_marks"
        assert err.value.params == {"field": "total_sessions", "marks": 5, "sessions": 4}

    @pytest.mark.parametrize("mark", ["Present", "P", "", "sick"])
    def test_unknown_marks_are_refused(self, mark: str) -> None:
        with pytest.raises(GradeError) as err:
            attendance_score(["present", mark], MOODLE_ATTENDANCE_POINTS, 4)
        assert err.value.code == "unknown_mark"
        assert err.value.params["mark"] == mark

    def test_the_error_is_a_422_with_a_message_id(self) -> None:
        with pytest.raises(ValidationFailed) as err:
            attendance_score([], MOODLE_ATTENDANCE_POINTS, 0)
        assert err.value.status_code == 422
        assert err.value.detail == MESSAGES["no_sessions"]

    @pytest.mark.parametrize(
        "points",
        [
            (0, 0, 0, 0),  # present must be worth something
            (2, 3, 1, 0),  # late above present
            (2, 1, -1, 0),  # negative
        ],
    )
    def test_points_are_validated(self, points: tuple[int, ...]) -> None:
        with pytest.raises(GradeError) as err:
            AttendancePoints(*(D(p) for p in points))
        assert err.value.code == "points_invalid"

    @given(
        marks=st.lists(st.sampled_from(["present", "late", "excused", "absent", None])),
        unheld=st.integers(0, 20),
    )
    def test_between_zero_and_ten_and_unheld_sessions_never_help(
        self, marks: list[str | None], unheld: int
    ) -> None:
        assume(marks or unheld)
        total = len(marks) + unheld
        score = attendance_score(marks, MOODLE_ATTENDANCE_POINTS, total)
        assert D(0) <= score <= D(10)
        assert score == score.quantize(D("0.01"))
        assert attendance_score(marks, MOODLE_ATTENDANCE_POINTS, total + 1) <= score


class TestSelfStudyAndFollowUp:
    def test_self_study_is_the_share_of_items_done(self) -> None:
        assert self_study_score(7, 10) == D("7.00")
        assert self_study_score(2, 3) == D("6.67")
        assert self_study_score(0, 4) == D("0.00")

    def test_a_phase_without_items_cannot_be_scored(self) -> None:
        assert self_study_score(0, 0) is None

    @pytest.mark.parametrize(("done", "total"), [(-1, 4), (5, 4), (0, -1), (1, 0)])
    def test_impossible_counts_are_refused(self, done: int, total: int) -> None:
        with pytest.raises(GradeError) as err:
            self_study_score(done, total)
        assert err.value.code == "items_invalid"

    def test_follow_up_grade_passes_through(self) -> None:
        assert follow_up_score(D("7.25")) == D("7.25")
        assert follow_up_score(D(10)) == D("10.00")
        assert follow_up_score(None) is None

    @pytest.mark.parametrize("grade", [D("-0.01"), D("10.01"), D("NaN"), D("Infinity")])
    def test_follow_up_grade_outside_zero_to_ten_is_refused(self, grade: Decimal) -> None:
        with pytest.raises(GradeError) as err:
            follow_up_score(grade)
        assert err.value.code == "score_range"
        assert err.value.params["field"] == "follow_up"

    def test_floats_are_refused_everywhere(self) -> None:
        with pytest.raises(TypeError):
            follow_up_score(7.5)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            Components(7.5, None, None)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            Weights(0.3, 0.2, 0.5)  # type: ignore[arg-type]


# -- rounding ------------------------------------------------------------------------------


class TestRounding:
    """Half-up to 2 decimals, everywhere, whatever the caller's decimal context."""

    def test_half_up_not_bankers(self) -> None:
        assert round_score(D("0.625")) == D("0.63")
        assert round_score(D("8.335")) == D("8.34")
        assert round_score(D("8.345")) == D("8.35")
        assert round_score(D("8.3349")) == D("8.33")

    def test_attendance_tie_rounds_up(self) -> None:
        # 1 point of 16 possible: 0.625
        assert attendance_score(["late"], MOODLE_ATTENDANCE_POINTS, 8) == D("0.63")

    def test_three_sessions_read_to_two_decimals(self) -> None:
        marks = ["present", "present", "late"]
        assert attendance_score(marks, MOODLE_ATTENDANCE_POINTS, 3) == D("8.33")

    def test_weighted_tie_rounds_up(self) -> None:
        halves = GradePolicy(Weights(D("0.5"), D("0.5"), D(0)))
        result = compute_result(comps("7.25", "7", None), halves)
        assert result.score == D("7.13")  # 7.125; banker's rounding would give 7.12
        assert str(result.score) == "7.13"

    def test_components_are_rounded_before_they_are_judged(self) -> None:
        # The figure shown is the figure judged: 4.995 is shown as 5.00 and passes.
        shown_five = compute_result(comps("8", "4.995", "8"), POLICY)
        assert shown_five.components.attendance == D("5.00")
        assert shown_five.classification == "complete"
        shown_below = compute_result(comps("8", "4.994", "8"), POLICY)
        assert shown_below.components.attendance == D("4.99")
        assert shown_below.classification == "not_complete"

    def test_the_callers_context_does_not_matter(self) -> None:
        with localcontext() as ctx:
            ctx.prec = 3
            ctx.rounding = "ROUND_DOWN"
            assert attendance_score(["present"] * 2, MOODLE_ATTENDANCE_POINTS, 3) == D("6.67")
            assert result_of("6.67", "6.67", "6.67").score == D("6.67")
        assert getcontext().prec == 28

    def test_scores_always_have_two_decimals(self) -> None:
        result = result_of("10", "10", "10")
        assert str(result.score) == "10.00"
        assert str(result.components.self_study) == "10.00"


# -- classification (Circular 19/2019/TT-BGDĐT) --------------------------------------------


class TestCircular19:
    def test_every_component_at_five_completes(self) -> None:
        result = result_of("5", "5", "5")
        assert result.classification == "complete"
        assert result.score == D("5.00")
        assert result.final
        assert codes(result) == ["all_pass"]

    def test_one_component_at_four_ninety_nine_does_not_complete(self) -> None:
        for at in range(3):
            scores = ["5", "5", "5"]
            scores[at] = "4.99"
            result = result_of(*scores)
            assert result.classification == "not_complete", scores
            assert result.final

    def test_a_high_average_with_one_component_below_five_is_not_complete(self) -> None:
        # Weighted 0.3 × 10 + 0.2 × 4 + 0.5 × 10 = 8.8; equal weights give 8.0.
        result = result_of("10", "4", "10")
        assert result.score == D("8.80")
        assert result.classification == "not_complete"
        assert codes(result) == ["below_attendance"]
        assert result.reasons[0].params == {"score": D("4.00"), "threshold": D(5)}
        # An overall score of exactly 9 does not make up for attendance at 4.
        average_nine = GradePolicy(Weights(D("0.4"), D("0.1"), D("0.5")))
        result = compute_result(comps("9.5", "4", "9.6"), average_nine)
        assert result.score == D("9.00")
        assert result.classification == "not_complete"
        assert not average_nine.completes(result.classification)

    def test_the_weighted_score_is_the_sum_of_weights_times_components(self) -> None:
        # 0.3 × 6 + 0.2 × 7.5 + 0.5 × 8 = 1.8 + 1.5 + 4 = 7.3
        assert result_of("6", "7.5", "8").score == D("7.30")

    def test_every_component_below_is_given_as_a_reason(self) -> None:
        result = result_of("4", "3", "9")
        assert codes(result) == ["below_self_study", "below_attendance"]
        assert all(r.message == MESSAGES[r.code] for r in result.reasons)

    def test_a_missing_component_leaves_the_result_incomplete(self) -> None:
        result = compute_result(comps("8", "9", None), POLICY)
        assert result.classification == "incomplete"
        assert result.score is None
        assert not result.final
        assert codes(result) == ["missing_follow_up"]

    def test_incomplete_wins_over_not_complete_while_a_score_is_missing(self) -> None:
        result = compute_result(comps("2", "9", None), POLICY)
        assert result.classification == "incomplete"
        assert codes(result) == ["below_self_study", "missing_follow_up"]

    def test_a_component_the_module_does_not_weigh_is_not_assessed(self) -> None:
        # A 0-2-7 plan: no self-study phase, no self-study items, weight 0.
        policy = GradePolicy(Weights(D(0), D("0.4"), D("0.6")))
        result = compute_result(comps(None, "8", "7"), policy)
        assert result.classification == "complete"
        assert result.score == D("7.40")
        assert codes(result) == ["not_assessed_self_study", "all_pass"]
        # …and a low score there does not block completion either.
        assert compute_result(comps("1", "8", "7"), policy).classification == "complete"

    def test_the_pass_mark_is_the_modules(self) -> None:
        strict = GradePolicy(WEIGHTS, pass_threshold=D(6))
        assert compute_result(comps("5.99", "9", "9"), strict).classification == "not_complete"
        assert compute_result(comps("6", "9", "9"), strict).classification == "complete"


class TestTiers:
    def test_complete_below_the_first_tier(self) -> None:
        assert result_of("6.99", "6.99", "6.99", TIERED).classification == "complete"

    def test_exactly_the_min_score_reaches_the_tier(self) -> None:
        result = result_of("7", "7", "7", TIERED)
        assert result.classification == "kha"
        assert codes(result) == ["all_pass", "tier_reached"]
        assert result.reasons[-1].params == {"score": D("7.00"), "min_score": D(7), "tier": "kha"}

    def test_the_highest_tier_reached_wins(self) -> None:
        assert result_of("8.5", "8.5", "8.5", TIERED).classification == "gioi"
        assert result_of("10", "10", "10", TIERED).classification == "gioi"
        assert result_of("8.4", "8.5", "8.5", TIERED).classification == "kha"  # 8.47

    def test_the_rounded_overall_score_is_compared(self) -> None:
        # 0.3 × 8.48 + 0.2 × 8.5 + 0.5 × 8.5 = 8.494 → 8.49: below "gioi".
        assert result_of("8.48", "8.5", "8.5", TIERED).score == D("8.49")
        # 0.3 × 8.49 + … = 8.497 → 8.50: reaches it.
        result = result_of("8.49", "8.5", "8.5", TIERED)
        assert result.score == D("8.50")
        assert result.classification == "gioi"

    def test_no_tier_without_completion(self) -> None:
        result = result_of("10", "4", "10", TIERED)  # score 8.8
        assert result.classification == "not_complete"

    def test_a_tier_at_the_pass_mark_replaces_complete(self) -> None:
        policy = GradePolicy(WEIGHTS, tiers=(Tier("dat", "Đạt", None, D(5)),))
        assert result_of("5", "5", "5", policy).classification == "dat"

    def test_the_policy_lists_its_classifications(self) -> None:
        assert TIERED.classifications == ("incomplete", "not_complete", "complete", "kha", "gioi")
        assert TIERED.completes("gioi") and TIERED.completes("complete")
        assert not TIERED.completes("not_complete") and not TIERED.completes("incomplete")


class TestPolicyValidation:
    def test_weights_must_sum_to_one(self) -> None:
        with pytest.raises(GradeError) as err:
            Weights(D("0.3"), D("0.3"), D("0.5"))
        assert err.value.code == "weights_sum"
        assert err.value.params["total"] == D("1.1")

    def test_weights_within_a_millionth_of_one_are_accepted_and_normalised(self) -> None:
        third = D("0.3333333")
        policy = GradePolicy(Weights(third, third, third))
        assert result_of("10", "10", "10", policy).score == D("10.00")
        assert result_of("6", "7", "8", policy).score == D("7.00")

    def test_weights_must_not_be_negative(self) -> None:
        with pytest.raises(GradeError) as err:
            Weights(D("-0.1"), D("0.6"), D("0.5"))
        assert err.value.code == "weights_negative"
        assert err.value.params["field"] == "self_study"

    def test_tiers_must_be_ordered(self) -> None:
        with pytest.raises(GradeError) as err:
            GradePolicy(WEIGHTS, tiers=tuple(reversed(TIERS)))
        assert err.value.code == "tier_order"

    def test_tiers_must_not_start_at_the_same_score(self) -> None:
        with pytest.raises(GradeError) as err:
            GradePolicy(WEIGHTS, tiers=(Tier("a", "A", None, D(7)), Tier("b", "B", None, D(7))))
        assert err.value.code == "tier_order"

    def test_tiers_start_at_or_above_the_pass_mark(self) -> None:
        with pytest.raises(GradeError) as err:
            GradePolicy(WEIGHTS, tiers=(Tier("thap", "Thấp", None, D("4.5")),))
        assert err.value.code == "tier_below_pass"

    def test_tier_codes_are_unique_and_not_reserved(self) -> None:
        with pytest.raises(GradeError) as err:
            GradePolicy(WEIGHTS, tiers=(Tier("a", "A", None, D(7)), Tier("a", "A", None, D(8))))
        assert err.value.code == "tier_code_repeated"
        for reserved in ("complete", "not_complete", "incomplete"):
            with pytest.raises(GradeError):
                Tier(reserved, "X", None, D(7))

    @pytest.mark.parametrize("code", ["Kha", "kha gioi", "", "-kha"])
    def test_tier_codes_are_slugs(self, code: str) -> None:
        with pytest.raises(GradeError) as err:
            Tier(code, "Khá", None, D(7))
        assert err.value.code == "tier_code"

    def test_tier_needs_a_vietnamese_name_and_a_score_in_range(self) -> None:
        with pytest.raises(GradeError):
            Tier("kha", "  ", "Good", D(7))
        with pytest.raises(GradeError):
            Tier("kha", "Khá", "Good", D(11))

    def test_pass_threshold_is_on_the_ten_point_scale(self) -> None:
        with pytest.raises(GradeError) as err:
            GradePolicy(WEIGHTS, pass_threshold=D(11))
        assert err.value.code == "score_range"

    def test_policies_come_from_the_catalogue(self) -> None:
        for spec in load_shipped():
            policy = GradePolicy.from_assessment(spec.assessment)
            assert policy.weights == WEIGHTS
            assert policy.pass_threshold == D(5)
            assert policy.attendance_points == MOODLE_ATTENDANCE_POINTS

    def test_catalogue_tiers_are_sorted_and_exact(self) -> None:
        spec = AssessmentSpec.model_validate(
            {
                "weights": {"self_study": 0.2, "attendance": 0.4, "follow_up": 0.4},
                "tiers": [
                    {"code": "gioi", "name_vi": "Giỏi", "min_score": 8.5},
                    {"code": "kha", "name_vi": "Khá", "name_en": "Good", "min_score": 7.0},
                ],
            }
        )
        policy = GradePolicy.from_assessment(spec)
        assert [t.code for t in policy.tiers] == ["kha", "gioi"]
        assert policy.tiers[1].min_score == D("8.5")
        assert policy.weights.self_study == D("0.2")  # not 0.2000000000000000111…


# -- overrides -----------------------------------------------------------------------------


class TestOverride:
    def override(self, result: ModuleResult, **changes):
        args = {
            "policy": TIERED,
            "new_score": D("6.5"),
            "new_classification": "complete",
            "reason": "Bù buổi vắng có phép bằng bài thu hoạch",
            "by_user_id": 42,
            "at": AT,
        }
        args.update(changes)
        return apply_override(result, **args)

    def test_a_reason_is_required(self) -> None:
        result = result_of("6", "4", "7", TIERED)
        for empty in ("", "   \n\t"):
            with pytest.raises(GradeError) as err:
                self.override(result, reason=empty)
            assert err.value.code == "reason_required"
            assert err.value.params["field"] == "reason"

    def test_a_reason_may_not_exceed_two_thousand_characters(self) -> None:
        result = result_of("6", "4", "7", TIERED)
        self.override(result, reason="x" * MAX_REASON_CHARS)
        with pytest.raises(GradeError) as err:
            self.override(result, reason="x" * (MAX_REASON_CHARS + 1))
        assert err.value.code == "reason_too_long"
        assert err.value.params["max"] == 2000

    def test_the_change_is_audited_with_old_and_new(self) -> None:
        result = result_of("6", "4", "7", TIERED)  # 0.3×6 + 0.2×4 + 0.5×7 = 6.1, not complete
        updated, entries = self.override(
            result, new_score=D("6.5"), reason="  Bù buổi vắng có phép  "
        )
        assert updated.score == D("6.50")
        assert updated.classification == "complete"
        assert updated.final and updated.overridden
        assert updated.components == result.components
        assert [(e.field, e.old, e.new) for e in entries] == [
            ("score", "6.10", "6.50"),
            ("classification", "not_complete", "complete"),
        ]
        assert all(e.at == AT and e.by_user_id == 42 for e in entries)
        assert all(e.reason == "Bù buổi vắng có phép" for e in entries)
        assert updated.reasons[-1].code == "overridden"
        assert updated.reasons[-1].params["reason"] == "Bù buổi vắng có phép"
        # The computed reasons stay, so a reader sees what the trainer overrode.
        assert codes(updated)[:-1] == codes(result)

    def test_only_the_fields_that_change_are_audited(self) -> None:
        result = result_of("6", "4", "7", TIERED)
        _, entries = self.override(result, new_score=result.score)
        assert [e.field for e in entries] == ["classification"]

    def test_an_incomplete_result_can_be_set(self) -> None:
        result = compute_result(comps("8", "9", None), TIERED)
        updated, entries = self.override(result, new_score=D("7.5"), new_classification="kha")
        assert updated.final and updated.classification == "kha"
        assert entries[0].old is None and entries[0].new == "7.50"
        assert entries[1].old == "incomplete"

    def test_overrides_stack_and_each_is_audited_from_the_last(self) -> None:
        result = result_of("6", "4", "7", TIERED)
        first, _ = self.override(result)
        second, entries = self.override(
            first, new_score=D("7.2"), new_classification="kha", reason="Chấm lại"
        )
        assert [(e.field, e.old, e.new) for e in entries] == [
            ("score", "6.50", "7.20"),
            ("classification", "complete", "kha"),
        ]
        assert [r.code for r in second.reasons].count("overridden") == 1

    @pytest.mark.parametrize("classification", ["incomplete", "xuat-sac", "Complete", ""])
    def test_only_classifications_of_the_policy(self, classification: str) -> None:
        with pytest.raises(GradeError) as err:
            self.override(result_of("6", "4", "7", TIERED), new_classification=classification)
        assert err.value.code == "classification_unknown"

    def test_a_completion_needs_a_score_that_supports_it(self) -> None:
        result = result_of("6", "4", "7", TIERED)
        with pytest.raises(GradeError) as err:
            self.override(result, new_score=D("4.9"), new_classification="complete")
        assert err.value.code == "override_score_low"
        with pytest.raises(GradeError) as err:
            self.override(result, new_score=D("8.4"), new_classification="gioi")
        assert err.value.params["min_score"] == D("8.5")
        # Not completing is a trainer's call at any score.
        updated, _ = self.override(
            result_of("9", "9", "9", TIERED), new_score=D(9), new_classification="not_complete"
        )
        assert updated.classification == "not_complete"

    def test_the_score_is_on_the_ten_point_scale(self) -> None:
        with pytest.raises(GradeError) as err:
            self.override(result_of("6", "4", "7", TIERED), new_score=D("10.5"))
        assert err.value.code == "score_range"

    def test_a_change_that_changes_nothing_is_refused(self) -> None:
        result = result_of("6", "4", "7", TIERED)
        with pytest.raises(GradeError) as err:
            self.override(result, new_score=D("6.1"), new_classification="not_complete")
        assert err.value.code == "override_no_change"

    def test_the_time_must_be_aware(self) -> None:
        with pytest.raises(ValueError, match="timezone"):
            self.override(result_of("6", "4", "7", TIERED), at=datetime(2025, 3, 14, 9, 30))


# -- LTI Assignment and Grade Services -----------------------------------------------------


class TestAgs:
    def test_pending_while_a_phase_is_open(self) -> None:
        for result in (
            result_of("9", "9", "9"),
            compute_result(comps("9", "9", None), POLICY),
        ):
            assert grading_progress(result, phase_open=True) == ("InProgress", "Pending")

    def test_pending_manual_when_the_phases_are_over_and_a_score_is_missing(self) -> None:
        result = compute_result(comps("9", "9", None), POLICY)
        assert grading_progress(result, phase_open=False) == ("Submitted", "PendingManual")

    def test_fully_graded_only_when_final(self) -> None:
        for result in (result_of("9", "9", "9"), result_of("9", "2", "9")):
            assert grading_progress(result, phase_open=False) == ("Completed", "FullyGraded")

    def test_an_override_is_fully_graded_once_the_phases_are_over(self) -> None:
        incomplete = compute_result(comps("9", "9", None), POLICY)
        updated, _ = apply_override(
            incomplete,
            policy=POLICY,
            new_score=D(8),
            new_classification="complete",
            reason="Điểm cuối khóa",
            by_user_id=1,
            at=AT,
        )
        assert grading_progress(updated, phase_open=True) == ("InProgress", "Pending")
        assert grading_progress(updated, phase_open=False) == ("Completed", "FullyGraded")
        assert to_ags_score(updated) == D("8.00")

    def test_score_posted_only_when_final(self) -> None:
        assert to_ags_score(compute_result(comps("9", "9", None), POLICY)) is None
        assert to_ags_score(result_of("6", "7.5", "8")) == D("7.30")
        assert to_ags_score(result_of("9", "2", "9")) == D("7.60")  # not complete: still posted

    def test_score_rescaled_to_the_line_item_maximum(self) -> None:
        result = result_of("6", "7.5", "8")  # 7.30
        assert to_ags_score(result, score_maximum=100) == D("73.00")
        assert to_ags_score(result, score_maximum=D(3)) == D("2.19")  # 2.19
        with pytest.raises(ValueError):
            to_ags_score(result, score_maximum=0)


# -- properties ----------------------------------------------------------------------------

score_st = st.decimals(min_value=0, max_value=10, places=2)
component_st = st.one_of(st.none(), score_st)


@st.composite
def policies(draw: st.DrawFn) -> GradePolicy:
    a = draw(st.integers(0, 100))
    b = draw(st.integers(0, 100 - a))
    weights = Weights(D(a) / 100, D(b) / 100, D(100 - a - b) / 100)
    threshold = draw(st.decimals(min_value=0, max_value=10, places=1))
    mins = draw(
        st.lists(st.decimals(min_value=threshold, max_value=10, places=1), unique=True, max_size=3)
    )
    tiers = tuple(Tier(f"t{i}", f"Hạng {i}", None, m) for i, m in enumerate(sorted(mins)))
    return GradePolicy(weights, pass_threshold=threshold, tiers=tiers)


def rank(classification: str, policy: GradePolicy) -> int:
    return policy.classifications.index(classification)


class TestProperties:
    @given(policy=policies(), a=component_st, b=component_st, c=component_st)
    def test_score_within_zero_and_ten_and_classification_known(
        self, policy: GradePolicy, a, b, c
    ) -> None:
        result = compute_result(Components(a, b, c), policy)
        assert result.classification in policy.classifications
        assert result.final == (result.classification != "incomplete")
        if result.score is None:
            assert result.classification == "incomplete"
        else:
            assert D(0) <= result.score <= D(10)
            assert result.score == result.score.quantize(D("0.01"))

    @given(policy=policies(), a=score_st, b=score_st, c=score_st)
    def test_never_complete_with_an_assessed_component_below_the_pass_mark(
        self, policy: GradePolicy, a, b, c
    ) -> None:
        components = Components(a, b, c)
        result = compute_result(components, policy)
        below = any(components.get(n) < policy.pass_threshold for n in policy.assessed())
        assert policy.completes(result.classification) == (not below)
        if result.classification not in ("complete", "not_complete"):
            tier = policy.tier(result.classification)
            assert tier is not None and result.score >= tier.min_score

    @given(
        policy=policies(),
        scores=st.lists(score_st, min_size=3, max_size=3),
        which=st.integers(0, 2),
        bump=st.decimals(min_value=0, max_value=10, places=2),
    )
    def test_monotone_in_each_component(
        self, policy: GradePolicy, scores: list[Decimal], which: int, bump: Decimal
    ) -> None:
        higher = list(scores)
        higher[which] = min(D(10), scores[which] + bump)
        low = compute_result(Components(*scores), policy)
        high = compute_result(Components(*higher), policy)
        assert low.score is not None and high.score is not None
        assert high.score >= low.score
        assert rank(high.classification, policy) >= rank(low.classification, policy)

    @given(policy=policies(), a=score_st, b=score_st, c=score_st)
    def test_the_ags_score_is_the_result_score(self, policy: GradePolicy, a, b, c) -> None:
        result = compute_result(Components(a, b, c), policy)
        assert to_ags_score(result) == result.score
        assert grading_progress(result, phase_open=False) == ("Completed", "FullyGraded")
