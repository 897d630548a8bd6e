"""Learning items on their own: due dates from a schedule, progress, quizzes, hand-ins and
grades typed by trainers. Plain data in, plain data out — no database, no HTTP."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.errors import Conflict, ValidationFailed
from app.learning.rules import (
    MAX_TEXT_CHARS,
    ONLINE_PHASES,
    HandIn,
    Item,
    PhaseProgress,
    Question,
    check_hand_in,
    end_of_day,
    find_item,
    grade_quiz,
    items_of,
    overdue,
    parse_grade,
    phase_open,
    progress,
)
from app.schedule.calendar import HolidayCalendar
from app.schedule.rules import PhasePlan, Schedule, shift_schedule
from modules.catalogue import MaterialSpec, ModuleSpec, QuestionSpec

CALENDAR = HolidayCalendar.vietnam(range(2024, 2027))


def d(text: str) -> date:
    return date.fromisoformat(text)


#: A 7-2-7 class: self-study Mon 3 – Sun 9 March 2025, in person Mon 10 and Tue 11,
#: follow-up Wed 12 – Tue 18.
CLASS = Schedule(
    self_study_start=d("2025-03-03"),
    self_study_end=d("2025-03-09"),
    in_person_dates=(d("2025-03-10"), d("2025-03-11")),
    follow_up_start=d("2025-03-12"),
    follow_up_end=d("2025-03-18"),
)

QUIZ = [
    QuestionSpec(text="Bao nhiêu phẩm chất chủ yếu?", choices=["3", "5", "10"], answer=2),
    QuestionSpec(text="Năng lực chung?", choices=["Ngôn ngữ", "Tự chủ và tự học"], answer=2),
    QuestionSpec(text="Câu 3?", choices=["A", "B", "C", "D"], answer=4),
]

MODULE = ModuleSpec(
    track="gvpt",
    number=4,
    levels=["thcs"],
    titles={"thcs": "Xây dựng kế hoạch dạy học"},
    materials=[
        MaterialSpec(
            phase="self_study", kind="document", title="Đọc", url="https://lms.vn/1", due_day=3
        ),
        MaterialSpec(
            phase="self_study", kind="quiz", key="tu-kiem-tra", title="Tự kiểm tra", questions=QUIZ
        ),
        MaterialSpec(phase="self_study", kind="quiz", title="Quiz LMS", url="https://lms.vn/q"),
        MaterialSpec(phase="self_study", kind="reflection", title="Thêm", required=False),
        MaterialSpec(
            phase="in_person", kind="slides", title="Bài giảng", url="https://lms.vn/s", due_day=2
        ),
        MaterialSpec(
            phase="follow_up",
            kind="assignment",
            key="kh-bai-day",
            title="Kế hoạch bài dạy",
            submission=["file"],
            late="refuse",
            due_day=5,
        ),
        MaterialSpec(phase="follow_up", kind="assignment", title="Bài tập", due_day=2),
        MaterialSpec(phase="follow_up", kind="reflection", title="Suy ngẫm"),
        MaterialSpec(phase="follow_up", kind="video", title="Video", url="https://lms.vn/v"),
    ],
)
#: What the app stores for a module version and hands to ``items_of``.
SPEC: dict[str, Any] = MODULE.model_dump(mode="json")


def _items(schedule: Schedule = CLASS) -> dict[str, Item]:
    return {item.key: item for item in items_of(SPEC, schedule)}


ITEMS = _items()


def vn(text: str) -> datetime:
    """A wall-clock time in Vietnam (UTC+7), as an aware UTC datetime."""
    return (datetime.fromisoformat(text) - timedelta(hours=7)).replace(tzinfo=UTC)


class TestItemsAndDueDates:
    def test_keys_are_the_catalogues(self) -> None:
        assert [i.key for i in items_of(SPEC, CLASS)] == MODULE.item_keys
        assert list(ITEMS) == [
            "self-study-1",
            "tu-kiem-tra",
            "self-study-3",
            "self-study-4",
            "in-person-1",
            "kh-bai-day",
            "follow-up-2",
            "follow-up-3",
            "follow-up-4",
        ]

    def test_each_kind_is_done_its_own_way(self) -> None:
        assert {key: item.mode for key, item in ITEMS.items()} == {
            "self-study-1": "manual",
            "tu-kiem-tra": "quiz",
            "self-study-3": "manual",  # a quiz in the LMS: marked done by the learner
            "self-study-4": "reflection",
            "in-person-1": "manual",
            "kh-bai-day": "assignment",
            "follow-up-2": "assignment",
            "follow-up-3": "reflection",
            "follow-up-4": "manual",
        }

    def test_item_fields_come_from_the_module(self) -> None:
        quiz = ITEMS["tu-kiem-tra"]
        assert quiz.questions[0] == Question("Bao nhiêu phẩm chất chủ yếu?", ("3", "5", "10"), 2)
        assert [q.answer for q in quiz.questions] == [2, 2, 4]
        assert ITEMS["kh-bai-day"].submission_kinds == ("file",)
        assert ITEMS["kh-bai-day"].late_policy == "refuse"
        assert ITEMS["follow-up-2"].submission_kinds == ("text", "link", "file")
        assert ITEMS["follow-up-2"].late_policy == "accept"
        assert ITEMS["self-study-4"].required is False
        assert find_item(ITEMS.values(), "kh-bai-day") is ITEMS["kh-bai-day"]
        assert find_item(ITEMS.values(), "no-such-item") is None

    def test_due_day_n_is_the_nth_day_of_the_phase_and_defaults_to_the_last(self) -> None:
        assert {key: item.due_on for key, item in ITEMS.items()} == {
            "self-study-1": d("2025-03-05"),  # due_day 3
            "tu-kiem-tra": d("2025-03-09"),  # last self-study day
            "self-study-3": d("2025-03-09"),
            "self-study-4": d("2025-03-09"),
            "in-person-1": d("2025-03-11"),  # second in-person day
            "kh-bai-day": d("2025-03-16"),  # due_day 5
            "follow-up-2": d("2025-03-13"),  # due_day 2
            "follow-up-3": d("2025-03-18"),  # last follow-up day
            "follow-up-4": d("2025-03-18"),
        }

    def test_due_at_the_last_second_of_the_day_in_vietnam(self) -> None:
        item = ITEMS["self-study-1"]
        assert item.due_at == datetime(2025, 3, 5, 16, 59, 59, tzinfo=UTC)
        assert item.due_at == vn("2025-03-05T23:59:59")
        assert end_of_day(d("2025-03-18")) == vn("2025-03-18T23:59:59")

    def test_in_person_due_day_counts_in_person_days_not_calendar_days(self) -> None:
        friday_and_monday = Schedule(
            self_study_start=d("2025-03-07") - timedelta(days=7),
            self_study_end=d("2025-03-06"),
            in_person_dates=(d("2025-03-07"), d("2025-03-10")),
            follow_up_start=d("2025-03-11"),
            follow_up_end=d("2025-03-17"),
        )
        assert _items(friday_and_monday)["in-person-1"].due_on == d("2025-03-10")

    def test_due_day_beyond_a_shorter_phase_is_its_last_day(self) -> None:
        three_day_follow_up = Schedule(
            self_study_start=CLASS.self_study_start,
            self_study_end=CLASS.self_study_end,
            in_person_dates=CLASS.in_person_dates,
            follow_up_start=d("2025-03-12"),
            follow_up_end=d("2025-03-14"),
        )
        items = _items(three_day_follow_up)
        assert items["kh-bai-day"].due_on == d("2025-03-14")  # due_day 5 of 3
        assert items["follow-up-2"].due_on == d("2025-03-13")  # due_day 2 still fits

    def test_a_learners_shifted_schedule_moves_their_due_dates(self) -> None:
        own = shift_schedule(CLASS, delay_days=7, calendar=CALENDAR, plan=PhasePlan())
        assert own.in_person_dates == (d("2025-03-17"), d("2025-03-18"))
        items = _items(own)
        assert items["self-study-1"].due_on == d("2025-03-12")
        assert items["in-person-1"].due_on == d("2025-03-18")
        assert items["kh-bai-day"].due_on == d("2025-03-23")
        assert items["follow-up-3"].due_at == vn("2025-03-25T23:59:59")
        # The class's dates are unchanged.
        assert ITEMS["kh-bai-day"].due_on == d("2025-03-16")

    def test_a_phase_without_days_gives_no_due_date_and_is_never_overdue(self) -> None:
        no_follow_up = Schedule(
            self_study_start=CLASS.self_study_start,
            self_study_end=CLASS.self_study_end,
            in_person_dates=CLASS.in_person_dates,
            follow_up_start=None,
            follow_up_end=None,
        )
        item = _items(no_follow_up)["follow-up-3"]
        assert (item.due_on, item.due_at) == (None, None)
        assert not overdue(item, done=False, now=vn("2030-01-01T00:00:00"))

    def test_module_without_items_has_none(self) -> None:
        assert items_of({"materials": []}, CLASS) == []
        assert items_of({}, CLASS) == []


class TestProgress:
    def test_counts_only_required_items_of_the_online_phases(self) -> None:
        done = {"self-study-1", "self-study-4", "in-person-1", "follow-up-4"}
        result = progress(list(ITEMS.values()), done)
        assert set(result) == set(ONLINE_PHASES)
        # The optional reflection and the in-person slides count for nothing.
        assert (result["self_study"].done, result["self_study"].total) == (1, 3)
        assert (result["follow_up"].done, result["follow_up"].total) == (1, 4)
        assert result["self_study"].percent == 33
        assert result["follow_up"].percent == 25

    def test_percent_rounds_down_so_100_means_everything(self) -> None:
        done = {"self-study-1", "tu-kiem-tra"}
        assert progress(list(ITEMS.values()), done)["self_study"].percent == 66
        assert PhaseProgress("follow_up", 199, 200).percent == 99
        everything = {key for key, item in ITEMS.items() if item.tracked}
        result = progress(list(ITEMS.values()), everything)
        assert [result[p].percent for p in ONLINE_PHASES] == [100, 100]

    def test_what_counts_for_the_self_study_and_follow_up_scores(self) -> None:
        # Self-study score: required non-assignments of both online phases; follow-up score:
        # required assignments. Optional and in-person items count for neither.
        assert [k for k, i in ITEMS.items() if i.counts_for_self_study] == [
            "self-study-1",
            "tu-kiem-tra",
            "self-study-3",
            "follow-up-3",
            "follow-up-4",
        ]
        assert [k for k, i in ITEMS.items() if i.counts_for_follow_up] == [
            "kh-bai-day",
            "follow-up-2",
        ]

    def test_keys_of_other_items_are_ignored(self) -> None:
        result = progress(list(ITEMS.values()), {"gone-from-this-version", "in-person-1"})
        assert [result[p].done for p in ONLINE_PHASES] == [0, 0]

    def test_no_items_means_no_percent(self) -> None:
        result = progress([], [])
        assert [result[p].percent for p in ONLINE_PHASES] == [None, None]
        only_optional_and_in_person = [ITEMS["self-study-4"], ITEMS["in-person-1"]]
        result = progress(only_optional_and_in_person, {"self-study-4"})
        assert [result[p].percent for p in ONLINE_PHASES] == [None, None]

    @settings(max_examples=200, deadline=None)
    @given(
        st.lists(
            st.tuples(
                st.sampled_from(["self_study", "in_person", "follow_up"]),
                st.sampled_from(["document", "video", "reflection", "assignment"]),
                st.booleans(),  # required
                st.booleans(),  # done
            ),
            max_size=30,
        )
    )
    def test_percent_is_0_to_100_and_100_only_when_all_tracked_are_done(
        self, drawn: list[tuple[str, str, bool, bool]]
    ) -> None:
        materials = [
            {"phase": phase, "kind": kind, "title": "x", "required": required}
            for phase, kind, required, _ in drawn
        ]
        items = items_of({"materials": materials}, CLASS)
        done = {item.key for item, (*_, is_done) in zip(items, drawn, strict=True) if is_done}
        result = progress(items, done)
        for phase in ONLINE_PHASES:
            tracked = [i for i in items if i.phase == phase and i.required]
            percent = result[phase].percent
            if not tracked:
                assert percent is None
                continue
            assert percent is not None
            assert 0 <= percent <= 100
            assert (percent == 100) == all(i.key in done for i in tracked)

    @given(
        st.integers(min_value=1, max_value=100_000).flatmap(
            lambda total: st.tuples(st.integers(min_value=0, max_value=total), st.just(total))
        )
    )
    def test_phase_percent_reaches_100_only_when_done_equals_total(
        self, done_total: tuple[int, int]
    ) -> None:
        done, total = done_total
        percent = PhaseProgress("self_study", done, total).percent
        assert percent is not None and 0 <= percent <= 100
        assert (percent == 100) == (done == total)


class TestOverdue:
    def test_overdue_only_after_the_due_second_and_while_not_done(self) -> None:
        item = ITEMS["self-study-1"]  # due 5 March, 23:59:59 in Vietnam
        assert not overdue(item, done=False, now=vn("2025-03-05T23:59:59"))
        assert overdue(item, done=False, now=vn("2025-03-06T00:00:00"))
        assert not overdue(item, done=True, now=vn("2025-03-06T00:00:00"))
        # 23:30 UTC on the 5th is already the 6th in Vietnam.
        assert overdue(item, done=False, now=datetime(2025, 3, 5, 23, 30, tzinfo=UTC))


class TestSelfCheckQuiz:
    QUESTIONS = ITEMS["tu-kiem-tra"].questions

    def test_unanswered_questions_count_as_wrong(self) -> None:
        outcome = grade_quiz(self.QUESTIONS, {0: 2, 2: 1})
        assert outcome.answers == (2, None, 1)
        assert (outcome.correct, outcome.total) == (1, 3)
        assert outcome.score == Decimal("3.33")
        assert grade_quiz(self.QUESTIONS, {}).score == Decimal("0.00")
        assert grade_quiz(self.QUESTIONS, {0: 2, 1: 2, 2: 4}).score == Decimal("10.00")

    @pytest.mark.parametrize("answers", [{0: 4}, {0: 0}, {1: 3}, {2: -1}])
    def test_an_answer_outside_the_choices_is_refused(self, answers: dict[int, int]) -> None:
        with pytest.raises(ValidationFailed) as caught:
            grade_quiz(self.QUESTIONS, answers)
        assert caught.value.params["field"] == f"q{next(iter(answers))}"

    @pytest.mark.parametrize("index", [3, 99, -1])
    def test_an_answer_to_a_question_that_does_not_exist_is_refused(self, index: int) -> None:
        with pytest.raises(ValidationFailed) as caught:
            grade_quiz(self.QUESTIONS, {0: 2, index: 1})
        assert caught.value.params["field"] == f"q{index}"

    @pytest.mark.parametrize(
        ("correct", "score"), [(1, "0.63"), (5, "3.13"), (8, "5.00"), (11, "6.88"), (16, "10.00")]
    )
    def test_score_is_rounded_half_up_to_two_decimals(self, correct: int, score: str) -> None:
        questions = tuple(Question(f"Câu {n}?", ("A", "B"), 1) for n in range(16))
        answers = {n: 1 if n < correct else 2 for n in range(16)}
        assert str(grade_quiz(questions, answers).score) == score


class TestHandIn:
    BEFORE = vn("2025-03-13T20:00:00")
    ON_TIME = vn("2025-03-13T23:59:59")  # follow-up-2 is due on 13 March
    LATE = vn("2025-03-14T00:00:01")

    def test_accepted_on_time_and_marked_late_after_the_due_date(self) -> None:
        item = ITEMS["follow-up-2"]
        work = HandIn(text="Bài làm của tôi")
        assert check_hand_in(item, work, graded=False, now=self.ON_TIME) is False
        assert check_hand_in(item, work, graded=False, now=self.LATE) is True

    def test_refused_after_the_due_date_when_the_module_accepts_no_late_work(self) -> None:
        item = ITEMS["kh-bai-day"]  # file only, late = "refuse", due 16 March
        work = HandIn(file_name="ke-hoach.docx", file_size=12_000)
        assert check_hand_in(item, work, graded=False, now=vn("2025-03-16T23:59:59")) is False
        with pytest.raises(Conflict) as caught:
            check_hand_in(item, work, graded=False, now=vn("2025-03-17T00:00:00"))
        assert caught.value.code == "deadline_passed"
        assert caught.value.params["due"] == "16/03/2025"

    def test_refused_once_graded(self) -> None:
        with pytest.raises(Conflict) as caught:
            check_hand_in(
                ITEMS["follow-up-2"], HandIn(text="Sửa lại"), graded=True, now=self.BEFORE
            )
        assert caught.value.code == "already_graded"

    @pytest.mark.parametrize(
        ("work", "kind"),
        [
            (HandIn(text="Bài làm"), "text"),
            (HandIn(link_url="https://drive.example.vn/kh"), "link"),
            (HandIn(text="Ghi chú", file_name="kh.pdf", file_size=10), "text"),
        ],
    )
    def test_kinds_the_assignment_does_not_allow_are_refused(self, work: HandIn, kind: str) -> None:
        with pytest.raises(ValidationFailed) as caught:
            check_hand_in(ITEMS["kh-bai-day"], work, graded=False, now=self.BEFORE)
        assert caught.value.params == {"field": kind, "kind": kind}

    @pytest.mark.parametrize(
        "work", [HandIn(), HandIn(text="   \n\t "), HandIn(text="", link_url="")]
    )
    def test_nothing_to_hand_in_is_refused(self, work: HandIn) -> None:
        with pytest.raises(ValidationFailed) as caught:
            check_hand_in(ITEMS["follow-up-2"], work, graded=False, now=self.BEFORE)
        assert caught.value.params["field"] == "text"
        with pytest.raises(ValidationFailed) as caught:
            check_hand_in(ITEMS["kh-bai-day"], work, graded=False, now=self.BEFORE)
        assert caught.value.params["field"] == "file"

    def test_an_assignment_takes_any_allowed_kind_and_several_at_once(self) -> None:
        item = ITEMS["follow-up-2"]
        for work in (
            HandIn(link_url="https://drive.example.vn/kh"),
            HandIn(file_name="kh.pdf", file_size=10),
            HandIn(text="Xem tệp", link_url="https://x.vn", file_name="kh.pdf", file_size=10),
        ):
            assert check_hand_in(item, work, graded=False, now=self.BEFORE) is False

    def test_a_reflection_is_text_only(self) -> None:
        item = ITEMS["follow-up-3"]
        assert (
            check_hand_in(item, HandIn(text="Tôi rút ra…"), graded=False, now=self.BEFORE) is False
        )
        for work, kind in (
            (HandIn(link_url="https://x.vn"), "link"),
            (HandIn(file_name="a.pdf", file_size=1), "file"),
        ):
            with pytest.raises(ValidationFailed) as caught:
                check_hand_in(item, work, graded=False, now=self.BEFORE)
            assert caught.value.params["kind"] == kind

    def test_text_longer_than_the_limit_is_refused(self) -> None:
        item = ITEMS["follow-up-3"]
        longest = HandIn(text="a" * MAX_TEXT_CHARS)
        assert check_hand_in(item, longest, graded=False, now=self.BEFORE) is False
        # Surrounding whitespace does not count.
        padded = HandIn(text="  " + "a" * MAX_TEXT_CHARS + "\n")
        assert check_hand_in(item, padded, graded=False, now=self.BEFORE) is False
        with pytest.raises(ValidationFailed) as caught:
            check_hand_in(
                item, HandIn(text="a" * (MAX_TEXT_CHARS + 1)), graded=False, now=self.BEFORE
            )
        assert caught.value.params == {"field": "text", "max": MAX_TEXT_CHARS}

    @pytest.mark.parametrize("key", ["self-study-1", "tu-kiem-tra", "self-study-3", "in-person-1"])
    def test_items_that_take_no_hand_in_are_refused(self, key: str) -> None:
        with pytest.raises(Conflict) as caught:
            check_hand_in(ITEMS[key], HandIn(text="x"), graded=False, now=self.BEFORE)
        assert caught.value.code == "no_hand_in"


class TestGradeTypedByTrainer:
    @pytest.mark.parametrize(
        ("typed", "grade"),
        [
            ("7,5", "7.50"),
            ("7.5", "7.50"),
            ("10", "10.00"),
            ("0", "0.00"),
            (" 8,25 ", "8.25"),
            ("9.99", "9.99"),
            ("-0", "0.00"),
        ],
    )
    def test_accepted_with_comma_or_point(self, typed: str, grade: str) -> None:
        assert str(parse_grade(typed)) == grade

    @pytest.mark.parametrize(
        "typed",
        ["10.01", "-1", "-0.01", "abc", "7.555", "", "   ", "nan", "NaN", "inf", "7,5,0", "1e3"],
    )
    def test_refused(self, typed: str) -> None:
        with pytest.raises(ValidationFailed) as caught:
            parse_grade(typed)
        assert caught.value.params["field"] == "score"


class TestModuleStillRunning:
    def test_open_until_the_last_day_of_the_last_phase(self) -> None:
        assert phase_open(CLASS, d("2025-03-01"))
        assert phase_open(CLASS, d("2025-03-18"))
        assert not phase_open(CLASS, d("2025-03-19"))
