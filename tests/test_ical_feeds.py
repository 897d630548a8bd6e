"""Calendar apps subscribe to a class's or a learner's dates without signing in."""

from __future__ import annotations

from datetime import date

from icalendar import Calendar
from sqlalchemy import select

from app.classes.models import TrainingClass
from tests.helpers import new_class, sign_in
from tests.lti_platform import LEARNER


def events(body: bytes) -> list:
    return [c for c in Calendar.from_ical(body).walk("VEVENT")]


class TestClassFeed:
    def test_class_feed_has_phases_and_sessions_in_vietnam_time(self, client, admin, db):
        cls = new_class(client)
        token = db.scalar(select(TrainingClass.ical_token).where(TrainingClass.id == cls["id"]))
        client.cookies.clear()  # a calendar app has no session
        response = client.get(f"/ical/class/{token}.ics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/calendar")
        evs = events(response.content)
        all_day = [e for e in evs if not hasattr(e["DTSTART"].dt, "hour")]
        timed = [e for e in evs if hasattr(e["DTSTART"].dt, "hour")]
        assert len(timed) == 4  # two in-person days, morning and afternoon
        assert {e["DTSTART"].dt.date() for e in timed} == {date(2026, 12, 3), date(2026, 12, 4)}
        assert all(e["DTSTART"].dt.utcoffset().total_seconds() == 7 * 3600 for e in timed)
        self_study = next(e for e in all_day if e["DTSTART"].dt == date(2026, 11, 26))
        assert self_study["DTEND"].dt == date(2026, 12, 3)  # exclusive end
        # Stable: the same data gives the same bytes, and an ETag answers 304.
        again = client.get(
            f"/ical/class/{token}.ics", headers={"if-none-match": response.headers["etag"]}
        )
        assert again.status_code == 304

    def test_unknown_token_is_404(self, client):
        assert client.get("/ical/class/nope.ics").status_code == 404
        assert client.get("/ical/learner/" + "x" * 80 + ".ics").status_code == 404


class TestLearnerFeed:
    def test_learner_sees_own_shifted_dates(self, client, admin, platform, db):
        cls = new_class(client)
        teacher = sign_in(client, platform, [LEARNER], "learner-1", "Học viên Một")
        sign_in(
            client,
            platform,
            ["http://purl.imsglobal.org/vocab/lis/v2/institution/person#Administrator"],
            "admin-1",
            "Quản trị",
        )
        enrolment = client.post(
            f"/api/v1/classes/{cls['id']}/enrolments", json={"user_id": teacher["user_id"]}
        ).json()
        shifted = client.post(
            f"/api/v1/classes/{cls['id']}/enrolments/{enrolment['id']}/shifts",
            json={"reason": "Nhập học muộn", "delay_days": 7},
        )
        assert shifted.status_code == 201
        sign_in(client, platform, [LEARNER], "learner-1", "Học viên Một")
        mine = client.get("/api/v1/me/schedule").json()
        assert mine[0]["shifted"] is True
        path = mine[0]["ical_path"]
        client.cookies.clear()
        evs = events(client.get(path).content)
        starts = sorted(e["DTSTART"].dt for e in evs if not hasattr(e["DTSTART"].dt, "hour"))
        assert starts[0] >= date(2026, 12, 3)  # a week later than the class's 26/11
