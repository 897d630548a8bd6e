"""The administrator's HTML pages of the 7-2-7 core, driven like a person with a browser
without JavaScript: launch from the LMS, read the page, fill in and post its forms, follow
the 303. Assertions are on what the page shows.

Labels are checked in English (a launch that asks for ``en``); dates, names and data in
whatever language the page is in.
"""

from __future__ import annotations

import re
from datetime import date
from html import unescape
from html.parser import HTMLParser

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.admin.pages import router as admin_pages
from app.config import Settings
from app.core.db import Database
from app.main import create_app
from app.platforms.models import Platform
from app.platforms.repository import PlatformRepository
from tests.factories import Factories
from tests.lti_platform import INST_ADMIN, INSTRUCTOR, LEARNER, SYS_ADMIN, TestPlatform

ADMIN = [INST_ADMIN, SYS_ADMIN]
MEET = "https://meet.example.vn/lop-m4"
LOCAL_TOPIC = """track = "gvpt"
local_code = "ky-nang-so"
levels = ["thcs"]
[titles]
thcs = "Kỹ năng số"
"""


@pytest.fixture()
def app(settings: Settings, database: Database) -> FastAPI:
    application = create_app(settings, database)
    if not any(getattr(r, "path", None) == "/admin/classes" for r in application.routes):
        application.include_router(admin_pages)  # until app.main includes it
    return application


@pytest.fixture()
def platform_row(platform: TestPlatform, db: Session) -> Platform:
    row = PlatformRepository(db).by_issuer_and_client(platform.issuer, platform.client_id)
    assert row is not None
    return row


# -- a small browser -------------------------------------------------------------------------


def sign_in(
    client: TestClient,
    platform: TestPlatform,
    roles: list[str],
    sub: str,
    name: str,
    *,
    locale: str = "en",
) -> str:
    """Launch from the LMS; return the session's form token (as the pages embed it)."""
    client.cookies.clear()
    client.headers.pop("X-CSRF-Token", None)
    assert (
        platform.launch(client, roles=roles, sub=sub, name=name, locale=locale).status_code == 303
    )
    token = client.get("/api/v1/me").json()["csrf_token"]
    return token


@pytest.fixture()
def admin(client: TestClient, platform: TestPlatform) -> str:
    return sign_in(client, platform, ADMIN, "admin-1", "Lê Quản Trị")


BLOCK = (
    r"</?(?:p|div|li|ul|ol|tr|td|th|br|h\d|section|table|thead|tbody|dl|dt|dd|nav|form|label"
    r"|option|select)\b[^>]*>"
)


def text(html: str) -> str:
    """What a person reads: tags dropped (blocks apart), entities decoded, spaces collapsed."""
    html = re.sub(BLOCK, " ", html)
    return " ".join(unescape(re.sub(r"<[^>]+>", "", html)).split())


def row_with(html: str, needle: str) -> str:
    """The text of the first table row that contains ``needle``."""
    for row in re.findall(r"<tr\b.*?</tr>", html, flags=re.S):
        if needle in text(row):
            return text(row)
    raise AssertionError(f"no row with {needle!r}")


def rows_of(html: str, table_class: str) -> list[str]:
    table = re.search(rf'<table class="{table_class}">(.*?)</table>', html, flags=re.S)
    assert table, table_class
    body = re.search(r"<tbody>(.*?)</tbody>", table.group(1), flags=re.S)
    assert body
    return [text(r) for r in re.findall(r"<tr\b.*?</tr>", body.group(1), flags=re.S)]


def field_error(html: str, name: str) -> str:
    found = re.search(
        rf'<p class="field-error" id="err-{re.escape(name)}">(.*?)</p>', html, flags=re.S
    )
    return text(found.group(1)) if found else ""


class _Forms(HTMLParser):
    """The successful controls of each form, as a browser would submit them."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[tuple[str, list[tuple[str, str]]]] = []
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append((a.get("action", ""), []))
        elif not self.forms:
            return
        fields = self.forms[-1][1] if self.forms else []
        if tag == "input" and a.get("name") and a.get("type") not in ("file", "submit"):
            if a.get("type") in ("radio", "checkbox") and "checked" not in a:
                return
            fields.append((a["name"], a.get("value", "")))
        elif tag == "select":
            self._select = a.get("name")
            fields.append((self._select or "", ""))
        elif tag == "option" and self._select and "selected" in a:
            fields[-1] = (self._select, a.get("value", ""))
        elif tag == "textarea":
            self._textarea = a.get("name")
            fields.append((self._textarea or "", ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data: str) -> None:
        if self._textarea and self.forms:
            name, value = self.forms[-1][1][-1]
            self.forms[-1][1][-1] = (name, value + data)


def form_of(html: str, action: str) -> dict[str, str]:
    parser = _Forms()
    parser.feed(html)
    for form_action, fields in parser.forms:
        if form_action == action:
            return dict(fields)
    raise AssertionError(f"no form posting to {action}")


def follow(client: TestClient, response) -> str:
    assert response.status_code == 303, response.text
    page = client.get(response.headers["location"])
    assert page.status_code == 200, page.text
    return page.text


def module_option(html: str, label_start: str) -> str:
    found = re.search(rf'<option value="(\d+)"[^>]*>{re.escape(label_start)}', html)
    assert found, label_start
    return found.group(1)


def create_wave(client: TestClient, token: str, name: str = "Đợt 1 — 2026") -> str:
    page = follow(
        client,
        client.post(
            "/admin/waves",
            data={"csrf_token": token, "name": name, "year": "2026", "description": "Mô đun 4"},
        ),
    )
    found = re.search(rf">{re.escape(name)}</th>.*?/admin/waves/(\d+)/compliance", page, flags=re.S)
    assert found, "the new wave is listed"
    return found.group(1)


def class_form(client: TestClient, token: str, **overrides) -> dict:
    page = client.get("/admin/classes/new").text
    data = {
        "csrf_token": token,
        "code": "M4-THCS-01",
        "name": "Mô đun 4 — THCS — lớp 1",
        "module_id": module_option(page, "GVPT 4 ·"),
        "level": "thcs",
        "wave_id": "",
        "capacity": "150",
        "anchor": "in_person",
        "in_person_dates": ["2026-12-03", "2026-12-04"],
        "start_date": "",
        "venue": "Trường THCS Nguyễn Du",
        "room": "P.201",
    }
    data.update(overrides)
    return data


def create_class(client: TestClient, token: str, **overrides) -> str:
    response = client.post("/admin/classes/new", data=class_form(client, token, **overrides))
    assert response.status_code == 303, text(response.text)
    found = re.fullmatch(r"/admin/classes/(\d+)\?done=created", response.headers["location"])
    assert found, response.headers["location"]
    return found.group(1)


def api_enrol(client: TestClient, token: str, class_id: str, user_ids: list[int]) -> None:
    """Arrange enrolments through the JSON API (the pages do not enrol)."""
    for user_id in user_ids:
        response = client.post(
            f"/api/v1/classes/{class_id}/enrolments",
            json={"user_id": user_id},
            headers={"X-CSRF-Token": token},
        )
        assert response.status_code == 201, response.text


# -- tests -----------------------------------------------------------------------------------


class TestAnAdministratorCreatesAWaveAndAClass:
    def test_the_class_page_shows_the_computed_dates(self, client, admin):
        wave_id = create_wave(client, admin)
        response = client.post(
            "/admin/classes/new", data=class_form(client, admin, wave_id=wave_id)
        )
        page = follow(client, response)
        assert "The class was created and its schedule computed." in page
        assert "Mô đun 4 — THCS — lớp 1" in page
        schedule = rows_of(page, "schedule")
        assert "26/11/2026" in schedule[0] and "02/12/2026" in schedule[0]
        assert "Thursday, 26/11/2026 – Wednesday, 02/12/2026" in schedule[0]
        assert "03/12/2026" in schedule[1] and "04/12/2026" in schedule[1]
        assert "05/12/2026" in schedule[2] and "11/12/2026" in schedule[2]
        sessions = rows_of(page, "sessions")
        assert [s.split(" Trường")[0] for s in sessions] == [
            "Thursday, 03/12/2026 Morning",
            "Thursday, 03/12/2026 Afternoon",
            "Friday, 04/12/2026 Morning",
            "Friday, 04/12/2026 Afternoon",
        ]
        assert all("Trường THCS Nguyễn Du · room P.201" in s for s in sessions)

        listed = client.get(f"/admin/classes?wave={wave_id}").text
        row = row_with(listed, "M4-THCS-01")
        assert "26/11/2026 – 02/12/2026" in row
        assert "03/12/2026 04/12/2026" in row
        assert "0/150" in row

    def test_the_schedule_is_shown_in_vietnamese_by_default(self, client, platform):
        token = sign_in(client, platform, ADMIN, "admin-vi", "Quản trị", locale="vi")
        page = client.get(f"/admin/classes/{create_class(client, token)}").text
        assert '<html lang="vi">' in page
        assert "26/11/2026" in text(page) and "02/12/2026" in text(page)

    def test_from_a_start_date(self, client, admin):
        class_id = create_class(
            client, admin, anchor="start", start_date="2026-12-24", in_person_dates=["", ""]
        )
        schedule = rows_of(client.get(f"/admin/classes/{class_id}").text, "schedule")
        # 1/1 is Tết Dương lịch and 2–3/1 a weekend.
        assert "31/12/2026" in schedule[1] and "04/01/2027" in schedule[1]
        assert "24/12/2026 – Wednesday, 30/12/2026" in schedule[0]

    def test_a_saturday_is_refused_next_to_the_field_and_nothing_is_created(self, client, admin):
        response = client.post(
            "/admin/classes/new",
            data=class_form(client, admin, in_person_dates=["2026-12-05", "2026-12-07"]),
        )
        assert response.status_code == 422
        message = field_error(response.text, "in_person_dates")
        assert "05/12/2026" in message and "weekend" in message
        assert 'aria-invalid="true"' in response.text
        # The input is kept.
        assert 'value="2026-12-05"' in response.text and 'value="2026-12-07"' in response.text
        assert 'value="M4-THCS-01"' in response.text
        assert "Trường THCS Nguyễn Du" in response.text
        assert "M4-THCS-01" not in text(client.get("/admin/classes").text)

    def test_a_holiday_is_refused_with_its_name(self, client, admin):
        response = client.post(
            "/admin/classes/new",
            data=class_form(client, admin, in_person_dates=["2026-09-02", "2026-09-03"]),
        )
        assert response.status_code == 422
        assert "02/09/2026" in field_error(response.text, "in_person_dates")
        assert "National Day" in field_error(response.text, "in_person_dates")

    def test_several_bad_fields_each_get_their_message(self, client, admin):
        response = client.post(
            "/admin/classes/new",
            data=class_form(client, admin, code="lớp 1", capacity="151", level=""),
        )
        assert response.status_code == 422
        assert "letters, digits" in field_error(response.text, "code")
        assert "150" in field_error(response.text, "capacity")
        assert "required" in field_error(response.text, "level")
        assert "Nothing was saved" in response.text
        assert 'class="classes"' not in client.get("/admin/classes").text

    def test_a_missing_anchor_and_a_duplicate_code(self, client, admin):
        response = client.post(
            "/admin/classes/new", data=class_form(client, admin, in_person_dates=["", ""])
        )
        assert response.status_code == 422
        assert field_error(response.text, "in_person_dates") == "Enter the in-person dates."
        create_class(client, admin)
        again = client.post("/admin/classes/new", data=class_form(client, admin))
        assert again.status_code == 409
        assert "M4-THCS-01" in field_error(again.text, "code")

    def test_a_wave_with_the_same_name_is_refused(self, client, admin):
        create_wave(client, admin)
        response = client.post(
            "/admin/waves", data={"csrf_token": admin, "name": "Đợt 1 — 2026", "year": "2026"}
        )
        assert response.status_code == 409
        assert "already exists" in field_error(response.text, "name")
        bad_year = client.post(
            "/admin/waves", data={"csrf_token": admin, "name": "Đợt 2", "year": "26"}
        )
        assert bad_year.status_code == 422
        assert "2000" in field_error(bad_year.text, "year")
        assert 'value="Đợt 2"' in bad_year.text


class TestEpidemicFallback:
    def test_switching_it_on_shows_the_banner_and_the_link_on_every_session(self, client, admin):
        class_id = create_class(client, admin)
        page = follow(
            client,
            client.post(
                f"/admin/classes/{class_id}/fallback",
                data={
                    "csrf_token": admin,
                    "url": MEET,
                    "reason": "dịch COVID-19",
                    "decided_on": "2026-11-30",
                },
            ),
        )
        banner = re.search(r'<div class="banner".*?</div>', page, flags=re.S)
        assert banner
        assert "Online in the virtual classroom because of dịch COVID-19" in text(banner.group(0))
        assert "30/11/2026" in text(banner.group(0)) and MEET in banner.group(0)
        sessions = rows_of(page, "sessions")
        assert len(sessions) == 4
        assert all(MEET in s and "Nguyễn Du" not in s for s in sessions)
        assert "Online (fallback)" in row_with(client.get("/admin/classes").text, "M4-THCS-01")

        back = follow(
            client,
            client.post(f"/admin/classes/{class_id}/fallback/clear", data={"csrf_token": admin}),
        )
        assert 'class="banner"' not in back
        assert all("Nguyễn Du" in s for s in rows_of(back, "sessions"))

    def test_a_bad_link_is_refused_and_nothing_moves_online(self, client, admin):
        class_id = create_class(client, admin)
        response = client.post(
            f"/admin/classes/{class_id}/fallback",
            data={
                "csrf_token": admin,
                "url": "meet.example.vn",
                "reason": "",
                "decided_on": "2026-11-30",
            },
        )
        assert response.status_code == 422
        assert "http://" in field_error(response.text, "fallback_url")
        assert "required" in field_error(response.text, "fallback_reason")
        assert 'value="meet.example.vn"' in response.text
        assert 'class="banner"' not in client.get(f"/admin/classes/{class_id}").text


class TestOnlyAdministrators:
    def test_teachers_and_core_trainers_get_403_everywhere(self, client, platform, admin):
        wave_id = create_wave(client, admin)
        class_id = create_class(client, admin, wave_id=wave_id)
        module = re.search(r'href="/admin/modules/(\d+)"', client.get("/admin/modules").text)
        assert module
        gets = [
            "/admin/modules",
            f"/admin/modules/{module.group(1)}",
            "/admin/waves",
            f"/admin/waves/{wave_id}/compliance",
            "/admin/classes",
            "/admin/classes/new",
            f"/admin/classes/{class_id}",
            "/admin/holidays",
        ]
        posts = [
            "/admin/modules/import",
            f"/admin/modules/{module.group(1)}",
            "/admin/waves",
            "/admin/classes/new",
            f"/admin/classes/{class_id}/fallback",
            f"/admin/classes/{class_id}/fallback/clear",
            f"/admin/classes/{class_id}/trainers",
            f"/admin/classes/{class_id}/cohorts/split",
            f"/admin/classes/{class_id}/cohorts/move",
            "/admin/holidays",
        ]
        for roles, sub in (([LEARNER], "teacher-1"), ([INSTRUCTOR], "trainer-1")):
            token = sign_in(client, platform, roles, sub, "Không phải quản trị")
            for path in gets:
                assert client.get(path).status_code == 403, (sub, path)
            for path in posts:
                response = client.post(
                    path, data={"csrf_token": token, "name": "x", "year": "2026"}
                )
                assert response.status_code == 403, (sub, path)
        sign_in(client, platform, ADMIN, "admin-1", "Lê Quản Trị")
        assert "Đợt 1 — 2026" in client.get("/admin/waves").text
        assert 'value="x"' not in client.get("/admin/waves").text
        assert "x (2026)" not in client.get("/admin/waves").text

    def test_a_form_without_its_token_is_refused_and_writes_nothing(self, client, admin):
        for data in (
            {"name": "Đợt CSRF", "year": "2026"},
            {"csrf_token": "forged", "name": "Đợt CSRF", "year": "2026"},
        ):
            response = client.post("/admin/waves", data=data)
            assert response.status_code == 403
            assert "The form has expired or did not come from blend727." in response.text
        form = class_form(client, admin)
        del form["csrf_token"]
        assert client.post("/admin/classes/new", data=form).status_code == 403
        assert "Đợt CSRF" not in client.get("/admin/waves").text
        assert "M4-THCS-01" not in client.get("/admin/classes").text

    def test_nobody_signed_in_gets_401(self, client):
        assert client.get("/admin/classes").status_code == 401


class TestCohortsAndCompliance:
    def test_core_trainers_of_the_lms_are_offered_and_others_found_by_search(
        self, client, platform, admin, factories: Factories, platform_row
    ):
        class_id = create_class(client, admin)
        factories.users(platform_row, 12, prefix="gv")
        sign_in(client, platform, [INSTRUCTOR], "cc-lms", "Cốt cán Trong LMS")
        admin = sign_in(client, platform, ADMIN, "admin-1", "Lê Quản Trị")

        def groups(query: str = "") -> list[tuple[str, str]]:
            suffix = f"?people={query}" if query else ""
            page = client.get(f"/admin/classes/{class_id}{suffix}").text
            select = re.search(r'<select id="f-trainer_user_id".*?</select>', page, flags=re.S)
            assert select
            return re.findall(r'<optgroup label="([^"]+)">(.*?)</optgroup>', select.group(0), re.S)

        # Without a search only the LMS's core trainers are listed, not every teacher.
        found = groups()
        assert [label for label, _ in found] == ["Core trainers in the LMS"]
        assert text(found[0][1]) == "Cốt cán Trong LMS · an@example.edu.vn"
        # A search finds anyone else of this LMS by name (or e-mail, or school).
        found = groups("gv1")
        assert [label for label, _ in found] == [
            "Core trainers in the LMS",
            "Other people of the LMS",
        ]
        others = text(found[1][1])
        assert "Giáo viên gv1" in others and "Giáo viên gv10" in others
        assert "Giáo viên gv2" not in others and "Lê Quản Trị" not in others
        assert "Lê Quản Trị" in text(groups("Quản")[1][1])
        # Wildcards are taken literally; a search that matches no one says so.
        assert [label for label, _ in groups("%25")] == ["Core trainers in the LMS"]
        page = client.get(f"/admin/classes/{class_id}?people=zzz").text
        assert "No one else matches “zzz”." in page

    def test_a_cohort_without_a_trainer_fails_and_the_fix_passes(
        self, client, admin, factories: Factories, platform_row
    ):
        wave_id = create_wave(client, admin)
        class_id = create_class(client, admin, wave_id=wave_id)
        learners = factories.users(platform_row, 60, schools=["THCS Lê Lợi", "THCS Trần Phú"])
        trainer = factories.users(platform_row, 1, prefix="cc")[0]
        api_enrol(client, admin, class_id, [u.id for u in learners])

        page = client.get(f"/admin/classes/{class_id}").text
        assert "The class has learners but no cohorts yet" in row_with(
            page, "Every cohort has a core trainer"
        )

        page = follow(
            client,
            client.post(f"/admin/classes/{class_id}/cohorts/split", data={"csrf_token": admin}),
        )
        assert "The learners were split into cohorts." in page
        rule = row_with(page, "Every cohort has a core trainer")
        assert "✗ Fail" in rule and "Nhóm 1" in rule and "Nhóm 2" in rule
        assert row_with(page, "Nhóm 1 30") == "Nhóm 1 30 ✗ No trainer 0 / 40"
        assert "✗" in row_with(client.get(f"/admin/classes?wave={wave_id}").text, "M4-THCS-01")
        wave_page = client.get(f"/admin/waves/{wave_id}/compliance").text
        assert f'href="/admin/classes/{class_id}"' in wave_page
        assert "Nhóm 1" in row_with(wave_page, "Every cohort has a core trainer")

        # Add the core trainer (found among the people of this LMS), give each cohort one.
        found = client.get(f"/admin/classes/{class_id}?people=cc0").text
        options = re.search(r'<select id="f-trainer_user_id".*?</select>', found, flags=re.S)
        assert options
        assert f'<option value="{trainer.id}">Giáo viên cc0' in options.group(0)
        page = follow(
            client,
            client.post(
                f"/admin/classes/{class_id}/trainers",
                data={"csrf_token": admin, "user_id": str(trainer.id)},
            ),
        )
        assert "Giáo viên cc0" in text(page.split('id="trainers"')[1].split("</ul>")[0])
        cohort_ids = re.findall(rf"/admin/classes/{class_id}/cohorts/(\d+)/trainer", page)
        assert len(cohort_ids) == 2
        for cohort_id in cohort_ids:
            page = follow(
                client,
                client.post(
                    f"/admin/classes/{class_id}/cohorts/{cohort_id}/trainer",
                    data={"csrf_token": admin, "trainer_user_id": str(trainer.id)},
                ),
            )
        assert "✓ Pass" in row_with(page, "Every cohort has a core trainer")
        # Support periods cannot be judged before the class ends.
        assert "… Pending" in row_with(page, "converted periods")
        assert "Nhóm 1 (0), Nhóm 2 (0)" in row_with(page, "converted periods")
        assert "✓ Compliant (1 pending)" in row_with(
            client.get(f"/admin/classes?wave={wave_id}").text, "M4-THCS-01"
        )

    def test_moving_a_learner_and_a_learner_who_left(
        self, client, admin, factories: Factories, platform_row
    ):
        class_id = create_class(client, admin)
        learners = factories.users(platform_row, 60, schools=["A"])
        api_enrol(client, admin, class_id, [u.id for u in learners])
        page = follow(
            client,
            client.post(f"/admin/classes/{class_id}/cohorts/split", data={"csrf_token": admin}),
        )
        move = form_of(page, f"/admin/classes/{class_id}/cohorts/move")
        current = move["cohort_id"]
        other = next(
            c
            for c in re.findall(r'<option value="(\d+)"', page.split('id="roster"')[1])
            if c != current
        )
        page = follow(
            client,
            client.post(
                f"/admin/classes/{class_id}/cohorts/move", data=move | {"cohort_id": other}
            ),
        )
        assert "The learner was moved." in page
        sizes = sorted(int(n) for n in re.findall(r"Nhóm \d (\d+) ", text(page)))
        assert sizes == [29, 31]

        left = learners[0]
        response = client.delete(
            f"/api/v1/classes/{class_id}/enrolments/{left.id}", headers={"X-CSRF-Token": admin}
        )
        assert response.status_code == 204
        page = client.get(f"/admin/classes/{class_id}").text
        assert "59 active learners" in text(page)
        row = re.search(rf'<tr class="left">.*?{left.name}.*?</tr>', page, flags=re.S)
        assert row and "left" in text(row.group(0))

    def test_a_full_cohort_is_refused_next_to_the_learner(
        self, client, admin, factories: Factories, platform_row, db
    ):
        class_id = create_class(client, admin)
        learners = factories.users(platform_row, 100, schools=["A"])
        api_enrol(client, admin, class_id, [u.id for u in learners])
        page = follow(
            client,
            client.post(f"/admin/classes/{class_id}/cohorts/split", data={"csrf_token": admin}),
        )
        move = form_of(page, f"/admin/classes/{class_id}/cohorts/move")
        other = next(
            c
            for c in re.findall(r'<option value="(\d+)"', page.split('id="roster"')[1])
            if c != move["cohort_id"]
        )
        response = client.post(
            f"/admin/classes/{class_id}/cohorts/move", data=move | {"cohort_id": other}
        )
        assert response.status_code == 409
        assert "already has 50 learners" in field_error(
            response.text, f"move-{move['enrolment_id']}"
        )
        assert "Nhóm 1 50" in text(response.text) and "Nhóm 2 50" in text(response.text)


class TestModuleCatalogue:
    def _module_page(self, client) -> tuple[str, str]:
        listing = client.get("/admin/modules").text
        found = re.search(r'href="/admin/modules/(\d+)">Xây dựng kế hoạch dạy học', listing)
        assert found
        return found.group(1), client.get(f"/admin/modules/{found.group(1)}").text

    def test_the_catalogue_lists_both_tracks(self, client, admin):
        page = client.get("/admin/modules").text
        assert "GVPT (teachers)" in page and "CBQL (school managers)" in page
        modules = rows_of(page, "modules")
        assert len(modules) == 10
        assert all(m.endswith("7-2-7 1") for m in modules)

    def test_editing_writes_version_2_and_shows_the_history(self, client, admin):
        class_id = create_class(client, admin)
        module_id, page = self._module_page(client)
        assert "version 1" in text(page)
        assert f'href="/api/v1/modules/{module_id}/export"' in page
        form = form_of(page, f"/admin/modules/{module_id}")
        assert form["plan_in_person_periods"] == "16"
        form |= {
            "plan_in_person_periods": "24",
            "note": "thêm 8 tiết trực tiếp",
            "material-0-title": "Bài giảng 1",
            "material-0-url": "https://lms.example.vn/m4/bai-1",
        }
        page = follow(client, client.post(f"/admin/modules/{module_id}", data=form))
        assert "Saved: a new version of the module was written." in page
        assert "version 2" in text(page)
        history = re.search(r'id="history".*?</table>', page, flags=re.S)
        assert history
        rows = [text(r) for r in re.findall(r"<tr\b.*?</tr>", history.group(0), flags=re.S)][1:]
        assert rows[0].startswith("2 current") and rows[0].endswith("thêm 8 tiết trực tiếp")
        assert rows[1].startswith("1 ") and rows[1].endswith("blend727 catalogue")
        assert "In person 2 24" in row_with(page, "In person 2")
        assert "Bài giảng 1" in page
        # The class keeps the version it started with.
        assert "(version 1)" in text(client.get(f"/admin/classes/{class_id}").text)
        # Saving again without a change writes nothing new.
        again = follow(
            client,
            client.post(
                f"/admin/modules/{module_id}", data=form_of(page, f"/admin/modules/{module_id}")
            ),
        )
        assert "Nothing changed" in again and "version 2" in text(again)

    def test_a_bad_edit_is_shown_next_to_its_field_and_writes_nothing(self, client, admin):
        module_id, page = self._module_page(client)
        form = form_of(page, f"/admin/modules/{module_id}")
        response = client.post(
            f"/admin/modules/{module_id}",
            data=form | {"weight_follow_up": "0,9", "material-0-title": "Không có địa chỉ"},
        )
        assert response.status_code == 422
        assert "required" in field_error(response.text, "material-0-url")
        assert 'value="0,9"' in response.text and 'value="Không có địa chỉ"' in response.text
        response = client.post(
            f"/admin/modules/{module_id}",
            data=form | {"weight_follow_up": "0,9", "plan_self_study_days": "bảy"},
        )
        assert field_error(response.text, "plan_self_study_days") == "Enter a whole number."
        response = client.post(
            f"/admin/modules/{module_id}", data=form | {"weight_follow_up": "0,9"}
        )
        assert response.status_code == 422
        assert "sum to 1" in field_error(response.text, "weights")
        response = client.post(
            f"/admin/modules/{module_id}",
            data=form | {"material-0-title": "Bài 1", "material-0-url": "ftp://x"},
        )
        assert "http" in field_error(response.text, "material-0-url")
        response = client.post(
            f"/admin/modules/{module_id}",
            data=form | {"title_thcs": "", "title_tieu_hoc": "", "title_thpt": ""},
        )
        assert "at least one level" in field_error(response.text, "titles")
        page = client.get(f"/admin/modules/{module_id}").text
        assert "version 1" in text(page) and "Edit: writes version 2" in text(page)
        history = re.search(r'id="history".*?</table>', page, flags=re.S)
        assert history and len(re.findall(r"<tr\b", history.group(0))) == 2  # head + v1

    def test_a_bad_import_shows_the_line_and_imports_nothing(self, client, admin):
        before = text(client.get("/admin/modules").text)
        good = LOCAL_TOPIC
        response = client.post(
            "/admin/modules/import",
            data={"csrf_token": admin},
            files=[
                ("files", ("a.toml", b'track = "gvpt"\nnumber = 6\n[titles\n', "application/toml")),
                ("files", ("good.toml", good.encode(), "application/toml")),
            ],
        )
        assert response.status_code == 422
        problems = text(
            re.search(r'<ul class="problems">.*?</ul>', response.text, flags=re.S).group(0)
        )
        assert "a.toml, line 3" in problems
        assert "good.toml" not in problems
        after = text(client.get("/admin/modules").text)
        assert after == before and "Kỹ năng số" not in after

    def test_a_good_import_adds_the_module(self, client, admin):
        good = LOCAL_TOPIC
        response = client.post(
            "/admin/modules/import",
            data={"csrf_token": admin},
            files=[("files", ("ky-nang-so.toml", good.encode(), "application/toml"))],
        )
        page = follow(client, response)
        assert "The module files were imported." in page and "Kỹ năng số" in page

    def test_files_too_large_or_not_toml_are_refused(self, client, admin):
        response = client.post(
            "/admin/modules/import",
            data={"csrf_token": admin},
            files=[
                ("files", ("big.toml", b"#" * (100 * 1024 + 1), "application/toml")),
                ("files", ("notes.txt", b"x", "text/plain")),
            ],
        )
        assert response.status_code == 422
        problems = text(
            re.search(r'<ul class="problems">.*?</ul>', response.text, flags=re.S).group(0)
        )
        assert "big.toml: The file is larger than 100 KB." in problems
        assert "notes.txt: Only .toml module files can be imported." in problems
        response = client.post("/admin/modules/import", data={"csrf_token": admin})
        assert response.status_code == 422
        assert "Choose at least one .toml module file." in response.text


class TestHolidays:
    def test_shipped_holidays_and_an_administrators_changes(self, client, admin):
        year = date.today().year
        page = client.get("/admin/holidays").text
        assert f"Days off in {year}" in page and f"Days off in {year + 1}" in page
        assert f"02/09/{year + 1}" in row_with(page, f"02/09/{year + 1}")
        assert "National Day" in row_with(page, f"02/09/{year + 1}")

        page = follow(
            client,
            client.post(
                "/admin/holidays",
                data={
                    "csrf_token": admin,
                    "date": f"{year + 1}-09-02",
                    "kind": "working",
                    "name": "Làm bù",
                },
            ),
        )
        assert "Working day" in row_with(page, "Làm bù")
        next_year = page.split(f"Days off in {year + 1}</h2>")[1].split('id="overrides"')[0]
        assert f"01/09/{year + 1}" in text(next_year)
        assert f"02/09/{year + 1}" not in text(next_year)

        page = follow(
            client,
            client.post(
                "/admin/holidays",
                data={"csrf_token": admin, "date": "2026-12-03", "kind": "off", "name": "Nghỉ bão"},
            ),
        )
        assert "Added by an administrator" in row_with(page, "Nghỉ bão")  # in the year's list
        assert "Extra day off" in row_with(page.split('id="overrides"')[1], "Nghỉ bão")
        # The day off now refuses an in-person day.
        response = client.post("/admin/classes/new", data=class_form(client, admin))
        assert response.status_code == 422
        assert "Nghỉ bão" in field_error(response.text, "in_person_dates")

    def test_a_change_without_a_name_is_refused(self, client, admin):
        response = client.post(
            "/admin/holidays",
            data={"csrf_token": admin, "date": "2026-12-03", "kind": "off", "name": ""},
        )
        assert response.status_code == 422
        assert "required" in field_error(response.text, "name")
        assert 'value="2026-12-03"' in response.text
        assert "None yet." in client.get("/admin/holidays").text


class TestAnEmptyTenant:
    @pytest.mark.parametrize(
        "path",
        [
            "/admin/modules",
            "/admin/waves",
            "/admin/classes",
            "/admin/classes/new",
            "/admin/holidays",
        ],
    )
    def test_every_page_renders(self, client, admin, path):
        response = client.get(path)
        assert response.status_code == 200, response.text
        assert 'aria-current="page"' in response.text

    def test_an_unknown_class_or_wave_is_404(self, client, admin):
        assert client.get("/admin/classes/999999").status_code == 404
        assert client.get("/admin/waves/999999/compliance").status_code == 404
        assert client.get("/admin/modules/999999").status_code == 404

    def test_an_empty_list_says_so(self, client, admin):
        assert "No class yet." in client.get("/admin/classes").text
        assert "No wave yet." in client.get("/admin/waves").text


def _template_msgids() -> list[str]:
    """English sentences (3+ words, no placeholder) of the administrator templates."""
    from babel.messages.extract import extract_from_file

    from app.core.templating import TEMPLATE_DIR

    ids: set[str] = set()
    for path in sorted(TEMPLATE_DIR.glob("*.html")):
        if not (path.name.startswith("admin_") or path.name in ADMIN_PARTIALS):
            continue
        for _line, message, _comments, _context in extract_from_file(
            "jinja2",
            str(path),
            options={"extensions": "jinja2.ext.i18n", "trim_blocks": "True"},
        ):
            for m in message if isinstance(message, tuple) else (message,):
                if m and "%(" not in m and len(m.split()) >= 3:
                    ids.add(m)
    return sorted(ids)


ADMIN_PARTIALS = ("_admin_nav.html", "_compliance_table.html")


class TestVietnameseFirst:
    def test_no_english_sentence_on_the_pages_of_a_vietnamese_administrator(
        self, client, platform, factories: Factories, platform_row
    ):
        token = sign_in(client, platform, ADMIN, "admin-vi", "Quản trị", locale="vi")
        wave_id = create_wave(client, token)
        class_id = create_class(client, token, wave_id=wave_id)
        api_enrol(client, token, class_id, [u.id for u in factories.users(platform_row, 3)])
        client.post(f"/admin/classes/{class_id}/cohorts/split", data={"csrf_token": token})
        client.post(
            f"/admin/classes/{class_id}/fallback",
            data={"csrf_token": token, "url": MEET, "reason": "bão", "decided_on": "2026-11-30"},
        )
        module = re.search(r'href="/admin/modules/(\d+)"', client.get("/admin/modules").text)
        assert module
        pages = [
            client.get(path).text
            for path in (
                "/admin/modules",
                f"/admin/modules/{module.group(1)}",
                "/admin/waves",
                f"/admin/waves/{wave_id}/compliance",
                f"/admin/classes?wave={wave_id}",
                f"/admin/classes/{class_id}",
                "/admin/holidays",
                "/admin/audit",
                f"/admin/audit?class_id={class_id}&action=class",
                "/admin/audit?from=2026-13-01",
            )
        ]
        pages.append(
            client.post(
                "/admin/classes/new", data=class_form(client, token, code="x y", level="")
            ).text
        )
        leaked = sorted({m for m in _template_msgids() for page in pages if m in unescape(page)})
        assert not leaked, f"English shown to a Vietnamese administrator: {leaked}"
