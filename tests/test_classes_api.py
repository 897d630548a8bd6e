"""The 7-2-7 core through the JSON API, as an administrator, a core trainer and a teacher."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.classes.models import ClassSession, Enrolment, TrainingClass
from tests.helpers import module_id, new_class, sign_in
from tests.lti_platform import INST_ADMIN, INSTRUCTOR, LEARNER, SYS_ADMIN


class TestCatalogueIsSeededFromDecision4660:
    def test_ten_modules_with_sourced_titles(self, client, admin):
        modules = client.get("/api/v1/modules").json()
        assert len(modules) == 10
        m4 = next(m for m in modules if m["key"] == "gvpt-4")
        assert m4["title"].startswith("Xây dựng kế hoạch dạy học và giáo dục")
        assert m4["version"] == 1

    def test_editing_writes_a_new_version_and_running_classes_keep_theirs(self, client, admin):
        cls = new_class(client)
        mid = module_id(client)
        spec = client.get(f"/api/v1/modules/{mid}").json()["spec"]
        spec["plan"]["in_person_periods"] = 24
        response = client.put(f"/api/v1/modules/{mid}", json={"spec": spec, "note": "thêm tiết"})
        assert response.status_code == 200, response.text
        assert response.json()["version"] == 2
        detail = client.get(f"/api/v1/modules/{mid}").json()
        assert [v["version"] for v in detail["versions"]] == [2, 1]
        assert (
            client.get(f"/api/v1/classes/{cls['id']}").json()["module_version_id"]
            == cls["module_version_id"]
        )

    def test_a_bad_edit_is_a_problem_with_the_field_and_writes_nothing(self, client, admin):
        mid = module_id(client)
        spec = client.get(f"/api/v1/modules/{mid}").json()["spec"]
        spec["assessment"]["weights"]["follow_up"] = 0.9
        response = client.put(f"/api/v1/modules/{mid}", json={"spec": spec})
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"
        assert "assessment" in response.json()["errors"][0]["field"]
        assert client.get(f"/api/v1/modules/{mid}").json()["version"] == 1

    def test_export_then_import_round_trips(self, client, admin):
        mid = module_id(client, "cbql-9")
        exported = client.get(f"/api/v1/modules/{mid}/export")
        assert exported.status_code == 200
        assert "attachment" in exported.headers["content-disposition"]
        local = exported.text.replace("number = 9", 'local_code = "ky-nang-so"')
        response = client.post("/api/v1/modules/import", json={"files": {"local.toml": local}})
        assert response.status_code == 201, response.text
        assert len(client.get("/api/v1/modules").json()) == 11

    def test_a_bad_import_lists_every_problem_and_changes_nothing(self, client, admin):
        before = client.get("/api/v1/modules").json()
        response = client.post(
            "/api/v1/modules/import",
            json={
                "files": {"a.toml": 'track = "gvpt"\nnumber = 6\n[titles\n', "b.toml": "track = 1"}
            },
        )
        assert response.status_code == 422
        problem = response.json()
        assert problem["code"] == "import_refused"
        assert {e["file"] for e in problem["errors"]} >= {"a.toml"}
        assert any(e["line"] for e in problem["errors"])
        assert client.get("/api/v1/modules").json() == before


class TestScheduleIsComputed:
    def test_from_in_person_dates(self, client, admin, db):
        cls = new_class(client)
        assert cls["schedule"] == {
            "self_study": ["2026-11-26", "2026-12-02"],
            "in_person": ["2026-12-03", "2026-12-04"],
            "follow_up": ["2026-12-05", "2026-12-11"],
        }
        assert [(s["date"], s["part"]) for s in cls["sessions"]] == [
            ("2026-12-03", "morning"),
            ("2026-12-03", "afternoon"),
            ("2026-12-04", "morning"),
            ("2026-12-04", "afternoon"),
        ]
        assert cls["sessions"][0]["venue"] == "Trường THCS Nguyễn Du"

    def test_from_a_start_date_skipping_new_year_and_the_weekend(self, client, admin):
        cls = new_class(client, in_person_dates=[], start_date="2026-12-24", code="M4-02")
        # 31/12 is a Thursday; 1/1 is Tết Dương lịch, 2–3/1 a weekend.
        assert cls["schedule"]["in_person"] == ["2026-12-31", "2027-01-04"]
        assert cls["schedule"]["self_study"] == ["2026-12-24", "2026-12-30"]
        assert cls["schedule"]["follow_up"] == ["2027-01-05", "2027-01-11"]

    @pytest.mark.parametrize(
        ("dates", "word"),
        [
            (["2026-12-05", "2026-12-07"], "2026-12-05"),
            (["2026-09-02", "2026-09-03"], "2026-09-02"),
        ],
        ids=["saturday", "national-day"],
    )
    def test_in_person_day_off_is_refused_with_the_field(self, client, admin, db, dates, word):
        before = db.scalar(select(func.count()).select_from(TrainingClass))
        response = client.post(
            "/api/v1/classes",
            json={
                "code": "BAD",
                "name": "x",
                "module_id": module_id(client),
                "level": "thcs",
                "in_person_dates": dates,
            },
        )
        assert response.status_code == 422, response.text
        problem = response.json()
        assert problem["errors"][0]["field"].startswith("in_person_dates")
        assert word in problem["detail"]
        assert db.scalar(select(func.count()).select_from(TrainingClass)) == before

    def test_request_validation_is_problem_json_with_the_field(self, client, admin):
        response = client.post("/api/v1/classes", json={"code": "x y", "name": ""})
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"
        fields = {e["field"] for e in response.json()["errors"]}
        assert {"code", "name", "module_id", "level"} <= fields

    def test_epidemic_fallback_moves_every_session_online(self, client, admin, db):
        cls = new_class(client)
        response = client.put(
            f"/api/v1/classes/{cls['id']}/fallback",
            json={
                "url": "https://meet.example.vn/lop-m4",
                "reason": "Giãn cách xã hội",
                "decided_on": "2026-11-30",
            },
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["virtual_fallback"]["reason"] == "Giãn cách xã hội"
        assert {s["virtual_url"] for s in body["sessions"]} == {"https://meet.example.vn/lop-m4"}
        back = client.delete(f"/api/v1/classes/{cls['id']}/fallback").json()
        assert back["virtual_fallback"] is None
        assert (
            db.scalar(
                select(func.count())
                .select_from(ClassSession)
                .where(ClassSession.virtual_url.is_not(None))
            )
            == 0
        )


class TestEnrolmentsCohortsAndCompliance:
    def test_cap_is_enforced(self, client, admin, factories, platform_row):
        cls = new_class(client, capacity=2)
        users = factories.users(platform_row, 3)
        for user in users[:2]:
            assert (
                client.post(
                    f"/api/v1/classes/{cls['id']}/enrolments", json={"user_id": user.id}
                ).status_code
                == 201
            )
        response = client.post(
            f"/api/v1/classes/{cls['id']}/enrolments", json={"user_id": users[2].id}
        )
        assert response.status_code == 409
        assert response.json()["code"] == "class_full"
        # Leaving frees the seat; the record stays, marked as left.
        assert (
            client.delete(f"/api/v1/classes/{cls['id']}/enrolments/{users[0].id}").status_code
            == 204
        )
        assert (
            client.post(
                f"/api/v1/classes/{cls['id']}/enrolments", json={"user_id": users[2].id}
            ).status_code
            == 201
        )

    def test_cohorts_of_fifty_keep_schools_and_report_trainerless(
        self, client, admin, factories, platform_row
    ):
        cls = new_class(client)
        schools = ["THCS Lê Lợi", "THCS Trần Phú", "THCS Hoà Bình"]
        learners = factories.users(platform_row, 120, schools=schools)
        trainers = factories.users(platform_row, 2, prefix="t")
        for user in learners:
            client.post(f"/api/v1/classes/{cls['id']}/enrolments", json={"user_id": user.id})
        for trainer in trainers:
            client.post(f"/api/v1/classes/{cls['id']}/trainers", json={"user_id": trainer.id})
        cohorts = client.post(f"/api/v1/classes/{cls['id']}/cohorts/split").json()
        assert [c["size"] for c in cohorts] == [40, 40, 40]
        assert [c["trainer_user_id"] is not None for c in cohorts] == [True, True, False]
        report = client.get(f"/api/v1/classes/{cls['id']}/compliance").json()
        status = {r["code"]: r["status"] for r in report["rules"]}
        assert status["cohort_trainer"] == "fail" and status["class_size"] == "pass"
        assert report["passed"] is False
        trainerless = next(r for r in report["rules"] if r["code"] == "cohort_trainer")
        assert "Nhóm 3" in trainerless["detail"]

    def test_a_trainer_sees_and_logs_only_their_own_cohort(
        self, client, platform, factories, platform_row
    ):
        sign_in(client, platform, [INST_ADMIN, SYS_ADMIN], "admin-1", "Quản trị")
        cls = new_class(client)
        trainer_me = sign_in(client, platform, [INSTRUCTOR], "trainer-1", "Cốt cán Một")
        sign_in(client, platform, [INST_ADMIN, SYS_ADMIN], "admin-1", "Quản trị")
        other = factories.users(platform_row, 1, prefix="t")[0]
        for user in factories.users(platform_row, 60, schools=["A", "B"]):
            client.post(f"/api/v1/classes/{cls['id']}/enrolments", json={"user_id": user.id})
        client.post(
            f"/api/v1/classes/{cls['id']}/trainers", json={"user_id": trainer_me["user_id"]}
        )
        client.post(f"/api/v1/classes/{cls['id']}/trainers", json={"user_id": other.id})
        cohorts = client.post(f"/api/v1/classes/{cls['id']}/cohorts/split").json()
        mine = next(c for c in cohorts if c["trainer_user_id"] == trainer_me["user_id"])
        theirs = next(c for c in cohorts if c["trainer_user_id"] == other.id)

        sign_in(client, platform, [INSTRUCTOR], "trainer-1", "Cốt cán Một")
        listed = client.get("/api/v1/me/cohorts").json()
        assert [c["id"] for c in listed] == [mine["id"]]
        ok = client.post(
            f"/api/v1/classes/{cls['id']}/cohorts/{mine['id']}/support",
            json={"date": "2026-12-03", "form": "in_person", "periods": "8"},
        )
        assert ok.status_code == 201, ok.text
        refused = client.post(
            f"/api/v1/classes/{cls['id']}/cohorts/{theirs['id']}/support",
            json={"date": "2026-12-03", "form": "online", "periods": "2"},
        )
        assert refused.status_code == 403
        assert client.get(f"/api/v1/classes/{cls['id']}").status_code == 403
        assert client.get("/api/v1/me/cohorts").json()[0]["support_periods"] == "8.0"

    def test_a_teacher_cannot_reach_admin_api(self, client, platform):
        sign_in(client, platform, [LEARNER], "t-1", "Học viên")
        for path in ("/api/v1/modules", "/api/v1/classes", "/api/v1/waves"):
            response = client.get(path)
            assert response.status_code == 403, path
            assert response.headers["content-type"] == "application/problem+json"

    def test_writes_need_the_csrf_header(self, client, admin):
        del client.headers["X-CSRF-Token"]
        response = client.post("/api/v1/waves", json={"name": "Đợt 1", "year": 2026})
        assert response.status_code == 403
        assert response.json()["code"] == "csrf_failed"

    def test_wave_compliance_lists_every_class(self, client, admin):
        wave = client.post("/api/v1/waves", json={"name": "Đợt 1", "year": 2026}).json()
        new_class(client, wave_id=wave["id"])
        new_class(client, wave_id=wave["id"], code="M4-02")
        report = client.get(f"/api/v1/waves/{wave['id']}/compliance").json()
        assert [c["code"] for c in report["classes"]] == ["M4-THCS-01", "M4-02"]
        assert all(len(c["rules"]) == 6 for c in report["classes"])

    def test_a_learner_shift_is_never_earlier_than_the_class(
        self, client, admin, factories, platform_row, db
    ):
        cls = new_class(client)
        user = factories.users(platform_row, 1)[0]
        enrolment = client.post(
            f"/api/v1/classes/{cls['id']}/enrolments", json={"user_id": user.id}
        ).json()
        early = client.post(
            f"/api/v1/classes/{cls['id']}/enrolments/{enrolment['id']}/shifts",
            json={"reason": "ốm", "in_person_dates": ["2026-11-30", "2026-12-01"]},
        )
        assert early.status_code == 422
        late = client.post(
            f"/api/v1/classes/{cls['id']}/enrolments/{enrolment['id']}/shifts",
            json={"reason": "Nghỉ ốm có giấy", "delay_days": 7},
        )
        assert late.status_code == 201, late.text
        assert late.json()["schedule"]["in_person_dates"][0] >= "2026-12-10"
        row = db.get(Enrolment, enrolment["id"])
        db.refresh(row)
        assert row.own_schedule is not None
