"""The module catalogue as data: shipped files, the import format, and its error reports."""

from __future__ import annotations

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
        readme = (Path(__file__).resolve().parent.parent / "modules" / "README.md").read_text(
            encoding="utf-8"
        )
        example = readme.split("```toml\n", 1)[1].split("```", 1)[0]
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
