"""Imports of the files departments keep: the holiday calendar on ``/admin/holidays`` and a
class's list of learners on ``/admin/classes/{id}`` (and the same through the JSON API).

The whole file is checked first. A file with any bad line changes nothing, and the page lists
every problem with its line and column in Vietnamese; a good file says how many were added.
Every refusal below is checked against the database: the same rows as before.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from datetime import date, datetime
from html import unescape
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openpyxl import Workbook, load_workbook
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.audit.models import AuditEvent
from app.classes.models import Cohort, Enrolment, HolidayOverride, TrainingClass
from app.identity.models import User
from app.imports.rules import (
    ROSTER_COLUMNS,
    Problem,
    describe,
    find_header,
    heading_key,
    parse_day,
    parse_holidays,
    parse_roster,
)
from app.imports.tables import Line, Table
from app.platforms.models import Platform
from tests.conftest import TOOL_BASE_URL
from tests.helpers import new_class, sign_in
from tests.lti_platform import INST_ADMIN, SYS_ADMIN, TestPlatform

ADMIN = [INST_ADMIN, SYS_ADMIN]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


# -- files as departments make them ----------------------------------------------------------


def csv_file(rows: Sequence[Sequence[object]], *, sep: str = ",", bom: bool = True) -> bytes:
    out = io.StringIO()
    csv.writer(out, delimiter=sep, lineterminator="\r\n").writerows(rows)
    return (("\ufeff" if bom else "") + out.getvalue()).encode("utf-8")


def xlsx_file(rows: Sequence[Sequence[object]]) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        sheet.append(list(row))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def table(*rows: Sequence[str]) -> Table:
    return Table("t.csv", "csv", [Line(i, tuple(r)) for i, r in enumerate(rows, start=1) if r])


def vi(problem: Problem) -> str:
    from app.core.i18n import get_translations

    return describe(problem, get_translations("vi").gettext)


def count(db: Session, model: type, *where: Any) -> int:
    db.expire_all()
    return int(db.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def problems_on(page: str) -> list[str]:
    """The problems an import page lists, as a person reads them."""
    block = re.search(r'<ul class="problems">(.*?)</ul>', page, flags=re.S)
    assert block, page[-2000:]
    return [unescape(li).strip() for li in re.findall(r"<li>(.*?)</li>", block.group(1), re.S)]


@pytest.fixture()
def admin(client: TestClient, platform: TestPlatform) -> dict:
    return sign_in(client, platform, ADMIN, "admin-1", "Lê Quản Trị")


def post_file(
    client: TestClient,
    url: str,
    name: str,
    data: bytes,
    *,
    check_only: bool = False,
    kind: str = "text/csv",
) -> Any:
    form = {"csrf_token": client.headers["X-CSRF-Token"]}
    if check_only:
        form["check_only"] = "1"
    return client.post(url, data=form, files={"file": (name, data, kind)})


# == the header row and the lines, without a database ========================================


class TestHeaderRow:
    @pytest.mark.parametrize(
        "heading,key",
        [
            ("Họ và tên", "ho va ten"),
            ("HỌ VÀ TÊN (*)", "ho va ten"),
            ("Ho va ten", "ho va ten"),
            ("  họ   và tên ", "ho va ten"),
            ("Quận/Huyện", "quan huyen"),
            ("quận-huyện", "quan huyen"),
            ("Trường", "truong"),
            ("Đơn vị công tác", "don vi cong tac"),
            ("E-mail", "e mail"),
        ],
    )
    def test_headings_compare_without_marks_case_or_punctuation(
        self, heading: str, key: str
    ) -> None:
        assert heading_key(heading) == key

    def test_found_below_a_title_with_any_spelling(self) -> None:
        t = table(
            ("DANH SÁCH HỌC VIÊN LỚP BỒI DƯỠNG MÔ ĐUN 4",),
            ("Ngày lập: 01/11/2026",),
            ("STT", "HO VA TEN", "E-MAIL", "TRUONG", "QUAN/HUYEN", "Nhóm"),
            ("1", "Nguyễn Thị Học", "hoc@x.vn", "THCS A", "Quận 7", ""),
        )
        lines, problems = parse_roster(t)
        assert problems == []
        assert lines[0].line == 4
        assert (lines[0].full_name, lines[0].email, lines[0].school, lines[0].district) == (
            "Nguyễn Thị Học",
            "hoc@x.vn",
            "THCS A",
            "Quận 7",
        )

    def test_split_name_columns_do_not_hide_the_header(self) -> None:
        t = table(
            ("Danh sách",),
            ("STT", "Họ đệm", "Tên", "Email"),
            ("1", "Nguyễn Thị", "Học", "hoc@x.vn"),
        )
        lines, problems = parse_roster(t)
        assert problems == [] and [(x.line, x.email) for x in lines] == [(3, "hoc@x.vn")]

    def test_no_header_row_is_one_problem_naming_the_columns(self) -> None:
        lines, problems = parse_holidays(table(("01/01/2027", "nghỉ", "Tết")))
        assert lines == [] and len(problems) == 1
        assert "Ngày, Loại, Tên" in vi(problems[0])

    def test_a_missing_or_doubled_column_is_named_on_the_header_line(self) -> None:
        _, problems = parse_holidays(table(("Ngày", "Tên"), ("01/01/2027", "Tết")))
        assert [vi(p) for p in problems] == ["Dòng 1: Dòng tiêu đề không có cột Loại."]
        problems = []
        find_header(table(("Email", "Họ tên", "email")), ROSTER_COLUMNS, ("email",), problems)
        assert [p.line for p in problems] == [1]
        assert "Email" in vi(problems[0])

    def test_empty_rows_of_a_template_and_a_total_are_skipped(self) -> None:
        t = table(
            ("STT", "Ngày", "Loại", "Tên"),
            ("1", "02/01/2027", "nghỉ", "Nghỉ bù"),
            ("2", "", "", ""),
            ("3",),
        )
        lines, problems = parse_holidays(t)
        assert problems == [] and [x.line for x in lines] == [2]


class TestHolidayLines:
    @pytest.mark.parametrize(
        "text,day",
        [
            ("02/09/2027", date(2027, 9, 2)),
            ("2/9/2027", date(2027, 9, 2)),
            ("02-09-2027", date(2027, 9, 2)),
            ("02.09.2027", date(2027, 9, 2)),
            ("2027-09-02", date(2027, 9, 2)),
            ("2027-09-02 00:00:00", date(2027, 9, 2)),
            ("31/02/2027", None),
            ("09/02/27", None),
            ("2027/09/02", None),
            ("mùng 2 tháng 9", None),
        ],
    )
    def test_dates_are_day_first_or_iso(self, text: str, day: date | None) -> None:
        assert parse_day(text) == day

    @pytest.mark.parametrize(
        "word,kind",
        [
            ("nghỉ", "off"),
            ("Nghỉ bù", "off"),
            ("NGHI", "off"),
            ("off", "off"),
            ("Day off", "off"),
            ("làm bù", "working"),
            ("Làm việc", "working"),
            ("lam bu", "working"),
            ("working", "working"),
            ("Working day", "working"),
        ],
    )
    def test_kinds_in_vietnamese_or_english(self, word: str, kind: str) -> None:
        lines, problems = parse_holidays(
            table(("Ngày", "Loại", "Tên"), ("02/01/2027", word, "Ngày của tỉnh"))
        )
        assert problems == [] and lines[0].kind == kind

    def test_every_problem_of_every_line_with_its_line_and_column(self) -> None:
        lines, problems = parse_holidays(
            table(
                ("Ngày", "Loại", "Tên"),
                ("02/01/2027", "nghỉ", "Nghỉ bù Tết Dương lịch"),
                ("31/02/2027", "nghỉ", "Sai ngày"),
                ("03/01/2027", "họp", "Loại lạ"),
                ("04/01/2027", "nghỉ", ""),
                ("02/01/2027", "làm bù", "Trùng ngày"),
                ("01/01/1999", "", "Năm xa"),
            )
        )
        assert lines == [] or all(x.line == 2 for x in lines)
        assert [vi(p) for p in problems] == [
            "Dòng 3, cột Ngày: '31/02/2027' không phải là ngày hợp lệ (dd/mm/yyyy)",
            "Dòng 4, cột Loại: 'họp' không phải là loại ngày: ghi “nghỉ” (ngày nghỉ) hoặc "
            "“làm bù” (ngày làm việc)",
            "Dòng 5, cột Tên: Ô này đang trống",
            "Dòng 6, cột Ngày: 02/01/2027 đã có ở dòng 2",
            "Dòng 7, cột Ngày: '01/01/1999' nằm ngoài các năm 2000–2100",
            "Dòng 7, cột Loại: Ô này đang trống",
        ]


# == the holiday calendar =====================================================================

GOOD = [
    ("Ngày", "Loại", "Tên"),
    ("04/01/2027", "nghỉ", "Nghỉ theo quyết định của UBND tỉnh"),
    ("2027-02-06", "làm bù", "Làm bù cho ngày nghỉ Tết"),
    ("05/01/2027", "off", "Kỷ niệm ngày thành lập tỉnh"),
]


class TestHolidayImport:
    def test_a_good_file_adds_its_days_and_says_how_many(
        self, client: TestClient, admin: dict, db: Session
    ) -> None:
        r = post_file(client, "/admin/holidays/import", "lich.csv", csv_file(GOOD))
        assert r.status_code == 303
        assert r.headers["location"] == "/admin/holidays?added=3&unchanged=0#import"
        page = unescape(client.get(r.headers["location"]).text)
        assert "Đã nhập tệp: thêm 3 ngày vào lịch, 0 ngày đã có sẵn." in page
        assert "Kỷ niệm ngày thành lập tỉnh" in page
        rows = db.scalars(select(HolidayOverride).order_by(HolidayOverride.date)).all()
        assert [(o.date, o.kind) for o in rows] == [
            (date(2027, 1, 4), "off"),
            (date(2027, 1, 5), "off"),
            (date(2027, 2, 6), "working"),
        ]
        # Each day the file added is a change of the calendar by the administrator.
        events = db.scalars(select(AuditEvent).where(AuditEvent.action == "holiday.add")).all()
        assert sorted((e.object_label, e.actor_label) for e in events) == [
            ("2027-01-04", "Lê Quản Trị"),
            ("2027-01-05", "Lê Quản Trị"),
            ("2027-02-06", "Lê Quản Trị"),
        ]

    def test_a_file_with_bad_lines_changes_nothing_and_lists_every_problem(
        self, client: TestClient, admin: dict, db: Session
    ) -> None:
        client.post(
            "/admin/holidays",
            data={
                "csrf_token": admin["csrf_token"],
                "date": "2027-01-04",
                "kind": "off",
                "name": "Ngày của tỉnh",
            },
        )
        before = count(db, HolidayOverride)
        rows = [
            *GOOD[:2],  # 04/01/2027 differs from what is in the calendar
            ("06/01/2027", "nghỉ", "Tốt"),
            ("06/01/2027", "nghỉ", "Trùng"),
            ("07/01/2027", "nghỉ", "Tốt"),
            ("31/02/2027", "nghỉ", "Sai"),
        ]
        r = post_file(client, "/admin/holidays/import", "lich.csv", csv_file(rows))
        assert r.status_code == 422
        assert problems_on(r.text) == [
            "Dòng 2, cột Ngày: 04/01/2027 đã có trong lịch là “Ngày của tỉnh” (ngày nghỉ); "
            "sửa ngày đó bằng biểu mẫu trên trang này, hoặc bỏ dòng này",
            "Dòng 4, cột Ngày: 06/01/2027 đã có ở dòng 3",
            "Dòng 6, cột Ngày: '31/02/2027' không phải là ngày hợp lệ (dd/mm/yyyy)",
        ]
        assert "Chưa có thay đổi nào" in unescape(r.text)
        assert count(db, HolidayOverride) == before

    def test_a_line_already_in_the_calendar_is_counted_not_added_twice(
        self, client: TestClient, admin: dict, db: Session
    ) -> None:
        assert (
            post_file(client, "/admin/holidays/import", "a.csv", csv_file(GOOD)).status_code == 303
        )
        again = [*GOOD, ("08/01/2027", "nghỉ", "Thêm")]
        r = post_file(client, "/admin/holidays/import", "b.csv", csv_file(again))
        assert r.headers["location"] == "/admin/holidays?added=1&unchanged=3#import"
        assert count(db, HolidayOverride) == 4

    def test_check_only_says_what_would_happen_and_writes_nothing(
        self, client: TestClient, admin: dict, db: Session
    ) -> None:
        r = post_file(
            client,
            "/admin/holidays/import",
            "lich.xlsx",
            xlsx_file(GOOD),
            kind=XLSX,
            check_only=True,
        )
        assert r.status_code == 200
        assert "sẽ thêm 3 ngày" in unescape(r.text)
        assert count(db, HolidayOverride) == 0

    def test_xlsx_with_date_cells_a_title_and_an_english_header(
        self, client: TestClient, admin: dict, db: Session
    ) -> None:
        rows: list[Sequence[object]] = [
            ("Lịch nghỉ bổ sung năm 2027",),
            (),
            ("Date", "Kind", "Name"),
            (datetime(2027, 4, 19), "Day off", "Provincial day"),
            (date(2027, 4, 24), "working", "Make-up Saturday"),
        ]
        r = post_file(client, "/admin/holidays/import", "2027.xlsx", xlsx_file(rows), kind=XLSX)
        assert r.status_code == 303, problems_on(r.text)
        assert {o.date for o in db.scalars(select(HolidayOverride))} == {
            date(2027, 4, 19),
            date(2027, 4, 24),
        }

    def test_export_and_import_round_trip_into_another_lms(
        self, client: TestClient, admin: dict, platform_http: str, factories: Any, db: Session
    ) -> None:
        rows = [*GOOD, ("09/01/2027", "nghỉ", '=HYPERLINK("http://x")')]
        assert (
            post_file(client, "/admin/holidays/import", "a.csv", csv_file(rows)).status_code == 303
        )
        exported_csv = client.get("/admin/holidays/export.csv")
        exported_xlsx = client.get("/admin/holidays/export.xlsx")
        assert exported_csv.headers["content-disposition"] == (
            'attachment; filename="lich-nghi-bo-sung.csv"'
        )
        assert exported_csv.content.startswith(b"\xef\xbb\xbf")
        text = exported_csv.content.decode("utf-8-sig")
        assert text.splitlines()[0] == "Ngày,Loại,Tên"
        assert "04/01/2027,nghỉ,Nghỉ theo quyết định của UBND tỉnh" in text
        assert "'=HYPERLINK" in text  # never a formula in a spreadsheet
        sheet = load_workbook(io.BytesIO(exported_xlsx.content)).active
        assert sheet is not None
        formula = next(c for c in sheet["C"] if str(c.value).startswith("=HYPERLINK"))
        assert formula.data_type == "s"  # a text cell, not a formula

        # the same LMS: everything is already there
        for name, data in (("x.csv", exported_csv.content), ("x.xlsx", exported_xlsx.content)):
            r = post_file(client, "/admin/holidays/import", name, data)
            assert r.headers["location"] == "/admin/holidays?added=0&unchanged=4#import", name

        # another LMS: the same calendar, the same export
        other = TestPlatform.create(platform_http, issuer="https://other.test", client_id="c-2")
        factories.register(other, deployment_ids=["1"])
        b = TestClient(client.app, base_url=TOOL_BASE_URL, follow_redirects=False)
        sign_in(b, other, ADMIN, "admin-b", "Quản trị B")
        r = post_file(b, "/admin/holidays/import", "x.xlsx", exported_xlsx.content, kind=XLSX)
        assert r.headers["location"] == "/admin/holidays?added=4&unchanged=0#import"
        assert b.get("/admin/holidays/export.csv").content == exported_csv.content

    def test_the_api_imports_checks_and_refuses_with_every_problem(
        self, client: TestClient, admin: dict, db: Session
    ) -> None:
        url = "/api/v1/holidays/import"
        checked = client.post(url + "?dry_run=true", files={"file": ("a.csv", csv_file(GOOD))})
        assert checked.status_code == 200
        assert checked.json() == {"lines": 3, "added": 3, "unchanged": 0, "dry_run": True}
        assert count(db, HolidayOverride) == 0

        bad = csv_file([GOOD[0], ("31/02/2027", "nghỉ", "x"), ("01/03/2027", "?", "")])
        refused = client.post(url, files={"file": ("b.csv", bad)})
        assert refused.status_code == 422
        assert refused.headers["content-type"].startswith("application/problem+json")
        body = refused.json()
        assert body["code"] == "import_refused"
        assert [(e["line"], e["field"]) for e in body["errors"]] == [
            (2, "date"),
            (3, "kind"),
            (3, "name"),
        ]
        assert body["errors"][0]["message"].startswith("Dòng 2, cột Ngày: '31/02/2027'")
        assert count(db, HolidayOverride) == 0

        done = client.post(url, files={"file": ("a.csv", csv_file(GOOD))})
        assert done.status_code == 201 and done.json()["added"] == 3
        assert count(db, HolidayOverride) == 3

    def test_without_a_file_or_with_another_kind_of_file(
        self, client: TestClient, admin: dict, db: Session
    ) -> None:
        form = {"csrf_token": admin["csrf_token"]}
        r = client.post("/admin/holidays/import", data=form, files={"file": ("", b"", "text/csv")})
        assert r.status_code == 422
        assert problems_on(r.text) == ["Hãy chọn một tệp .csv hoặc .xlsx."]
        r = post_file(client, "/admin/holidays/import", "lich.pdf", b"%PDF-1.4")
        assert r.status_code == 422 and "lich.pdf" in problems_on(r.text)[0]
        assert count(db, HolidayOverride) == 0

    def test_the_form_token_is_checked_before_anything(
        self, client: TestClient, admin: dict, db: Session
    ) -> None:
        r = client.post(
            "/admin/holidays/import",
            data={"csrf_token": "x"},
            files={"file": ("a.csv", csv_file(GOOD), "text/csv")},
        )
        assert r.status_code == 403
        api = client.post(
            "/api/v1/holidays/import",
            files={"file": ("a.csv", csv_file(GOOD))},
            headers={"X-CSRF-Token": "x"},
        )
        assert api.status_code == 403
        assert count(db, HolidayOverride) == 0


# == a class's list of learners ===============================================================


@pytest.fixture()
def platform_row(platform: TestPlatform, db: Session) -> Platform:
    from app.platforms.repository import PlatformRepository

    row = PlatformRepository(db).by_issuer_and_client(platform.issuer, platform.client_id)
    assert row is not None
    return row


@pytest.fixture()
def people(platform_row: Platform, db: Session) -> list[User]:
    """Teachers the LMS has told blend727 about (by NRPS or a launch)."""
    rows = [
        User(platform_id=platform_row.id, sub=f"10{i}", name=name, email=email)
        for i, (name, email) in enumerate(
            [
                ("Nguyễn Thị Học", "hoc@thcs-a.edu.vn"),
                ("Lê Văn Hai", "Hai.Le@thcs-a.edu.vn"),
                ("Phạm Thị Ba", "ba@thcs-b.edu.vn"),
                ("Trần Văn Bốn", "bon@thcs-b.edu.vn"),
                ("Võ Thị Năm", "nam@thcs-c.edu.vn"),
            ]
        )
    ]
    db.add_all(rows)
    db.commit()
    return rows


def roster_state(db: Session) -> tuple[Any, ...]:
    """Everything a roster import may change."""
    db.expire_all()
    return (
        tuple(
            db.execute(
                select(Enrolment.user_id, Enrolment.status, Enrolment.cohort_id).order_by(
                    Enrolment.id
                )
            ).all()
        ),
        tuple(db.execute(select(User.id, User.school, User.district).order_by(User.id)).all()),
        tuple(db.execute(select(TrainingClass.id, TrainingClass.enrolled_count)).all()),
    )


ROSTER_HEADER = ("STT", "Họ và tên", "Email", "Mã LMS", "Trường", "Quận/Huyện")


class TestRosterImport:
    def test_a_department_list_enrols_and_sets_school_and_district(
        self, client: TestClient, admin: dict, people: list[User], db: Session
    ) -> None:
        cls = new_class(client)["id"]
        rows = [
            ("DANH SÁCH GIÁO VIÊN THAM GIA BỒI DƯỠNG MÔ ĐUN 4",),
            ROSTER_HEADER,
            (1, "Nguyễn Thị Học", "HOC@thcs-a.edu.vn", "", "THCS A", "Quận 7"),
            (2, "Lê Văn Hai", "", 101, "THCS A", "Quận 7"),  # a number cell in the sheet
            (3, "Phạm Thị Ba", "ba@thcs-b.edu.vn", "", "THCS B", "Huyện Nhà Bè"),
        ]
        r = post_file(
            client, f"/admin/classes/{cls}/roster/import", "ds.xlsx", xlsx_file(rows), kind=XLSX
        )
        assert r.status_code == 303, problems_on(r.text)
        assert r.headers["location"] == (
            f"/admin/classes/{cls}?enrolled=3&already=0&updated=3#roster-import"
        )
        page = unescape(client.get(r.headers["location"]).text)
        assert "3 học viên được ghi danh" in page
        assert "Huyện Nhà Bè" in page
        db.expire_all()
        enrolled = db.execute(
            select(User.name, User.school, User.district, Enrolment.source)
            .join(Enrolment, Enrolment.user_id == User.id)
            .order_by(User.id)
        ).all()
        assert [tuple(e) for e in enrolled] == [
            ("Nguyễn Thị Học", "THCS A", "Quận 7", "import"),
            ("Lê Văn Hai", "THCS A", "Quận 7", "import"),
            ("Phạm Thị Ba", "THCS B", "Huyện Nhà Bè", "import"),
        ]
        assert db.get(TrainingClass, cls).enrolled_count == 3  # type: ignore[union-attr]
        # One event in the audit log says who imported what into which class.
        events = db.scalars(select(AuditEvent).where(AuditEvent.action == "roster.import")).all()
        assert [(e.actor_label, e.class_id, e.after) for e in events] == [
            (
                "Lê Quản Trị",
                cls,
                {
                    "lines": 3,
                    "enrolled": 3,
                    "returned": 0,
                    "already": 0,
                    "people_updated": 3,
                    "cohort_moves": 0,
                },
            )
        ]

        again = post_file(
            client, f"/admin/classes/{cls}/roster/import", "ds.xlsx", xlsx_file(rows), kind=XLSX
        )
        assert again.headers["location"].endswith("?enrolled=0&already=3&updated=0#roster-import")

    def test_nobody_known_a_bad_address_or_the_same_person_twice_refuses_the_file(
        self, client: TestClient, admin: dict, people: list[User], db: Session
    ) -> None:
        cls = new_class(client)["id"]
        before = roster_state(db)
        rows = [
            ("Họ tên", "Email", "Mã LMS", "Trường"),
            ("Nguyễn Thị Học", "hoc@thcs-a.edu.vn", "", "THCS A"),
            ("Người lạ", "la@khong-co.vn", "", "THCS Z"),
            ("Học lần hai", "", "100", ""),
            ("Sai địa chỉ", "khong-phai-email", "", ""),
            ("Không rõ", "", "", "THCS A"),
            ("Mã lạ", "", "999", ""),
        ]
        r = post_file(client, f"/admin/classes/{cls}/roster/import", "ds.csv", csv_file(rows))
        assert r.status_code == 422
        assert problems_on(r.text) == [
            "Dòng 3, cột Email: chưa có ai với e-mail 'la@khong-co.vn' trong khóa học trên "
            "LMS: người đó mở blend727 một lần từ khóa học, hoặc đồng bộ danh sách lớp từ LMS",
            "Dòng 4, cột Mã LMS: cùng một người với dòng 2",
            "Dòng 5, cột Email: 'khong-phai-email' không phải là địa chỉ e-mail",
            "Dòng 6, cột Email: Hãy ghi e-mail hoặc mã người dùng LMS của người đó",
            "Dòng 7, cột Mã LMS: chưa có ai với mã người dùng LMS '999' trong khóa học trên "
            "LMS: người đó mở blend727 một lần từ khóa học, hoặc đồng bộ danh sách lớp từ LMS",
        ]
        assert roster_state(db) == before

    def test_a_file_that_would_pass_the_capacity_is_refused_whole(
        self, client: TestClient, admin: dict, people: list[User], db: Session
    ) -> None:
        cls = new_class(client, capacity=3)["id"]
        r = client.post(f"/api/v1/classes/{cls}/enrolments", json={"user_id": people[4].id})
        assert r.status_code == 201
        before = roster_state(db)
        rows = [("Email",), *[(p.email,) for p in people[:3]]]  # 1 + 3 > 3
        r = post_file(client, f"/admin/classes/{cls}/roster/import", "ds.csv", csv_file(rows))
        assert r.status_code == 422
        assert problems_on(r.text) == [
            "Lớp có 3 chỗ và đã có 1 học viên: 3 học viên mới trong tệp này không đủ chỗ "
            "(thừa 1). Chưa nhập gì."
        ]
        assert roster_state(db) == before
        # two fit
        ok = post_file(client, f"/admin/classes/{cls}/roster/import", "ds.csv", csv_file(rows[:3]))
        assert ok.status_code == 303

    def test_check_only_shows_each_line_and_writes_nothing(
        self, client: TestClient, admin: dict, people: list[User], db: Session
    ) -> None:
        cls = new_class(client)["id"]
        client.post(f"/api/v1/classes/{cls}/enrolments", json={"user_id": people[0].id})
        before = roster_state(db)
        rows = [
            ROSTER_HEADER,
            *[(i, p.name, p.email, "", "THCS X", "Quận 1") for i, p in enumerate(people[:3], 1)],
        ]
        r = post_file(
            client, f"/admin/classes/{cls}/roster/import", "ds.csv", csv_file(rows), check_only=True
        )
        assert r.status_code == 200
        page = unescape(r.text)
        assert "sẽ ghi danh 2 học viên (1 người đã ở trong lớp)" in page
        assert page.count("THCS X") >= 3 and "đã ở trong lớp" in page
        assert roster_state(db) == before

    def test_csv_with_semicolons_no_marks_and_a_cohort_column(
        self, client: TestClient, admin: dict, people: list[User], db: Session
    ) -> None:
        cls = new_class(client)["id"]
        for p in people[:2]:
            client.post(f"/api/v1/classes/{cls}/enrolments", json={"user_id": p.id})
        client.post(f"/api/v1/classes/{cls}/cohorts/split").raise_for_status()
        cohort = db.scalars(select(Cohort).where(Cohort.class_id == cls)).one()
        rows = [
            ("HO VA TEN", "DIA CHI EMAIL", "TRUONG", "QUAN HUYEN", "NHOM"),
            ("Phạm Thị Ba", "ba@thcs-b.edu.vn", "THCS B", "Quận 8", "Nhóm 1"),
            ("Trần Văn Bốn", "bon@thcs-b.edu.vn", "THCS B", "Quận 8", "1"),
            ("Võ Thị Năm", "nam@thcs-c.edu.vn", "THCS C", "Quận 8", ""),
        ]
        r = post_file(
            client,
            f"/admin/classes/{cls}/roster/import",
            "ds.csv",
            csv_file(rows, sep=";", bom=False),
        )
        assert r.status_code == 303, problems_on(r.text)
        db.expire_all()
        placed = db.scalars(select(Enrolment.user_id).where(Enrolment.cohort_id == cohort.id)).all()
        assert set(placed) >= {people[2].id, people[3].id}
        assert (
            db.scalar(select(Enrolment.cohort_id).where(Enrolment.user_id == people[4].id)) is None
        )

        before = roster_state(db)
        bad = [("Email", "Nhóm"), ("nam@thcs-c.edu.vn", "Nhóm 7")]
        r = post_file(client, f"/admin/classes/{cls}/roster/import", "ds.csv", csv_file(bad))
        assert r.status_code == 422
        assert problems_on(r.text)[0].startswith("Dòng 2, cột Nhóm: lớp không có nhóm 'Nhóm 7'")
        assert roster_state(db) == before

    def test_an_email_shared_by_two_people_needs_their_lms_id(
        self, client: TestClient, admin: dict, people: list[User], db: Session
    ) -> None:
        people[1].email = people[0].email
        db.commit()
        cls = new_class(client)["id"]
        before = roster_state(db)
        rows = [("Email", "Mã LMS"), (people[0].email, "")]
        r = post_file(client, f"/admin/classes/{cls}/roster/import", "ds.csv", csv_file(rows))
        assert r.status_code == 422 and "mã người dùng LMS" in problems_on(r.text)[0]
        assert roster_state(db) == before
        rows = [("Email", "Mã LMS"), (people[0].email, people[1].sub)]
        r = post_file(client, f"/admin/classes/{cls}/roster/import", "ds.csv", csv_file(rows))
        assert r.status_code == 303
        assert count(db, Enrolment, Enrolment.user_id == people[1].id) == 1

    def test_the_api_dry_run_then_import_and_another_lms_gets_404(
        self,
        client: TestClient,
        admin: dict,
        people: list[User],
        db: Session,
        platform_http: str,
        factories: Any,
    ) -> None:
        cls = new_class(client)["id"]
        url = f"/api/v1/classes/{cls}/roster/import"
        data = csv_file([("Email", "Trường"), *[(p.email, "THCS API") for p in people[:2]]])
        checked = client.post(url + "?dry_run=1", files={"file": ("a.csv", data)})
        assert checked.status_code == 200, checked.text
        assert checked.json()["enrolled"] == 2 and checked.json()["dry_run"] is True
        assert count(db, Enrolment) == 0
        done = client.post(url, files={"file": ("a.csv", data)})
        assert done.status_code == 200
        assert [x["action"] for x in done.json()["learners"]] == ["enrol", "enrol"]
        assert count(db, Enrolment) == 2

        other = TestPlatform.create(platform_http, issuer="https://other.test", client_id="c-2")
        factories.register(other, deployment_ids=["1"])
        b = TestClient(client.app, base_url=TOOL_BASE_URL, follow_redirects=False)
        sign_in(b, other, ADMIN, "admin-b", "Quản trị B")
        assert b.post(url, files={"file": ("a.csv", data)}).status_code == 404
        assert (
            b.post(
                f"/admin/classes/{cls}/roster/import",
                data={"csrf_token": b.headers["X-CSRF-Token"]},
                files={"file": ("a.csv", data, "text/csv")},
            ).status_code
            == 404
        )
        assert count(db, Enrolment) == 2

    def test_a_person_switched_off_is_not_enrolled(
        self, client: TestClient, admin: dict, people: list[User], db: Session
    ) -> None:
        from app.core.time import utcnow

        people[0].disabled_at = utcnow()
        db.commit()
        cls = new_class(client)["id"]
        r = post_file(
            client,
            f"/admin/classes/{cls}/roster/import",
            "ds.csv",
            csv_file([("Email",), (people[0].email,)]),
        )
        assert r.status_code == 422
        assert "tắt" in problems_on(r.text)[0]
        assert count(db, Enrolment) == 0

    def test_a_core_trainer_of_the_class_is_not_enrolled_as_a_learner(
        self, client: TestClient, admin: dict, people: list[User], db: Session
    ) -> None:
        cls = new_class(client)["id"]
        r = client.post(f"/api/v1/classes/{cls}/trainers", json={"user_id": people[0].id})
        assert r.status_code == 201
        before = roster_state(db)
        rows = [("Email",), (people[0].email,), (people[1].email,)]
        r = post_file(client, f"/admin/classes/{cls}/roster/import", "ds.csv", csv_file(rows))
        assert r.status_code == 422
        assert problems_on(r.text) == [
            "Dòng 2, cột Email: 'hoc@thcs-a.edu.vn' là giáo viên cốt cán của lớp này, "
            "không phải học viên"
        ]
        assert roster_state(db) == before
