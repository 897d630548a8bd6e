"""The module catalogue as data: shipped files, the import format, and its error reports."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modules.catalogue import (
    AssessmentSpec,
    CatalogueImportError,
    ImportProblem,
    MaterialSpec,
    ModuleSpec,
    PhasePlanSpec,
    QuestionSpec,
    TierSpec,
    WeightsSpec,
    load_shipped,
    parse_many,
    parse_module_file,
)

DATA = Path(str(resources.files("modules").joinpath("data")))
SOURCE = "Kế hoạch 718/KH-UBND Quận 7 ngày 25/8/2021, mục III.2"

EXPECTED_FILES = {
    f"{track}-m{number:02d}.toml" for track in ("gvpt", "cbql") for number in (2, 3, 4, 5, 9)
}


def _shipped_text(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8")


def _problems(text: str, filename: str = "upload.toml") -> list[ImportProblem]:
    with pytest.raises(CatalogueImportError) as caught:
        parse_module_file(text, filename)
    return caught.value.problems


def _line_of(text: str, start: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if line.startswith(start))


def _readme_toml(heading: str) -> str:
    """The first TOML block after ``heading`` in modules/README.md."""
    readme = (Path(__file__).resolve().parent.parent / "modules" / "README.md").read_text(
        encoding="utf-8"
    )
    section = readme.split(f"\n{heading}\n", 1)[1]
    return section.split("```toml\n", 1)[1].split("```", 1)[0]


def _local_topic(code: str = "ky-nang-so-1", track: str = "gvpt") -> str:
    return f"""
track = "{track}"
local_code = "{code}"
levels = ["thpt"]
materials = []

[titles]
thpt = "Chuyển đổi số trong dạy học"

[plan]
programme = "hcmc-digital-skills"
self_study_days = 3
in_person_days = 2
follow_up_days = 3
self_study_periods = 4
in_person_periods = 10
follow_up_periods = 4
"""


class TestShippedCatalogue:
    def test_exactly_modules_2_3_4_5_9_for_both_tracks(self) -> None:
        assert {p.name for p in DATA.iterdir() if p.suffix == ".toml"} == EXPECTED_FILES
        specs = load_shipped()
        assert [(s.track, s.number) for s in specs] == [
            (track, number) for track in ("gvpt", "cbql") for number in (2, 3, 4, 5, 9)
        ]

    def test_module_4_titles_for_teachers_are_the_district_plan_titles(self) -> None:
        spec = next(s for s in load_shipped() if s.identity == ("gvpt", 4))
        assert spec.levels == ["tieu_hoc", "thcs"]
        assert spec.titles == {
            "tieu_hoc": "Xây dựng kế hoạch dạy học và giáo dục theo hướng phát triển phẩm chất, "
            "năng lực học sinh tiểu học",
            "thcs": "Xây dựng kế hoạch dạy học và giáo dục theo hướng phát triển phẩm chất, "
            "năng lực học sinh trung học cơ sở",
        }

    def test_module_4_titles_for_managers_are_the_district_plan_titles(self) -> None:
        spec = next(s for s in load_shipped() if s.identity == ("cbql", 4))
        assert spec.levels == ["tieu_hoc", "thcs"]
        assert spec.titles == {
            "tieu_hoc": "Quản trị cơ sở vật chất, thiết bị và công nghệ trong dạy học, giáo dục "
            "học sinh ở trường tiểu học",
            "thcs": "Quản trị cơ sở vật chất, thiết bị và công nghệ trong dạy học, giáo dục "
            "học sinh ở trường trung học cơ sở",
        }

    def test_every_module_is_sourced_for_two_levels_and_leaves_thpt_to_administrators(
        self,
    ) -> None:
        for spec in load_shipped():
            assert spec.levels == ["tieu_hoc", "thcs"], spec.slug
            assert spec.unsourced_levels == ["thpt"], spec.slug
            assert spec.title_for("thpt") is None
            assert spec.source == SOURCE
            assert spec.title_en

    def test_every_module_has_the_default_7_2_7_plan_and_assessment(self) -> None:
        for spec in load_shipped():
            assert spec.plan == PhasePlanSpec()
            assert spec.plan.pattern == "7-2-7"
            assert spec.plan.programme == "etep-7-2-7"
            assert (
                spec.plan.self_study_periods,
                spec.plan.in_person_periods,
                spec.plan.follow_up_periods,
            ) == (20, 16, 14)
            assert spec.materials == []
            weights = spec.assessment.weights
            assert (weights.self_study, weights.attendance, weights.follow_up) == (0.3, 0.2, 0.5)
            assert spec.assessment.pass_threshold == 5.0
            assert spec.assessment.tiers == []
            points = spec.assessment.attendance_points
            assert (points.present, points.late, points.excused, points.absent) == (2, 1, 1, 0)

    @pytest.mark.parametrize("name", sorted(EXPECTED_FILES))
    def test_each_file_validates_and_round_trips(self, name: str) -> None:
        text = _shipped_text(name)
        spec = parse_module_file(text, name)
        assert spec.filename == name
        assert parse_module_file(spec.to_toml(), name) == spec
        # The shipped files are what the tool exports: no hand-made drift.
        assert spec.to_toml() == text

    def test_load_shipped_is_cached_and_callers_cannot_change_it(self) -> None:
        first = load_shipped()
        first.clear()
        assert len(load_shipped()) == 10
        assert load_shipped()[0] is load_shipped()[0]


class TestImportErrors:
    def test_toml_syntax_error_reports_its_line(self) -> None:
        text = _shipped_text("gvpt-m04.toml").replace(
            "self_study_days = 7", "self_study_days = = 7"
        )
        [problem] = _problems(text, "broken.toml")
        assert problem.line == _line_of(text, "self_study_days")
        assert problem.file == "broken.toml"
        assert "TOML" in problem.message

    def test_weights_not_summing_to_one_report_the_weights_table(self) -> None:
        text = _shipped_text("gvpt-m04.toml").replace("follow_up = 0.5", "follow_up = 0.6")
        [problem] = _problems(text)
        assert problem.field == "assessment.weights"
        assert problem.line == _line_of(text, "[assessment.weights]")
        assert "sum to 1" in problem.message

    def test_unknown_track_is_reported_on_its_line(self) -> None:
        text = _shipped_text("gvpt-m04.toml").replace('track = "gvpt"', 'track = "teachers"')
        [problem] = _problems(text)
        assert problem.field == "track"
        assert problem.line == _line_of(text, "track =")
        assert '"gvpt"' in problem.message and '"cbql"' in problem.message

    def test_listed_level_without_a_title_is_reported(self) -> None:
        text = _shipped_text("cbql-m05.toml")
        text = "\n".join(line for line in text.splitlines() if not line.startswith("thcs ="))
        [problem] = _problems(text)
        assert problem.field == "titles.thcs"
        assert problem.line == _line_of(text, "[titles]")
        assert "thcs" in problem.message

    def test_title_for_an_unlisted_level_is_refused(self) -> None:
        text = _shipped_text("cbql-m05.toml").replace("[titles]\n", '[titles]\nthpt = "X"\n')
        [problem] = _problems(text)
        assert problem.field == "titles.thpt"
        assert problem.line == _line_of(text, "thpt =")

    def test_material_with_a_non_http_url_is_reported(self) -> None:
        text = _shipped_text("gvpt-m09.toml").replace("materials = []\n", "") + (
            '\n[[materials]]\nphase = "self_study"\nkind = "video"\ntitle = "Bài 1"\n'
            'url = "https://lms.example.vn/1"\n'
            '\n[[materials]]\nphase = "in_person"\nkind = "slides"\ntitle = "Bài 2"\n'
            'url = "file:///C:/bai2.pptx"\n'
        )
        [problem] = _problems(text)
        assert problem.field == "materials[1].url"
        assert problem.line == _line_of(text, 'url = "file')
        assert "http" in problem.message

    def test_every_problem_of_a_file_is_listed(self) -> None:
        text = (
            _shipped_text("gvpt-m04.toml")
            .replace('track = "gvpt"', 'track = "x"')
            .replace("number = 4", "number = 12")
            .replace("in_person_days = 2", "in_person_days = 0")
        )
        fields = {p.field for p in _problems(text)}
        assert fields == {"track", "number", "plan.in_person_days"}

    def test_unknown_keys_are_refused(self) -> None:
        text = _shipped_text("gvpt-m04.toml").replace("[plan]\n", "[plan]\npatern = 7\n")
        [problem] = _problems(text)
        assert problem.field == "plan.patern"
        assert problem.line == _line_of(text, "patern")

    def test_number_and_local_code_exclude_each_other(self) -> None:
        text = _shipped_text("gvpt-m04.toml").replace(
            "number = 4\n", 'number = 4\nlocal_code = "abc"\n'
        )
        assert [p.field for p in _problems(text)] == ["local_code"]
        text = _shipped_text("gvpt-m04.toml").replace("number = 4\n", "")
        assert [p.field for p in _problems(text)] == ["number"]

    def test_hcmc_programme_needs_more_than_half_in_person(self) -> None:
        text = _local_topic().replace("in_person_periods = 10", "in_person_periods = 8")
        [problem] = _problems(text)
        assert problem.field == "plan.in_person_periods"
        assert "50%" in problem.message
        assert parse_module_file(_local_topic(), "t.toml").plan.in_person_share == 10 / 18

    def test_strict_types(self) -> None:
        text = _shipped_text("gvpt-m04.toml").replace("number = 4", 'number = "4"')
        assert [p.field for p in _problems(text)] == ["number"]


class TestBatchImport:
    def test_good_batch_is_returned_sorted(self) -> None:
        files = {
            "topic.toml": _local_topic(),
            "cbql-m04.toml": _shipped_text("cbql-m04.toml"),
            "gvpt-m09.toml": _shipped_text("gvpt-m09.toml"),
        }
        assert [s.slug for s in parse_many(files)] == [
            "gvpt-m09",
            "gvpt-ky-nang-so-1",
            "cbql-m04",
        ]

    def test_one_bad_file_refuses_the_whole_batch_and_is_named(self) -> None:
        bad = _shipped_text("gvpt-m05.toml").replace("levels = [", "levels = [[")
        files = {
            "gvpt-m04.toml": _shipped_text("gvpt-m04.toml"),
            "gvpt-m05.toml": bad,
            "cbql-m09.toml": _shipped_text("cbql-m09.toml").replace("absent = 0.0", "absent = 3.0"),
        }
        with pytest.raises(CatalogueImportError) as caught:
            parse_many(files)
        problems = caught.value.problems
        assert {p.file for p in problems} == {"gvpt-m05.toml", "cbql-m09.toml"}
        assert all(p.line is not None for p in problems)
        assert "gvpt-m05.toml" in str(caught.value)

    def test_duplicates_across_files_are_refused(self) -> None:
        files = {
            "a.toml": _shipped_text("gvpt-m04.toml"),
            "b.toml": _shipped_text("gvpt-m04.toml").replace(
                "pass_threshold = 5.0", "pass_threshold = 6.0"
            ),
            "c.toml": _local_topic(),
            "d.toml": _local_topic(),
            "e.toml": _local_topic(track="cbql"),
        }
        with pytest.raises(CatalogueImportError) as caught:
            parse_many(files)
        problems = caught.value.problems
        assert [(p.file, p.field) for p in problems] == [
            ("b.toml", "number"),
            ("d.toml", "local_code"),
        ]
        assert "a.toml" in problems[0].message and "c.toml" in problems[1].message
        assert problems[0].line == _line_of(files["b.toml"], "number")

    def test_empty_batch_is_empty(self) -> None:
        assert parse_many({}) == []


class TestExport:
    def test_a_full_module_round_trips(self) -> None:
        spec = ModuleSpec(
            track="cbql",
            local_code="an-toan-thong-tin",
            levels=["thpt", "tieu_hoc"],
            titles={
                "tieu_hoc": 'An toàn "thông tin" \\ mạng',
                "thpt": "An toàn thông tin mạng",
            },
            title_en=None,
            plan=PhasePlanSpec(
                programme="hcmc-digital-skills",
                self_study_days=1,
                in_person_days=3,
                follow_up_days=0,
                self_study_periods=2,
                in_person_periods=12,
                follow_up_periods=0,
            ),
            materials=[
                MaterialSpec(
                    phase="in_person",
                    kind="document",
                    title="Tài liệu # 1 = [x]",
                    url="https://example.vn/tai-lieu?a=1&b=2#p",
                )
            ],
            assessment=AssessmentSpec(
                weights=WeightsSpec(self_study=0.1, attendance=0.2, follow_up=0.7),
                pass_threshold=5.0,
                tiers=[
                    TierSpec(code="kha", name_vi="Khá", name_en="Good", min_score=7.0),
                    TierSpec(code="gioi", name_vi="Giỏi", min_score=8.5),
                ],
            ),
        )
        assert spec.levels == ["tieu_hoc", "thpt"]
        assert parse_module_file(spec.to_toml(), spec.filename) == spec

    def test_decomposed_vietnamese_is_stored_composed(self) -> None:
        import unicodedata

        text = _shipped_text("gvpt-m04.toml")
        decomposed = unicodedata.normalize("NFD", text)
        assert decomposed != text
        assert parse_module_file(decomposed, "nfd.toml") == parse_module_file(text, "nfc.toml")

    def test_the_readme_example_is_a_valid_file(self) -> None:
        example = _readme_toml("## Example")
        spec = parse_module_file(example, "README.md")
        assert spec.slug == "gvpt-hoc-lieu-so"
        assert [t.code for t in spec.assessment.tiers] == ["kha", "gioi"]
        assert parse_module_file(spec.to_toml(), "export.toml") == spec

    @settings(max_examples=60, deadline=None)
    @given(
        title=st.text(min_size=1, max_size=60).filter(lambda s: s.strip()),
        gloss=st.one_of(st.none(), st.text(min_size=1, max_size=40).filter(lambda s: s.strip())),
        weight=st.floats(min_value=0, max_value=1),
    )
    def test_any_valid_module_round_trips(
        self, title: str, gloss: str | None, weight: float
    ) -> None:
        spec = ModuleSpec(
            track="gvpt",
            number=1,
            levels=["thcs"],
            titles={"thcs": title},
            title_en=gloss,
            assessment=AssessmentSpec(
                weights=WeightsSpec(self_study=weight, attendance=0.0, follow_up=1.0 - weight)
            ),
        )
        assert parse_module_file(spec.to_toml(), "m.toml") == spec


def _with_items(items: str, *, plan: dict[str, int] | None = None) -> str:
    """Shipped GVPT module 4 (7-2-7 plan) with ``items`` in place of ``materials = []``."""
    text = _shipped_text("gvpt-m04.toml").replace("materials = []\n", "")
    for key, value in (plan or {}).items():
        text = re.sub(rf"^{key} = \d+$", f"{key} = {value}", text, count=1, flags=re.MULTILINE)
    return text + "\n" + items


def _lines_of(text: str, start: str) -> list[int]:
    return [i for i, line in enumerate(text.splitlines(), 1) if line.startswith(start)]


def _item(phase: str, kind: str, *extra: str, url: bool = True) -> str:
    lines = ["[[materials]]", f'phase = "{phase}"', f'kind = "{kind}"', f'title = "{kind} {phase}"']
    if url:
        lines.append(f'url = "https://lms.example.vn/{kind}"')
    return "\n".join([*lines, *extra]) + "\n\n"


_QUESTIONS = """
[[materials.questions]]
text = "Câu 1?"
choices = ["A", "B"]
answer = 1

[[materials.questions]]
text = "Câu 2?"
choices = ["A", "B", "C"]
answer = 3
"""


class TestLearningItems:
    def test_the_readme_example_items_parse_as_documented(self) -> None:
        items = _readme_toml("### `materials` — learning items")
        assert "[[materials]]" in items and "[plan]" not in items
        spec = parse_module_file(_with_items(items), "gvpt-m04.toml")
        reading, quiz, reflection, assignment = spec.materials
        assert spec.item_keys == ["doc-chuong-trinh", "tu-kiem-tra", "self-study-3", "follow-up-1"]
        assert [m.kind for m in spec.materials] == ["document", "quiz", "reflection", "assignment"]
        assert (reading.phase, reading.due_day, reading.url is not None) == ("self_study", 3, True)
        assert [len(q.choices) for q in quiz.questions] == [3, 3]
        assert [q.answer for q in quiz.questions] == [2, 2]
        assert quiz.url is None and quiz.due_day == 5
        assert (reflection.url, reflection.due_day) == (None, None)
        assert (assignment.phase, assignment.due_day) == ("follow_up", 6)
        assert assignment.submission_kinds == ("file",)
        assert assignment.late == "accept"
        assert all(m.required for m in spec.materials)
        assert parse_module_file(spec.to_toml(), "export.toml") == spec

    def test_defaults_key_due_day_required_late_and_submission(self) -> None:
        items = (
            _item("self_study", "document")
            + _item("in_person", "slides")
            + _item("self_study", "video", 'key = "clip"')
            + _item("follow_up", "assignment", url=False)
            + _item("self_study", "reflection", url=False)
        )
        spec = parse_module_file(_with_items(items), "m.toml")
        # n counts the items of each phase, keyed ones included.
        assert spec.item_keys == [
            "self-study-1",
            "in-person-1",
            "clip",
            "follow-up-1",
            "self-study-3",
        ]
        assert [m.key for m in spec.materials] == [None, None, "clip", None, None]
        assert all(m.due_day is None and m.required for m in spec.materials)
        assignment = spec.materials[3]
        assert assignment.late == "accept"
        assert assignment.submission_kinds == ("text", "link", "file")

    @pytest.mark.parametrize(
        ("phase", "last_day"), [("self_study", 7), ("in_person", 2), ("follow_up", 7)]
    )
    def test_due_day_after_its_phase_is_refused_with_line_and_field(
        self, phase: str, last_day: int
    ) -> None:
        ok = _with_items(_item(phase, "document", f"due_day = {last_day}"))
        assert parse_module_file(ok, "m.toml").materials[0].due_day == last_day
        text = _with_items(
            _item("self_study", "video") + _item(phase, "document", f"due_day = {last_day + 1}")
        )
        [problem] = _problems(text)
        assert problem.field == "materials[1].due_day"
        assert problem.line == _line_of(text, "due_day =")
        assert f"({last_day})" in problem.message

    def test_due_day_zero_is_refused(self) -> None:
        [problem] = _problems(_with_items(_item("self_study", "document", "due_day = 0")))
        assert problem.field == "materials[0].due_day"

    def test_a_shorter_plan_shortens_what_due_day_may_be(self) -> None:
        text = _with_items(
            _item("follow_up", "document", "due_day = 4"), plan={"follow_up_days": 3}
        )
        [problem] = _problems(text)
        assert problem.field == "materials[0].due_day"
        assert "(3)" in problem.message

    def test_item_in_an_online_phase_without_days_is_refused(self) -> None:
        text = _with_items(_item("self_study", "document"), plan={"self_study_days": 0})
        [problem] = _problems(text)
        assert problem.field == "materials[0].phase"
        assert "self_study" in problem.message

    def test_duplicate_keys_are_refused_on_the_second_item(self) -> None:
        text = _with_items(
            _item("self_study", "document", 'key = "bai-1"')
            + _item("follow_up", "video", 'key = "bai-1"')
        )
        [problem] = _problems(text)
        assert problem.field == "materials[1].key"
        assert problem.line == _lines_of(text, "key =")[1]
        assert '"bai-1"' in problem.message

    def test_an_own_key_that_takes_a_default_key_is_refused(self) -> None:
        text = _with_items(
            _item("self_study", "document", 'key = "self-study-2"') + _item("self_study", "video")
        )
        [problem] = _problems(text)
        assert problem.field == "materials[1].key"
        assert '"self-study-2"' in problem.message

    @pytest.mark.parametrize("key", ["Bai-1", "bai--1", "bai_1", "-bai", "a" * 41])
    def test_a_key_that_is_not_a_slug_is_refused(self, key: str) -> None:
        [problem] = _problems(_with_items(_item("self_study", "document", f'key = "{key}"')))
        assert problem.field == "materials[0].key"

    def test_quiz_without_questions_or_url_is_refused(self) -> None:
        text = _with_items(_item("self_study", "quiz", url=False))
        [problem] = _problems(text)
        assert problem.field == "materials[0].questions"
        assert "questions" in problem.message and "url" in problem.message
        # Either one is enough: a quiz in the LMS, or one taken in blend727.
        assert parse_module_file(_with_items(_item("self_study", "quiz")), "m.toml")
        in_tool = parse_module_file(
            _with_items(_item("self_study", "quiz", url=False) + _QUESTIONS), "m.toml"
        )
        assert [q.text for q in in_tool.materials[0].questions] == ["Câu 1?", "Câu 2?"]

    @pytest.mark.parametrize("kind", ["document", "reflection", "assignment"])
    def test_questions_on_anything_but_a_quiz_are_refused(self, kind: str) -> None:
        text = _with_items(_item("follow_up", kind) + _QUESTIONS)
        [problem] = _problems(text)
        assert problem.field == "materials[0].questions"
        assert "quiz" in problem.message

    def test_answer_beyond_the_choices_is_refused_on_its_line(self) -> None:
        questions = _QUESTIONS.replace("answer = 3", "answer = 4")
        text = _with_items(_item("self_study", "video") + _item("self_study", "quiz") + questions)
        [problem] = _problems(text)
        assert problem.field == "materials[1].questions[1].answer"
        assert problem.line == _line_of(text, "answer = 4")
        assert "4" in problem.message and "3 choices" in problem.message

    @pytest.mark.parametrize(
        ("question", "field"),
        [
            ('text = "?"\nchoices = ["A"]\nanswer = 1', "choices"),
            ('text = "?"\nchoices = ["A", "B"]\nanswer = 0', "answer"),
            ('text = "?"\nchoices = ["A", " "]\nanswer = 1', "choices[1]"),
            ('text = " "\nchoices = ["A", "B"]\nanswer = 1', "text"),
            ('text = "?"\nchoices = ["1","2","3","4","5","6","7","8","9"]\nanswer = 1', "choices"),
        ],
    )
    def test_malformed_questions_are_refused(self, question: str, field: str) -> None:
        text = _with_items(_item("self_study", "quiz") + f"[[materials.questions]]\n{question}\n")
        [problem] = _problems(text)
        assert problem.field == f"materials[0].questions[0].{field}"

    @pytest.mark.parametrize("kind", ["reflection", "document", "quiz"])
    def test_submission_kinds_on_anything_but_an_assignment_are_refused(self, kind: str) -> None:
        text = _with_items(_item("self_study", kind, 'submission = ["text"]'))
        [problem] = _problems(text)
        assert problem.field == "materials[0].submission"
        assert "assignment" in problem.message

    def test_unknown_submission_kind_is_refused(self) -> None:
        text = _with_items(_item("follow_up", "assignment", 'submission = ["file", "photo"]'))
        [problem] = _problems(text)
        assert problem.field == "materials[0].submission[1]"
        assert problem.line == _line_of(text, "submission =")
        assert '"photo"' in problem.message and '"file"' in problem.message

    def test_a_submission_kind_listed_twice_is_refused(self) -> None:
        text = _with_items(_item("follow_up", "assignment", 'submission = ["file", "file"]'))
        [problem] = _problems(text)
        assert problem.field == "materials[0].submission"

    def test_unknown_late_policy_is_refused(self) -> None:
        text = _with_items(_item("follow_up", "assignment", 'late = "sometimes"'))
        [problem] = _problems(text)
        assert problem.field == "materials[0].late"
        assert '"accept"' in problem.message and '"refuse"' in problem.message

    def test_assignment_in_person_is_refused(self) -> None:
        text = _with_items(_item("in_person", "assignment", url=False))
        [problem] = _problems(text)
        assert problem.field == "materials[0].phase"
        assert "self_study or follow_up" in problem.message
        for phase in ("self_study", "follow_up"):
            assert parse_module_file(_with_items(_item(phase, "assignment", url=False)), "m.toml")

    @pytest.mark.parametrize("kind", ["document", "slides", "video", "audio", "forum", "link"])
    def test_an_item_done_outside_blend727_needs_a_url(self, kind: str) -> None:
        text = _with_items(
            _item("self_study", "reflection", url=False) + _item("self_study", kind, url=False)
        )
        [problem] = _problems(text)
        assert problem.field == "materials[1].url"
        assert problem.line == _lines_of(text, "[[materials]]")[1]
        assert f'"{kind}" needs a url' in problem.message

    def test_in_tool_kinds_need_no_url(self) -> None:
        items = _item("self_study", "reflection", url=False) + _item(
            "follow_up", "assignment", url=False
        )
        spec = parse_module_file(_with_items(items), "m.toml")
        assert [m.url for m in spec.materials] == [None, None]

    def test_export_then_import_keeps_every_item_field(self) -> None:
        spec = ModuleSpec(
            track="gvpt",
            number=6,
            levels=["thcs"],
            titles={"thcs": "Mô-đun 6"},
            plan=PhasePlanSpec(self_study_days=5, in_person_days=3, follow_up_days=5),
            materials=[
                MaterialSpec(
                    phase="self_study",
                    kind="quiz",
                    title="Tự kiểm tra",
                    key="tu-kiem-tra",
                    description='Làm bài "nhanh" = 10 phút # không tính điểm',
                    due_day=2,
                    required=False,
                    questions=[
                        QuestionSpec(text="Câu [1]?", choices=["Có", "Không"], answer=2),
                        QuestionSpec(text="Câu 2?", choices=["A", "B", "C"], answer=1),
                    ],
                ),
                MaterialSpec(
                    phase="self_study",
                    kind="quiz",
                    title="Bài kiểm tra trên LMS",
                    url="https://lms.example.vn/mod/quiz/view.php?id=7",
                    questions=[QuestionSpec(text="Câu 3?", choices=["X", "Y"], answer=1)],
                ),
                MaterialSpec(
                    phase="in_person", kind="slides", title="Bài giảng", url="https://x.vn/s"
                ),
                MaterialSpec(
                    phase="follow_up",
                    kind="assignment",
                    title="Kế hoạch bài dạy",
                    submission=["file", "link"],
                    late="refuse",
                    due_day=5,
                ),
                MaterialSpec(phase="follow_up", kind="reflection", title="Suy ngẫm"),
            ],
        )
        text = spec.to_toml()
        assert text.count("[[materials.questions]]") == 3
        back = parse_module_file(text, spec.filename)
        assert back == spec
        assert back.item_keys == [
            "tu-kiem-tra",
            "self-study-2",
            "in-person-1",
            "follow-up-1",
            "follow-up-2",
        ]
        # The questions stay with their own quiz.
        assert [len(m.questions) for m in back.materials] == [2, 1, 0, 0, 0]
        assert back.materials[3].submission_kinds == ("file", "link")
