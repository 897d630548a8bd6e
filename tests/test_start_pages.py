"""What a teacher and a core trainer see on their start page once a class is set up."""

from __future__ import annotations

import re

from tests.helpers import new_class, sign_in
from tests.lti_platform import INST_ADMIN, INSTRUCTOR, LEARNER, SYS_ADMIN


def _setup(client, platform, factories, platform_row):
    sign_in(client, platform, [INST_ADMIN, SYS_ADMIN], "admin-1", "Quản trị")
    cls = new_class(client)
    teacher = sign_in(client, platform, [LEARNER], "hv-1", "Nguyễn Thị Học")
    trainer = sign_in(client, platform, [INSTRUCTOR], "cc-1", "Trần Cốt Cán")
    sign_in(client, platform, [INST_ADMIN, SYS_ADMIN], "admin-1", "Quản trị")
    client.post(f"/api/v1/classes/{cls['id']}/enrolments", json={"user_id": teacher["user_id"]})
    for user in factories.users(platform_row, 9, schools=["THCS Lê Lợi"]):
        client.post(f"/api/v1/classes/{cls['id']}/enrolments", json={"user_id": user.id})
    client.post(f"/api/v1/classes/{cls['id']}/trainers", json={"user_id": trainer["user_id"]})
    cohorts = client.post(f"/api/v1/classes/{cls['id']}/cohorts/split").json()
    return cls, cohorts


class TestTeacherSeesOwnDates:
    def test_dates_sessions_and_calendar_link(self, client, platform, factories, platform_row):
        _setup(client, platform, factories, platform_row)
        sign_in(client, platform, [LEARNER], "hv-1", "Nguyễn Thị Học")
        page = client.get("/").text
        assert "26/11/2026 – 02/12/2026" in page
        assert "03/12/2026" in page and "04/12/2026" in page
        assert "05/12/2026 – 11/12/2026" in page
        assert "Thứ Năm" in page  # 03/12/2026 is a Thursday
        link = re.search(r'href="(/ical/learner/[^"]+\.ics)"', page)
        assert link is not None
        assert client.get(link.group(1)).status_code == 200


class TestTrainerSeesAndLogsTheirCohort:
    def test_cohort_members_and_support_log(self, client, platform, factories, platform_row):
        _, cohorts = _setup(client, platform, factories, platform_row)
        me = sign_in(client, platform, [INSTRUCTOR], "cc-1", "Trần Cốt Cán")
        page = client.get("/").text
        cohort_id = next(c["id"] for c in cohorts if c["trainer_user_id"] == me["user_id"])
        assert "Nhóm 1" in page and "Nguyễn Thị Học" in page
        assert f'href="/cohorts/{cohort_id}"' in page  # the cohort's own page
        assert "Nguyễn Thị Học" in client.get(f"/cohorts/{cohort_id}").text
        form = {
            "csrf_token": me["csrf_token"],
            "day": "2026-12-03",
            "form": "in_person",
            "periods": "7.5",
            "note": "Buổi sáng",
        }
        response = client.post(f"/trainer/cohorts/{cohort_id}/support", data=form)
        assert response.status_code == 303
        assert "7.5" in client.get("/").text

    def test_bad_or_forged_logs_are_refused(self, client, platform, factories, platform_row):
        _, cohorts = _setup(client, platform, factories, platform_row)
        me = sign_in(client, platform, [INSTRUCTOR], "cc-1", "Trần Cốt Cán")
        cohort_id = cohorts[0]["id"]
        base = {
            "csrf_token": me["csrf_token"],
            "day": "2026-12-03",
            "form": "online",
            "periods": "2",
        }
        assert (
            client.post(
                f"/trainer/cohorts/{cohort_id}/support", data=base | {"csrf_token": "x"}
            ).status_code
            == 403
        )
        bad = client.post(f"/trainer/cohorts/{cohort_id}/support", data=base | {"periods": "0.3"})
        assert bad.status_code == 422
        assert (
            client.post(f"/trainer/cohorts/{cohort_id + 999}/support", data=base).status_code == 403
        )
        assert "Đã ghi" not in client.get("/").text
