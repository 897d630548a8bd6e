"""The administrator's overview, targets and reports for the next level up.

A small world — two districts, three schools (and a learner with neither), two modules of
the two tracks (one with result tiers), a wave, and learners with every classification —
is built through the API like an administrator would (classes, enrolments, departures);
module results are written directly, as grading would have stored them. Then the overview
figures, the XLSX cells, the CSV rows, the printable page, the period filter, the targets
with what was achieved and the gap, the compliance warnings, who may see all this, and
tenant isolation are checked against that world.

Headings are checked as the Vietnamese catalogue translates their message ids; the literal
Vietnamese headings the department expects are checked once in ``TestVietnameseHeadings``.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from html import unescape

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.core.errors import ValidationFailed
from app.core.i18n import gettext
from app.core.time import local, utcnow
from app.grading.models import ModuleResultRow
from app.grading.rules import GradePolicy, Tier, Weights
from app.identity.models import User
from app.platforms.models import Platform
from app.reports.charts import Bar, Part, bar_chart
from app.reports.models import Target
from app.reports.rules import (
    Counts,
    LearnerGroup,
    Period,
    completion_test,
    name_key,
    parse_period,
    target_progress,
    total,
)
from tests.factories import Factories
from tests.lti_platform import INST_ADMIN, INSTRUCTOR, LEARNER, SYS_ADMIN, TestPlatform

ADMIN = [INST_ADMIN, SYS_ADMIN]
YEAR = local(utcnow()).year
LAST_YEAR = YEAR - 1
NHA_BE, Q7 = "Huyện Nhà Bè", "Quận 7"
PHUOC_KIEN, LE_LOI, NGUYEN_DU = "THCS Phước Kiển", "THCS Lê Lợi", "THCS Nguyễn Du"
WAVE = "Đợt 1"


def vi(message: str) -> str:
    return gettext("vi", message)


# -- a small browser -------------------------------------------------------------------------


def sign_in(
    client: TestClient, platform: TestPlatform, roles: list[str], sub: str, *, locale: str = "en"
) -> str:
    """Launch from the LMS; return the session's form token (also set as X-CSRF-Token)."""
    client.cookies.clear()
    client.headers.pop("X-CSRF-Token", None)
    response = platform.launch(client, roles=roles, sub=sub, name=f"Người {sub}", locale=locale)
    assert response.status_code == 303
    token = client.get("/api/v1/me").json()["csrf_token"]
    client.headers["X-CSRF-Token"] = token
    return token


BLOCK = r"</?(?:p|div|li|ul|tr|td|th|h\d|section|table|thead|tbody|tfoot|dl|dt|dd|nav|form)\b[^>]*>"


def text(html: str) -> str:
    html = re.sub(BLOCK, " ", html)
    return " ".join(unescape(re.sub(r"<[^>]+>", "", html)).split())


def table_rows(html: str, table_class: str) -> list[list[str]]:
    """The cells' text of each body row of the first table with this class."""
    found = re.search(rf'<table class="[^"]*\b{table_class}\b[^"]*">(.*?)</table>', html, re.S)
    assert found, table_class
    body = re.search(r"<tbody>(.*?)</tbody>", found.group(1), re.S)
    assert body
    return [
        [text(c) for c in re.findall(r"<t[hd]\b.*?</t[hd]>", row, re.S)]
        for row in re.findall(r"<tr\b.*?</tr>", body.group(1), re.S)
    ]


def field_error(html: str, name: str) -> str:
    found = re.search(rf'<p class="field-error" id="err-{re.escape(name)}">(.*?)</p>', html, re.S)
    return text(found.group(1)) if found else ""


def figure(html: str, name: str) -> str:
    found = re.search(rf'<dd data-figure="{name}">(.*?)</dd>', html, re.S)
    assert found, name
    return text(found.group(1))


# -- the world ---------------------------------------------------------------------------------


def _weekday_on_or_after(day: date, weekday: int) -> date:
    return day + timedelta(days=(weekday - day.weekday()) % 7)


def _two_days(year: int, month: int, weekday: int) -> list[str]:
    """Two working days in a month without public holidays (first <weekday> and the next)."""
    first = _weekday_on_or_after(date(year, month, 8), weekday)
    return [first.isoformat(), (first + timedelta(days=1)).isoformat()]


@dataclass
class World:
    c1: int  # GVPT 4 (tiers khá/giỏi), wave 1, this year
    c2: int  # CBQL 4, wave 1, this year
    c3: int  # GVPT 4, no wave, last year
    c3_ends: date
    users: dict[str, User]


TIERS = [
    {"code": "kha", "name_vi": "Khá", "name_en": "Good", "min_score": 7.0},
    {"code": "gioi", "name_vi": "Giỏi", "name_en": "Very good", "min_score": 8.5},
]

# sub → (district, school)
PEOPLE = {
    "a1": (Q7, NGUYEN_DU),
    "a2": (Q7, NGUYEN_DU),
    "a3": (Q7, NGUYEN_DU),
    "a4": (Q7, NGUYEN_DU),
    "a5": (Q7, NGUYEN_DU),
    "b1": (Q7, LE_LOI),
    "b2": (Q7, LE_LOI),
    "b3": (Q7, LE_LOI),
    "c1": (NHA_BE, PHUOC_KIEN),
    "c2": (NHA_BE, PHUOC_KIEN),
    "c3": (NHA_BE, PHUOC_KIEN),
    "d1": (None, None),
    "m1": (Q7, NGUYEN_DU),
    "m2": (NHA_BE, PHUOC_KIEN),
    "m3": (Q7, LE_LOI),
    "p1": (Q7, LE_LOI),
}
# class → [(sub, classification or None for no result yet, final, leaves)]
RESULTS = {
    "c1": [
        ("a1", "gioi", True, False),
        ("a2", "kha", True, False),
        ("a3", "complete", True, False),
        ("a4", "not_complete", True, False),
        ("a5", None, False, False),
        ("b1", "complete", True, False),
        ("b2", "incomplete", False, False),
        ("b3", "incomplete", False, True),  # left without completing
        ("c1", "complete", True, False),
        ("c2", "gioi", True, False),
        ("c3", "complete", True, True),  # the LMS dropped them after they completed
        ("d1", "not_complete", True, False),
    ],
    "c2": [
        ("m1", "complete", True, False),
        ("m2", "not_complete", True, False),
        ("m3", None, False, False),
    ],
    "c3": [
        ("a1", "complete", True, False),  # a1 completed GVPT 4 last year as well
        ("p1", "complete", True, False),
    ],
}


def _module_id(client: TestClient, key: str) -> int:
    return next(m["id"] for m in client.get("/api/v1/modules").json() if m["key"] == key)


def _new_class(client: TestClient, code: str, module: int, days: list[str], **extra) -> dict:
    body = {
        "code": code,
        "name": f"Lớp {code}",
        "module_id": module,
        "level": "thcs",
        "in_person_dates": days,
        "venue": "Trường THCS Nguyễn Du",
    } | extra
    response = client.post("/api/v1/classes", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def build_world(client: TestClient, db: Session, platform_row: Platform) -> World:
    gvpt4 = _module_id(client, "gvpt-4")
    spec = client.get(f"/api/v1/modules/{gvpt4}").json()["spec"]
    spec["assessment"]["tiers"] = TIERS
    response = client.put(f"/api/v1/modules/{gvpt4}", json={"spec": spec, "note": "xếp loại"})
    assert response.status_code == 200, response.text
    wave = client.post("/api/v1/waves", json={"name": WAVE, "year": YEAR})
    assert wave.status_code == 201, wave.text
    wave_id = wave.json()["id"]

    c1 = _new_class(client, "M4-GV", gvpt4, _two_days(YEAR, 12, 3), wave_id=wave_id)
    c2 = _new_class(
        client, "M4-QL", _module_id(client, "cbql-4"), _two_days(YEAR, 10, 1), wave_id=wave_id
    )
    c3 = _new_class(client, "M4-GV-CU", gvpt4, _two_days(LAST_YEAR, 6, 1))
    assert c3["ends_on"].startswith(str(LAST_YEAR)) and c1["ends_on"].startswith(str(YEAR))

    users = {
        sub: User(
            platform_id=platform_row.id,
            sub=sub,
            name=f"Giáo viên {sub}",
            district=district,
            school=school,
        )
        for sub, (district, school) in PEOPLE.items()
    }
    db.add_all(users.values())
    db.commit()
    classes = {"c1": c1["id"], "c2": c2["id"], "c3": c3["id"]}
    for key, rows in RESULTS.items():
        class_id = classes[key]
        for sub, classification, final, leaves in rows:
            enrolled = client.post(
                f"/api/v1/classes/{class_id}/enrolments", json={"user_id": users[sub].id}
            )
            assert enrolled.status_code == 201, enrolled.text
            if classification is not None:
                db.add(
                    ModuleResultRow(
                        enrolment_id=enrolled.json()["id"],
                        classification=classification,
                        final=final,
                        score=Decimal("9.00") if final else None,
                    )
                )
                db.commit()
            if leaves:
                gone = client.delete(f"/api/v1/classes/{class_id}/enrolments/{users[sub].id}")
                assert gone.status_code == 204
    return World(c1["id"], c2["id"], c3["id"], date.fromisoformat(c3["ends_on"]), users)


@pytest.fixture()
def platform_row(platform: TestPlatform, db: Session) -> Platform:
    row = db.scalar(select(Platform).where(Platform.issuer == platform.issuer))
    assert row is not None
    return row


@pytest.fixture()
def admin(client: TestClient, platform: TestPlatform) -> str:
    return sign_in(client, platform, ADMIN, "admin-1")


@pytest.fixture()
def world(client: TestClient, admin: str, db: Session, platform_row: Platform) -> World:
    return build_world(client, db, platform_row)


# What the world gives for this year, per school / district, module and wave.
# enrolled, in progress, completed, khá, giỏi, not complete, not all scored, left
NOT_GIVEN = "(not given)"
SCHOOL_ROWS = [
    [NHA_BE, PHUOC_KIEN, "GVPT 4", WAVE, 3, 0, 3, 0, 1, 0, 0, 0],
    [NHA_BE, PHUOC_KIEN, "CBQL 4", WAVE, 1, 0, 0, 0, 0, 1, 0, 0],
    [Q7, LE_LOI, "GVPT 4", WAVE, 2, 1, 1, 0, 0, 0, 1, 1],
    [Q7, LE_LOI, "CBQL 4", WAVE, 1, 1, 0, 0, 0, 0, 1, 0],
    [Q7, NGUYEN_DU, "GVPT 4", WAVE, 5, 1, 3, 1, 1, 1, 1, 0],
    [Q7, NGUYEN_DU, "CBQL 4", WAVE, 1, 0, 1, 0, 0, 0, 0, 0],
    [NOT_GIVEN, NOT_GIVEN, "GVPT 4", WAVE, 1, 0, 0, 0, 0, 1, 0, 0],
]
DISTRICT_ROWS = [
    [NHA_BE, "GVPT 4", WAVE, 3, 0, 3, 0, 1, 0, 0, 0],
    [NHA_BE, "CBQL 4", WAVE, 1, 0, 0, 0, 0, 1, 0, 0],
    [Q7, "GVPT 4", WAVE, 7, 2, 4, 1, 1, 1, 2, 1],
    [Q7, "CBQL 4", WAVE, 2, 1, 1, 0, 0, 0, 1, 0],
    [NOT_GIVEN, "GVPT 4", WAVE, 1, 0, 0, 0, 0, 1, 0, 0],
]
TOTAL = [14, 3, 8, 1, 2, 3, 3, 1]
COUNT_HEADINGS = [
    "Enrolled",
    "In progress",
    "Completed",
    "Khá",
    "Giỏi",
    "Not complete",
    "Not all components scored",
    "Left the class",
]


def _titles(client: TestClient) -> dict[str, str]:
    return {m["key"]: m["title"] for m in client.get("/api/v1/modules").json()}


def _module_key(label: str) -> str:
    track, number = label.split()
    return f"{track.lower()}-{number}"


def _vi_row(row: list, titles: dict[str, str], *, schools: bool) -> list:
    """An expected row as the Vietnamese export writes it (with the module's title)."""
    names = 2 if schools else 1
    place = [vi(NOT_GIVEN) if v == NOT_GIVEN else v for v in row[:names]]
    label, wave = row[names], row[names + 1]
    return [*place, label, titles[_module_key(label)], wave, *row[names + 2 :]]


def _vi_headings(*, schools: bool) -> list[str]:
    names = ["District", *(["School"] if schools else []), "Module", "Module title", "Wave"]
    return [vi(n) for n in names] + [h if h in ("Khá", "Giỏi") else vi(h) for h in COUNT_HEADINGS]


def _vi_total(*, schools: bool) -> list:
    return [vi("Total"), *([None] * (4 if schools else 3)), *TOTAL]


# -- tests -------------------------------------------------------------------------------------


class TestOverview:
    def test_figures_charts_and_tables(self, client: TestClient, world: World) -> None:
        page = client.get("/admin/overview")
        assert page.status_code == 200, page.text
        html = page.text
        assert f"01/01/{YEAR} to 31/12/{YEAR}" in text(html)
        assert figure(html, "enrolled") == "14"
        assert figure(html, "in_progress") == "3"
        assert figure(html, "completed") == "8 (57.1%)"
        assert figure(html, "not_complete") == "3"
        assert figure(html, "incomplete") == "3"
        assert figure(html, "left") == "1"

        # enrolled, in progress, completed, rate, khá, giỏi, not complete, not scored, left
        assert table_rows(html, "counts-wave") == [
            [WAVE, "14", "3", "8", "57.1%", "1", "2", "3", "3", "1"]
        ]
        modules = table_rows(html, "counts-module")
        assert [m[0].split()[:2] for m in modules] == [["GVPT", "4"], ["CBQL", "4"]]
        assert [m[1:] for m in modules] == [
            ["11", "2", "7", "63.6%", "1", "2", "2", "2", "1"],
            ["3", "1", "1", "33.3%", "0", "0", "1", "1", "0"],
        ]
        assert table_rows(html, "counts-level") == [
            ["Lower secondary school", "14", "3", "8", "57.1%", "1", "2", "3", "3", "1"]
        ]
        assert table_rows(html, "counts-district") == [
            [NHA_BE, "4", "0", "3", "75%", "0", "1", "1", "0", "0"],
            [Q7, "9", "3", "5", "55.6%", "1", "1", "1", "3", "1"],
            [NOT_GIVEN, "1", "0", "0", "0%", "0", "0", "1", "0", "0"],
        ]
        assert table_rows(html, "counts-school") == [
            [PHUOC_KIEN, NHA_BE, "4", "0", "3", "75%", "0", "1", "1", "0", "0"],
            [LE_LOI, Q7, "3", "2", "1", "33.3%", "0", "0", "0", "2", "1"],
            [NGUYEN_DU, Q7, "6", "1", "4", "66.7%", "1", "1", "1", "1", "0"],
            [NOT_GIVEN, NOT_GIVEN, "1", "0", "0", "0%", "0", "0", "1", "0", "0"],
        ]
        # The classification chart and its table: every classification, with the tiers.
        assert table_rows(html, "classifications") == [
            ["Not all components scored", "3", "21.4%"],
            ["Not complete", "3", "21.4%"],
            ["Complete", "5", "35.7%"],
            ["Good", "1", "7.1%"],
            ["Very good", "2", "14.3%"],
        ]

    def test_the_charts_are_inline_svg_described_for_everyone(
        self, client: TestClient, world: World
    ) -> None:
        html = client.get("/admin/overview").text
        charts = re.findall(r"<svg\b.*?</svg>", html, re.S)
        assert len(charts) == 2
        for svg in charts:
            assert 'role="img"' in svg and "<title" in svg and "<desc" in svg
            assert "style=" not in svg and "<script" not in svg
        classes, districts = charts
        assert len(re.findall(r"<rect\b", classes)) == 5
        assert "Very good: 2" in classes
        # One bar per district: completed, not complete, not all scored, stacked.
        assert [t for t in re.findall(r'class="label">([^<]+)<', districts)] == [
            NHA_BE,
            Q7,
            NOT_GIVEN,
        ]
        assert "Completed: 5" in districts and "75%" in districts
        # No request leaves the page: no outside address, no script at all.
        assert not re.search(r'(?:src|href)="https?://', html)
        assert "<script" not in html and "style=" not in html

    def test_vietnamese_by_default_with_vietnamese_numbers(
        self, client: TestClient, platform: TestPlatform, world: World
    ) -> None:
        sign_in(client, platform, ADMIN, "admin-1", locale="vi")
        html = client.get("/admin/overview").text
        assert '<html lang="vi">' in html
        assert figure(html, "completed") == "8 (57,1%)"

    def test_every_compliance_warning_links_to_its_class(
        self, client: TestClient, world: World
    ) -> None:
        html = client.get("/admin/overview").text
        rows = table_rows(html, "warnings")
        # The two classes of this year have learners but no cohorts yet.
        codes = sorted({row[0].split()[0] for row in rows})
        assert codes == ["M4-GV", "M4-QL"]
        assert any(
            "Every cohort has a core trainer" in row[1]
            and "The class has learners but no cohorts yet" in row[2]
            for row in rows
        )
        assert f'<a href="/admin/classes/{world.c1}">M4-GV</a>' in html
        assert f'<a href="/admin/classes/{world.c2}">M4-QL</a>' in html
        api = client.get("/api/v1/reports/overview").json()
        urls = {w["url"] for w in api["warnings"]}
        assert urls == {f"/admin/classes/{world.c1}", f"/admin/classes/{world.c2}"}
        assert all(w["rule"]["status"] == "fail" for w in api["warnings"])

    def test_the_api_gives_the_same_figures(self, client: TestClient, world: World) -> None:
        body = client.get("/api/v1/reports/overview", params={"year": YEAR}).json()
        assert body["period"] == {"from": f"{YEAR}-01-01", "to": f"{YEAR}-12-31"}
        assert body["total"] == {
            "enrolled": 14,
            "in_progress": 3,
            "completed": 8,
            "left": 1,
            "classifications": {
                "complete": 5,
                "gioi": 2,
                "incomplete": 3,
                "kha": 1,
                "not_complete": 3,
            },
            "completion_rate": "57.1",
        }
        assert [t["code"] for t in body["tiers"]] == ["kha", "gioi"]
        assert [(d["name"], d["enrolled"]) for d in body["by_district"]] == [
            (NHA_BE, 4),
            (Q7, 9),
            ("", 1),
        ]
        assert [s["district"] for s in body["by_school"]] == [NHA_BE, Q7, Q7, ""]

    def test_the_period_filters_classes_by_their_end_date(
        self, client: TestClient, world: World
    ) -> None:
        html = client.get(f"/admin/overview?year={LAST_YEAR}").text
        assert figure(html, "enrolled") == "2" and figure(html, "completed") == "2 (100%)"
        assert table_rows(html, "counts-wave") == [
            ["(no wave)", "2", "0", "2", "100%", "0", "0", "0", "0", "0"]
        ]
        ends = world.c3_ends.isoformat()
        just_after = (world.c3_ends + timedelta(days=1)).isoformat()
        on_the_day = client.get(f"/api/v1/reports/overview?from={ends}&to={ends}").json()
        assert on_the_day["total"]["enrolled"] == 2
        after = client.get(f"/api/v1/reports/overview?from={just_after}&to={YEAR}-12-31").json()
        assert after["total"]["enrolled"] == 14

    def test_a_bad_period_is_explained_next_to_its_field(
        self, client: TestClient, world: World
    ) -> None:
        page = client.get(f"/admin/overview?from={YEAR}-12-31&to={YEAR}-01-01")
        assert page.status_code == 422
        assert "comes before its start" in field_error(page.text, "to")
        page = client.get("/admin/overview?from=31/12/2025")
        assert page.status_code == 422
        assert field_error(page.text, "from") == "Enter a valid date."
        api = client.get("/api/v1/reports/overview?from=nope")
        assert api.status_code == 422
        assert api.headers["content-type"].startswith("application/problem+json")
        assert api.json()["errors"][0]["field"] == "from"


class TestReportDownloads:
    def test_xlsx_cell_by_cell(self, client: TestClient, world: World) -> None:
        response = client.get(f"/admin/reports/export.xlsx?from={YEAR}-01-01&to={YEAR}-12-31")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith(
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        )
        assert (
            f'filename="bao-cao-727_{YEAR}-01-01_{YEAR}-12-31.xlsx"'
            in response.headers["content-disposition"]
        )
        book = load_workbook(io.BytesIO(response.content))
        assert book.sheetnames == [vi("By school"), vi("By district").replace("/", "-")]
        titles = _titles(client)
        for sheet, expected, schools in (
            (book.worksheets[0], SCHOOL_ROWS, True),
            (book.worksheets[1], DISTRICT_ROWS, False),
        ):
            rows = [list(r) for r in sheet.iter_rows(values_only=True)]
            assert rows[0][0] == vi("Results of the 7-2-7 in-service training")
            assert rows[1][0] == vi("Classes that end from %(start)s to %(end)s") % {
                "start": f"01/01/{YEAR}",
                "end": f"31/12/{YEAR}",
            }
            assert rows[2] == _vi_headings(schools=schools)
            assert rows[3:-1] == [_vi_row(r, titles, schools=schools) for r in expected]
            assert rows[-1] == _vi_total(schools=schools)
            counts = [r[-8:] for r in rows[3:-1]]
            assert all(isinstance(v, int) for row in counts for v in row)

    def test_csv_rows_with_a_bom(self, client: TestClient, world: World) -> None:
        response = client.get(f"/admin/reports/export.csv?year={YEAR}")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/csv")
        assert (
            f"bao-cao-727_{YEAR}-01-01_{YEAR}-12-31.csv" in response.headers["content-disposition"]
        )
        assert response.content.startswith(b"\xef\xbb\xbf")
        rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
        titles = _titles(client)
        assert rows[0] == _vi_headings(schools=True)
        assert rows[1:-1] == [
            [str(v) for v in _vi_row(r, titles, schools=True)] for r in SCHOOL_ROWS
        ]
        assert rows[-1] == [vi("Total"), "", "", "", "", *(str(n) for n in TOTAL)]

    def test_the_annual_report_is_one_click(self, client: TestClient, world: World) -> None:
        page = client.get("/admin/reports")
        assert page.status_code == 200
        link = re.search(r'href="(/admin/reports/export\.xlsx\?year=(\d{4}))"', page.text)
        assert link and link.group(2) == str(YEAR)
        one_click = client.get(link.group(1))
        period = client.get(f"/admin/reports/export.xlsx?from={YEAR}-01-01&to={YEAR}-12-31")
        first = [list(r) for r in load_workbook(io.BytesIO(one_click.content)).active.values]
        second = [list(r) for r in load_workbook(io.BytesIO(period.content)).active.values]
        assert first == second and len(first) == 3 + len(SCHOOL_ROWS) + 1

    def test_last_year_has_only_last_years_classes(self, client: TestClient, world: World) -> None:
        response = client.get(f"/admin/reports/export.csv?year={LAST_YEAR}")
        rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
        title = _titles(client)["gvpt-4"]
        no_wave = vi("(no wave)")
        assert rows[1:] == [
            [Q7, LE_LOI, "GVPT 4", title, no_wave, "1", "0", "1", "0", "0", "0", "0", "0"],
            [Q7, NGUYEN_DU, "GVPT 4", title, no_wave, "1", "0", "1", "0", "0", "0", "0", "0"],
            [vi("Total"), "", "", "", "", "2", "0", "2", "0", "0", "0", "0", "0"],
        ]

    def test_the_printable_page(self, client: TestClient, world: World) -> None:
        page = client.get(f"/admin/reports/print?year={YEAR}")
        assert page.status_code == 200
        html = page.text
        rows = table_rows(html, "report-schools")
        titles = _titles(client)
        assert rows == [
            [
                r[0],
                r[1],
                f"{r[2]} {titles[_module_key(r[2])]}",
                r[3],
                *(str(n) for n in r[4:]),
            ]
            for r in SCHOOL_ROWS
        ]
        total = re.search(r'<tr class="total">(.*?)</tr>', html, re.S)
        assert total and text(total.group(1)) == "Total " + " ".join(str(n) for n in TOTAL)
        assert len(table_rows(html, "report-districts")) == len(DISTRICT_ROWS)
        assert "<script" not in html and "style=" not in html

    def test_the_reports_page_summarises_by_district(
        self, client: TestClient, world: World
    ) -> None:
        html = client.get(f"/admin/reports?from={YEAR}-01-01&to={YEAR}-12-31").text
        rows = table_rows(html, "report-districts")
        assert [r[:3] for r in rows] == [r[:3] for r in DISTRICT_ROWS]
        assert f"/admin/reports/export.csv?from={YEAR}-01-01&amp;to={YEAR}-12-31" in html

    def test_the_report_api(self, client: TestClient, world: World) -> None:
        body = client.get(f"/api/v1/reports/report?year={YEAR}").json()
        assert len(body["schools"]) == len(SCHOOL_ROWS)
        first = body["schools"][0]
        assert (first["district"], first["school"], first["module_key"], first["wave"]) == (
            NHA_BE,
            PHUOC_KIEN,
            "gvpt-4",
            WAVE,
        )
        assert first["completed"] == 3 and first["classifications"]["gioi"] == 1
        assert body["total"]["enrolled"] == 14


class TestTargets:
    def _add(self, client: TestClient, token: str, **fields: str):
        data = {
            "csrf_token": token,
            "name": "Mục tiêu",
            "track": "gvpt",
            "level": "",
            "district": "",
            "module_key": "",
            "staff_count": "20",
            "percent": "30",
            "due_on": f"{YEAR}-12-31",
            "note": "",
        } | fields
        return client.post("/admin/targets", data=data)

    def test_achieved_and_gap(self, client: TestClient, admin: str, world: World) -> None:
        added = self._add(
            client, admin, name="CBQL 100%", track="cbql", staff_count="4", percent="100"
        )
        assert added.status_code == 303 and added.headers["location"].endswith("done=target")
        assert self._add(client, admin, name="GVPT 30%").status_code == 303
        assert (
            self._add(
                client,
                admin,
                name="GVPT Q7 M4 THCS",
                district=f" {Q7} ",
                module_key="gvpt-4",
                level="thcs",
                staff_count="1.000",
                percent="12,5",
                due_on=f"{LAST_YEAR}-12-31",
            ).status_code
            == 303
        )
        page = client.get("/admin/targets?done=target")
        assert "The target was added." in page.text
        rows = table_rows(page.text, "targets")
        # Ordered by due date. Last year's: a1 and p1 of Quận 7 completed GVPT 4 then;
        # 12.5% of 1,000 is 125 people, so 123 are missing and the date has passed.
        assert rows[0][:6] == [
            "GVPT Q7 M4 THCS GVPT (teachers) · Lower secondary school · Quận 7 · GVPT 4",
            f"31/12/{LAST_YEAR}",
            "12.5% of 1,000 staff: 125 people",
            "2 people (0.2%)",
            "123 people short (12.3 points)",
            "✗ Missed",
        ]
        # Managers: only m1 completed (m2 did not, m3 is still learning).
        assert rows[1][:6] == [
            "CBQL 100% CBQL (school managers)",
            f"31/12/{YEAR}",
            "100% of 4 staff: 4 people",
            "1 person (25%)",
            "3 people short (75 points)",
            "… Not reached yet",
        ]
        # Teachers: 8 different people completed GVPT 4 (a1 twice; c3 although dropped).
        assert rows[2][:6] == [
            "GVPT 30% GVPT (teachers)",
            f"31/12/{YEAR}",
            "30% of 20 staff: 6 people",
            "8 people (40%)",
            "—",
            "✓ Reached",
        ]
        overview = client.get("/admin/overview").text
        listed = [row[0] for row in table_rows(overview, "targets")]
        assert [n.split(" ")[:2] for n in listed] == [
            ["GVPT", "Q7"],
            ["CBQL", "100%"],
            ["GVPT", "30%"],
        ]
        api = client.get("/api/v1/reports/targets").json()
        assert [(t["name"], t["progress"]["achieved"], t["progress"]["gap"]) for t in api] == [
            ("GVPT Q7 M4 THCS", 2, 123),
            ("CBQL 100%", 1, 3),
            ("GVPT 30%", 8, 0),
        ]
        assert api[0]["district"] == Q7 and api[0]["percent"] == "12.5"

    def test_deleting_a_target(self, client: TestClient, admin: str, world: World) -> None:
        assert self._add(client, admin, name="Xoá tôi").status_code == 303
        page = client.get("/admin/targets").text
        found = re.search(r'action="(/admin/targets/(\d+)/delete)"', page)
        assert found
        gone = client.post(found.group(1), data={"csrf_token": admin})
        assert gone.status_code == 303
        page = client.get(gone.headers["location"]).text
        assert "The target was deleted." in page and "Xoá tôi" not in page
        again = client.post(found.group(1), data={"csrf_token": admin})
        assert again.status_code == 404

    def test_bad_input_is_explained_and_writes_nothing(
        self, client: TestClient, admin: str, db: Session, world: World
    ) -> None:
        response = self._add(
            client, admin, name="", staff_count="0", percent="150", due_on="31/12/2026"
        )
        assert response.status_code == 422
        html = response.text
        assert "Nothing was saved" in html
        assert field_error(html, "name") == "This field is required."
        assert field_error(html, "staff_count").startswith("Enter the number of staff")
        assert field_error(html, "percent").startswith("Enter a percentage above 0")
        assert field_error(html, "due_on") == "Enter a valid date between 2000 and 2100."
        assert 'value="150"' in html and 'value="31/12/2026"' in html  # input kept
        other_track = self._add(client, admin, track="gvpt", module_key="cbql-4")
        assert other_track.status_code == 422
        assert "other staff group" in field_error(other_track.text, "module_key")
        unknown = self._add(client, admin, module_key="gvpt-99")
        assert field_error(unknown.text, "module_key") == "Choose a module of this catalogue."
        no_token = self._add(client, "forged")
        assert no_token.status_code == 403
        assert db.scalar(select(func.count()).select_from(Target)) == 0

    def test_the_api_creates_refuses_and_deletes(
        self, client: TestClient, admin: str, db: Session, world: World
    ) -> None:
        body = {
            "name": "Quản lý 2024",
            "track": "cbql",
            "staff_count": 4,
            "percent": "100",
            "due_on": f"{YEAR}-12-31",
        }
        created = client.post("/api/v1/reports/targets", json=body)
        assert created.status_code == 201, created.text
        assert created.json()["progress"]["achieved"] == 1
        bad = client.post("/api/v1/reports/targets", json=body | {"percent": "0", "staff_count": 0})
        assert bad.status_code == 422
        assert bad.headers["content-type"].startswith("application/problem+json")
        assert {e["field"] for e in bad.json()["errors"]} == {"percent", "staff_count"}
        wrong = client.post("/api/v1/reports/targets", json=body | {"module_key": "gvpt-4"})
        assert wrong.status_code == 422 and wrong.json()["errors"][0]["field"] == "module_key"
        assert db.scalar(select(func.count()).select_from(Target)) == 1
        target_id = created.json()["id"]
        assert client.delete(f"/api/v1/reports/targets/{target_id}").status_code == 204
        assert client.delete(f"/api/v1/reports/targets/{target_id}").status_code == 404
        client.headers.pop("X-CSRF-Token")
        assert client.post("/api/v1/reports/targets", json=body).status_code == 403


class TestOnlyAdministratorsOfThisLMS:
    def test_teachers_and_trainers_get_403(
        self, client: TestClient, platform: TestPlatform, admin: str, world: World
    ) -> None:
        gets = [
            "/admin/overview",
            "/admin/targets",
            "/admin/reports",
            f"/admin/reports/export.xlsx?year={YEAR}",
            f"/admin/reports/export.csv?year={YEAR}",
            f"/admin/reports/print?year={YEAR}",
            "/api/v1/reports/overview",
            "/api/v1/reports/report",
            "/api/v1/reports/targets",
        ]
        for roles, sub in (([LEARNER], "a1"), ([INSTRUCTOR], "trainer-1")):
            token = sign_in(client, platform, roles, sub)
            for path in gets:
                assert client.get(path).status_code == 403, (sub, path)
            assert (
                client.post(
                    "/admin/targets", data={"csrf_token": token, "name": "x", "track": "gvpt"}
                ).status_code
                == 403
            )
            assert (
                client.post("/admin/targets/1/delete", data={"csrf_token": token}).status_code
                == 403
            )
            api = client.post("/api/v1/reports/targets", json={"name": "x"})
            assert api.status_code == 403
            assert api.headers["content-type"].startswith("application/problem+json")

    def test_nobody_signed_in_gets_401(self, client: TestClient) -> None:
        assert client.get("/admin/overview").status_code == 401
        assert client.get("/api/v1/reports/overview").status_code == 401

    def test_another_lms_sees_none_of_it(
        self,
        client: TestClient,
        platform_http: str,
        factories: Factories,
        admin: str,
        world: World,
    ) -> None:
        created = client.post(
            "/api/v1/reports/targets",
            json={
                "name": "Của LMS một",
                "track": "gvpt",
                "staff_count": 10,
                "percent": "50",
                "due_on": f"{YEAR}-12-31",
            },
        )
        target_id = created.json()["id"]
        other = TestPlatform.create(platform_http, issuer="https://other-lms.test", client_id="c9")
        factories.register(other, deployment_ids=["1"])
        token = sign_in(client, other, ADMIN, "admin-1")
        html = client.get("/admin/overview").text
        assert figure(html, "enrolled") == "0"
        for name in (NGUYEN_DU, Q7, "M4-GV", "Của LMS một"):
            assert name not in html
        body = client.get(f"/api/v1/reports/overview?year={YEAR}").json()
        assert body["total"]["enrolled"] == 0 and body["warnings"] == [] and body["targets"] == []
        rows = list(
            csv.reader(
                io.StringIO(
                    client.get(f"/admin/reports/export.csv?year={YEAR}").content.decode("utf-8-sig")
                )
            )
        )
        assert rows[1:] == [[vi("Total"), "", "", "", "", "0", "0", "0", "0", "0", "0"]]
        assert NGUYEN_DU not in client.get(f"/admin/reports/print?year={YEAR}").text
        assert client.get("/api/v1/reports/targets").json() == []
        refused = client.post(f"/admin/targets/{target_id}/delete", data={"csrf_token": token})
        assert refused.status_code == 404
        assert client.delete(f"/api/v1/reports/targets/{target_id}").status_code == 404


class TestVietnameseHeadings:
    """The department reads the downloads in Vietnamese, whatever language the page is in."""

    def test_xlsx_and_csv_headings(self, client: TestClient, world: World) -> None:
        expected = [
            "Quận/Huyện",
            "Trường",
            "Mô đun",
            "Tên mô đun",
            "Đợt",
            "Đăng ký",
            "Đang học",
            "Hoàn thành",
            "Khá",
            "Giỏi",
            "Chưa hoàn thành",
            "Chưa đủ điểm thành phần",
            "Rời lớp",
        ]
        book = load_workbook(io.BytesIO(client.get("/admin/reports/export.xlsx").content))
        assert book.sheetnames == ["Theo trường", "Theo quận-huyện"]
        assert list(next(book.worksheets[0].iter_rows(min_row=3, values_only=True))) == expected
        csv_text = client.get("/admin/reports/export.csv").content.decode("utf-8-sig")
        assert next(csv.reader(io.StringIO(csv_text))) == expected


# -- the rules, without HTTP or a database -----------------------------------------------------


def _group(classification: str, *, active: bool = True, final: bool = True, n: int = 1, v=1):
    return LearnerGroup(
        version_id=v,
        module_key="gvpt-4",
        track="gvpt",
        level="thcs",
        wave_id=None,
        wave=None,
        district="",
        school="",
        active=active,
        classification=classification,
        final=final,
        count=n,
    )


class TestRules:
    POLICY = GradePolicy(
        Weights(Decimal("0.3"), Decimal("0.2"), Decimal("0.5")),
        tiers=(Tier("kha", "Khá", None, Decimal(7)),),
    )

    def test_counts_follow_the_definitions(self) -> None:
        groups = [
            _group("incomplete", final=False, n=4),  # in progress
            _group("not_complete", n=2),
            _group("complete", n=3),
            _group("kha", n=1),
            _group("complete", active=False, n=2),  # dropped after completing: counted
            _group("incomplete", active=False, final=False, n=5),  # left
            _group("kha", v=2),  # a tier of another version completes only there
        ]
        counts = total(groups, completion_test({1: self.POLICY}))
        assert (counts.enrolled, counts.in_progress, counts.completed, counts.left) == (
            13,
            4,
            6,
            5,
        )
        assert counts.classifications == {
            "incomplete": 4,
            "not_complete": 2,
            "complete": 5,
            "kha": 2,
        }
        assert counts.completion_rate == Decimal("46.2")
        assert Counts().completion_rate is None

    def test_periods(self) -> None:
        today = date(2026, 5, 17)
        assert parse_period(None, None, None, today) == Period.year(2026)
        assert parse_period("", "", "2024", today) == Period.year(2024)
        assert parse_period("2026-03-01", None, None, today) == Period(
            date(2026, 3, 1), date(2026, 12, 31)
        )
        assert Period.year(2025).calendar_year == 2025
        assert Period(date(2025, 1, 2), date(2025, 12, 31)).calendar_year is None
        for args, field in (
            (("2026-02-30", None, None), "from"),
            (("2026-05-01", "2026-04-30", None), "to"),
            ((None, None, "20x6"), "year"),
            (("1999-12-31", None, None), "from"),
        ):
            with pytest.raises(ValidationFailed) as caught:
                parse_period(*args, today)
            assert caught.value.params["field"] == field

    def test_target_progress(self) -> None:
        due, before, after = date(2024, 12, 31), date(2024, 6, 1), date(2025, 1, 1)
        p = target_progress(200, Decimal("30.00"), 45, due, before)
        assert (p.needed, p.achieved_percent, p.gap, p.gap_points, p.met, p.overdue) == (
            60,
            Decimal("22.5"),
            15,
            Decimal("7.5"),
            False,
            False,
        )
        assert str(p.percent) == "30"
        assert target_progress(200, Decimal("30"), 45, due, after).overdue
        met = target_progress(3, Decimal("33.33"), 1, due, after)
        assert (met.needed, met.met, met.gap, met.gap_points, met.overdue) == (
            1,
            True,
            0,
            Decimal(0),
            False,
        )

    def test_names_sort_as_people_expect(self) -> None:
        names = ["Quận 10", "", "Quận 2", "Đức Hòa", "Bình Chánh", "quận 7"]
        assert sorted(names, key=name_key) == [
            "Bình Chánh",
            "Đức Hòa",
            "Quận 2",
            "quận 7",
            "Quận 10",
            "",
        ]

    def test_bar_chart_geometry(self) -> None:
        chart = bar_chart(
            [
                Bar("A", [Part("complete", "c", 30), Part("incomplete", "i", 10)], "75%"),
                Bar("B", [Part("complete", "c", 0), Part("incomplete", "i", 1)], "0%"),
                Bar("C", [], "—"),
            ]
        )
        a, b, c = chart.rows
        assert [s.width for s in a.segments] == [235.5, 78.5]
        assert a.segments[1].x == 235.5 and a.value_x == 320.0
        assert [(s.key, s.width) for s in b.segments] == [("incomplete", 7.85)]
        assert c.segments == () and b.bar_y > a.bar_y and chart.height > c.bar_y
