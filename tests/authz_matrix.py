"""Who may do what: every route of the app × every identity, as data.

``tests/test_authorization_matrix.py`` walks this table against the running app (one world,
``tests/authz_world.py``) and fails on a route without a row, a row without a route, and any
answer that is not the one written here. A new route therefore needs one line here.

Columns (``tests.authz_world.IDENTITIES``)::

    anonymous      nobody signed in
    teacher        a learner of cohort 1 (hv-1)
    trainer_own    the core trainer of cohort 1 (cc-1)
    trainer_other  the core trainer of cohort 2 of the same class (cc-2)
    admin          an administrator of LMS A, where the class is
    admin_other    an administrator of LMS B (same client id, deployment, course, resource
                   link and subs as A)

Each path parameter is filled with the world's object of cohort 1 or the teacher
(``PARAMETERS``), so a row says who reaches the teacher's things through that route.

Cells: ``ok`` — allowed (any answer but 400, 401, 403, 404 or a 5xx; a 422 is allowed: the
request got past the access checks); ``401`` (not signed in), ``403`` (signed in, not theirs),
``404`` (another LMS's object: it does not exist for them), ``400`` (a signed grant issued to
another sign-in) — refused, exact status, and the database unchanged. ``public(...)`` rows:
no sign-in needed, the same status for everyone, with the reason the route may be public.

Writes are sent with the identity's CSRF token (form field or ``X-CSRF-Token``) and the body
in ``BODIES`` (a minimal valid one, so that the access check — not input validation — is
what answers); ``{name}`` in a body is a ``PARAMETERS`` value.
"""

from __future__ import annotations

from dataclasses import dataclass

from tests.authz_world import IDENTITIES


@dataclass(frozen=True)
class Row:
    cells: tuple[str, ...]  # one per identity, in IDENTITIES order
    public: str | None = None  # why no sign-in is needed

    def expect(self, identity: str) -> str:
        return self.cells[IDENTITIES.index(identity)]


def row(cells: str) -> Row:
    """``row("401 403 ok 403 ok 404")``: one cell per identity."""
    parts = tuple(cells.split())
    assert len(parts) == len(IDENTITIES), cells
    assert all(p in ("ok", "400", "401", "403", "404") for p in parts), cells
    return Row(parts)


def public(reason: str, status: int) -> Row:
    """A route anyone may call (with ``status`` for the request the walk sends)."""
    return Row((str(status),) * len(IDENTITIES), public=reason)


#: Not walked, with the reason.
SKIPPED = {
    "/static": "the stylesheet, scripts and images of the pages: public files, no data",
    "/api/docs": "Swagger UI's page: static HTML that loads /api/openapi.json",
    "/api/openapi.json": "the API's description (paths and schemas), public like the README",
}

#: Path parameter → what it names in the world (values: ``AuthzWorld.values``).
PARAMETERS = {
    "class_id": "the class of cohorts 1 and 2",
    "cohort_id": "cohort 1",
    "enrolment_id": "the teacher's enrolment",
    "submission_id": "the teacher's hand-in (with a file, graded)",
    "session_id": "the class's first in-person session",
    "module_id": "LMS A's module 4",
    "wave_id": "the class's wave",
    "user_id": "the teacher",
    "key": "the assignment plan-1 of module 4",
    "code": "the teacher's certificate",
    "token": "the teacher's calendar feed",
    "job_id": "a certificate ZIP job of the class",
    "row_id": "a failed score of the class in the outbox",
    "target_id": "a target of LMS A",
    "persona": "the demonstration teacher",
    "locale": "English",
}

#: Parameters that name something else on one route.
PARAMETERS_BY_ROUTE = {
    "GET /ical/class/{token}.ics": {"token": "class_token"},
    "POST /learn/classes/{class_id}/items/{key}/done": {"key": "doc_key"},
    "PUT /api/v1/learning/classes/{class_id}/items/{key}/done": {"key": "doc_key"},
    "POST /learn/classes/{class_id}/items/{key}/quiz": {"key": "quiz_key"},
    "POST /api/v1/learning/classes/{class_id}/items/{key}/quiz": {"key": "quiz_key"},
}

ADMIN = "401 403 403 403 ok ok"  # an administrator's own LMS: each sees only theirs
ADMIN_OBJECT = "401 403 403 403 ok 404"  # an administrator's object of LMS A
ANYONE = "401 ok ok ok ok ok"  # anyone signed in, about themselves
TEACHER_OWN = "401 ok 403 403 403 404"  # the teacher's own learning
FOLLOWERS = "401 403 ok 403 ok 404"  # cohort 1's core trainer and the administrator
CLASS_STAFF = "401 403 ok ok ok 404"  # any core trainer of the class (their cohorts only)
STAFF = "401 403 ok ok ok ok"  # core trainers and administrators, about their own

MATRIX: dict[str, Row] = {
    # -- LTI, public pages, operations ------------------------------------------------------
    "GET /docs/oauth2-redirect": public("Swagger UI's OAuth helper page: static HTML", 200),
    "GET /lti/login": public("OIDC login initiation: the LMS starts it, nobody is signed in", 400),
    "POST /lti/login": public("OIDC login initiation (form post)", 400),
    "POST /lti/launch": public("the launch: the signed id_token is the credential", 400),
    "GET /lti/launch": public("refused: a launch is a form post", 405),
    "POST /lti/launch/confirm": public(
        "a launch checked through the LMS's platform storage: the signed id_token is the "
        "credential",
        401,
    ),
    "GET /lti/continue": public("the one-time hand-off of a launch to a new window", 410),
    "GET /lti/register": public(
        "dynamic registration: the LMS's one-time token and the operator's approval gate it", 400
    ),
    "GET /lti/jwks.json": public("the tool's public keys, fetched by LMSs", 200),
    "GET /lti/config": public("the URLs an LMS administrator pastes in; no secrets", 200),
    "GET /readyz": public("readiness for the load balancer; says which check failed", 200),
    "GET /metrics": public(
        "Prometheus: only with BLEND727_METRICS_TOKEN or from this machine; never a session", 403
    ),
    "GET /healthz": public("liveness for the load balancer; says nothing about data", 200),
    "GET /": public("the start page: a welcome without a session, else one's own page", 200),
    "GET /lang/{locale}": public("switches the language of one's own session", 303),
    "GET /verify/{code}": public("anyone checks a certificate by its code", 200),
    "GET /ical/class/{token}.ics": public("calendar apps: the unguessable token is the key", 200),
    "GET /ical/learner/{token}.ics": public("calendar apps: the unguessable token is the key", 200),
    "GET /demo": public("the demonstration launcher (only with BLEND727_DEMO)", 200),
    "GET /demo/start/{persona}": public("demonstration LMS: starts an OIDC login", 302),
    "GET /demo/auth": public("demonstration LMS's authorization endpoint", 400),
    "POST /demo/auth": public("demonstration LMS's authorization endpoint", 400),
    "GET /demo/frame/{persona}": public("demonstration LMS's course page framing the tool", 200),
    "GET /demo/jwks.json": public("demonstration LMS's public keys", 200),
    # -- deep linking: the grant is the administrator's ("Select content" opened their session)
    "GET /deep-link": row("401 403 400 400 ok 400"),
    "POST /deep-link": row("401 403 400 400 ok 400"),
    # -- start pages, session --------------------------------------------------------------
    "POST /logout": row(ANYONE),
    "GET /api/v1/me": row(ANYONE),
    "GET /api/v1/me/schedule": row(ANYONE),
    "GET /api/v1/me/cohorts": row(STAFF),
    "POST /trainer/cohorts/{cohort_id}/support": row("401 403 ok 403 403 403"),
    # -- the cohort dashboard --------------------------------------------------------------
    "GET /cohorts/{cohort_id}": row(FOLLOWERS),
    "GET /cohorts/{cohort_id}/learners.csv": row(FOLLOWERS),
    "POST /cohorts/{cohort_id}/learners/{enrolment_id}/attendance": row(FOLLOWERS),
    "POST /cohorts/{cohort_id}/submissions/{submission_id}/grade": row(FOLLOWERS),
    # -- administration pages --------------------------------------------------------------
    "GET /admin/lti": row(ADMIN),
    "GET /admin/modules": row(ADMIN),
    "POST /admin/modules/import": row(ADMIN),
    "GET /admin/modules/{module_id}": row(ADMIN_OBJECT),
    "POST /admin/modules/{module_id}": row(ADMIN_OBJECT),
    "GET /admin/waves": row(ADMIN),
    "POST /admin/waves": row(ADMIN),
    "GET /admin/waves/{wave_id}/compliance": row(ADMIN_OBJECT),
    "GET /admin/classes": row(ADMIN),
    "GET /admin/classes/new": row(ADMIN),
    "POST /admin/classes/new": row(ADMIN),
    "GET /admin/classes/{class_id}": row(ADMIN_OBJECT),
    "POST /admin/classes/{class_id}/fallback": row(ADMIN_OBJECT),
    "POST /admin/classes/{class_id}/fallback/clear": row(ADMIN_OBJECT),
    "POST /admin/classes/{class_id}/trainers": row(ADMIN_OBJECT),
    "POST /admin/classes/{class_id}/cohorts/split": row(ADMIN_OBJECT),
    "POST /admin/classes/{class_id}/cohorts/move": row(ADMIN_OBJECT),
    "POST /admin/classes/{class_id}/cohorts/{cohort_id}/trainer": row(ADMIN_OBJECT),
    "POST /admin/classes/{class_id}/calendar/renew": row(ADMIN_OBJECT),
    "POST /admin/classes/{class_id}/roster/import": row(ADMIN_OBJECT),
    "GET /admin/holidays": row(ADMIN),
    "POST /admin/holidays": row(ADMIN),
    "POST /admin/holidays/import": row(ADMIN),
    "GET /admin/holidays/export.csv": row(ADMIN),
    "GET /admin/holidays/export.xlsx": row(ADMIN),
    "GET /admin/passback": row(ADMIN),
    "POST /admin/passback/{row_id}/retry": row(ADMIN_OBJECT),
    "GET /admin/overview": row(ADMIN),
    "GET /admin/targets": row(ADMIN),
    "POST /admin/targets": row(ADMIN),
    "POST /admin/targets/{target_id}/delete": row(ADMIN_OBJECT),
    "GET /admin/reports": row(ADMIN),
    "GET /admin/reports/export.xlsx": row(ADMIN),
    "GET /admin/reports/export.csv": row(ADMIN),
    "GET /admin/reports/print": row(ADMIN),
    "GET /admin/certificates": row(ADMIN),
    "POST /admin/certificates": row(ADMIN),
    "POST /admin/certificates/classes/{class_id}/zip": row(ADMIN_OBJECT),
    "GET /admin/certificates/jobs/{job_id}.zip": row(ADMIN_OBJECT),
    "GET /admin/certificates/jobs/{job_id}": row(ADMIN_OBJECT),
    "GET /admin/audit": row(ADMIN),
    "GET /admin/audit/export.csv": row(ADMIN),
    # -- catalogue, waves, classes (JSON) --------------------------------------------------
    "GET /api/v1/modules": row(ADMIN),
    "POST /api/v1/modules/import": row(ADMIN),
    "GET /api/v1/modules/{module_id}": row(ADMIN_OBJECT),
    "PUT /api/v1/modules/{module_id}": row(ADMIN_OBJECT),
    "GET /api/v1/modules/{module_id}/export": row(ADMIN_OBJECT),
    "GET /api/v1/waves": row(ADMIN),
    "POST /api/v1/waves": row(ADMIN),
    "GET /api/v1/waves/{wave_id}/compliance": row(ADMIN_OBJECT),
    "GET /api/v1/classes": row(ADMIN),
    "POST /api/v1/classes": row(ADMIN),
    "GET /api/v1/classes/{class_id}": row(ADMIN_OBJECT),
    "PUT /api/v1/classes/{class_id}/fallback": row(ADMIN_OBJECT),
    "DELETE /api/v1/classes/{class_id}/fallback": row(ADMIN_OBJECT),
    "GET /api/v1/classes/{class_id}/compliance": row(ADMIN_OBJECT),
    "POST /api/v1/classes/{class_id}/enrolments": row(ADMIN_OBJECT),
    "DELETE /api/v1/classes/{class_id}/enrolments/{user_id}": row(ADMIN_OBJECT),
    "POST /api/v1/classes/{class_id}/enrolments/{enrolment_id}/shifts": row(ADMIN_OBJECT),
    "POST /api/v1/classes/{class_id}/trainers": row(ADMIN_OBJECT),
    "POST /api/v1/classes/{class_id}/cohorts/split": row(ADMIN_OBJECT),
    "POST /api/v1/classes/{class_id}/cohorts/moves": row(ADMIN_OBJECT),
    "PUT /api/v1/classes/{class_id}/cohorts/{cohort_id}/trainer": row(ADMIN_OBJECT),
    "POST /api/v1/classes/{class_id}/cohorts/{cohort_id}/support": row("401 403 ok 403 403 404"),
    "GET /api/v1/courses": row(ADMIN),
    "PUT /api/v1/classes/{class_id}/course": row(ADMIN_OBJECT),
    "POST /api/v1/classes/{class_id}/roster/sync": row(ADMIN_OBJECT),
    "POST /api/v1/classes/{class_id}/roster/import": row(ADMIN_OBJECT),
    "POST /api/v1/holidays/import": row(ADMIN),
    # -- attendance ------------------------------------------------------------------------
    "GET /attendance/classes/{class_id}": row(CLASS_STAFF),
    "GET /attendance/sessions/{session_id}": row(CLASS_STAFF),
    "POST /attendance/sessions/{session_id}": row(FOLLOWERS),  # marks the teacher
    "GET /attendance/sessions/{session_id}/checkin": row(CLASS_STAFF),
    "GET /attendance/sessions/{session_id}/code.json": row(CLASS_STAFF),
    "POST /attendance/sessions/{session_id}/checkin/open": row(CLASS_STAFF),
    "POST /attendance/sessions/{session_id}/checkin/close": row(CLASS_STAFF),
    "GET /attendance/checkin": row(ANYONE),
    "GET /attendance/checkin/{session_id}": row("401 ok 403 403 403 404"),
    "POST /attendance/checkin/{session_id}": row("401 ok 403 403 403 404"),
    "GET /api/v1/attendance/sessions/{session_id}/marks": row(CLASS_STAFF),
    "PUT /api/v1/attendance/sessions/{session_id}/marks": row(FOLLOWERS),  # marks the teacher
    "GET /api/v1/attendance/sessions/{session_id}/history": row(CLASS_STAFF),
    "PUT /api/v1/attendance/sessions/{session_id}/checkin-window": row(CLASS_STAFF),
    "DELETE /api/v1/attendance/sessions/{session_id}/checkin-window": row(CLASS_STAFF),
    "POST /api/v1/attendance/sessions/{session_id}/checkin": row("401 ok 403 403 403 404"),
    "GET /api/v1/attendance/classes/{class_id}/scores": row(CLASS_STAFF),
    # -- learning --------------------------------------------------------------------------
    "GET /learn": row(ANYONE),
    "GET /learn/classes/{class_id}": row(TEACHER_OWN),
    "POST /learn/classes/{class_id}/items/{key}/done": row(TEACHER_OWN),
    "GET /learn/classes/{class_id}/items/{key}": row(TEACHER_OWN),
    "POST /learn/classes/{class_id}/items/{key}/quiz": row(TEACHER_OWN),
    "POST /learn/classes/{class_id}/items/{key}/hand-in": row(TEACHER_OWN),
    "POST /learn/classes/{class_id}/calendar/renew": row(TEACHER_OWN),
    "GET /learn/files/{submission_id}": row("401 ok ok 403 ok 404"),
    "GET /api/v1/learning/classes/{class_id}/me": row(TEACHER_OWN),
    "PUT /api/v1/learning/classes/{class_id}/items/{key}/done": row(TEACHER_OWN),
    "POST /api/v1/learning/classes/{class_id}/items/{key}/quiz": row(TEACHER_OWN),
    "POST /api/v1/learning/classes/{class_id}/items/{key}/submissions": row(TEACHER_OWN),
    "GET /api/v1/learning/classes/{class_id}/progress": row(CLASS_STAFF),
    # -- grading ---------------------------------------------------------------------------
    "GET /grading/classes/{class_id}": row(CLASS_STAFF),
    "GET /grading/enrolments/{enrolment_id}": row(FOLLOWERS),
    "POST /grading/submissions/{submission_id}/grade": row(FOLLOWERS),
    "POST /grading/enrolments/{enrolment_id}/override": row(FOLLOWERS),
    "POST /grading/enrolments/{enrolment_id}/override/clear": row(FOLLOWERS),
    "POST /grading/enrolments/{enrolment_id}/manual": row(FOLLOWERS),
    "POST /api/v1/grading/submissions/{submission_id}/grade": row(FOLLOWERS),
    "GET /api/v1/grading/classes/{class_id}/results": row(CLASS_STAFF),
    "PUT /api/v1/grading/enrolments/{enrolment_id}/override": row(FOLLOWERS),
    "POST /api/v1/grading/enrolments/{enrolment_id}/override/clear": row(FOLLOWERS),
    "PUT /api/v1/grading/enrolments/{enrolment_id}/manual": row(FOLLOWERS),
    "GET /api/v1/grading/enrolments/{enrolment_id}/history": row(FOLLOWERS),
    # -- scores owed to the LMS, reports ---------------------------------------------------
    "GET /api/v1/passback": row(ADMIN),
    "POST /api/v1/passback/{row_id}/retry": row(ADMIN_OBJECT),
    "GET /api/v1/reports/overview": row(ADMIN),
    "GET /api/v1/reports/targets": row(ADMIN),
    "POST /api/v1/reports/targets": row(ADMIN),
    "DELETE /api/v1/reports/targets/{target_id}": row(ADMIN_OBJECT),
    "GET /api/v1/reports/report": row(ADMIN),
    # -- the audit log ---------------------------------------------------------------------
    "GET /api/v1/audit": row(ADMIN),
    # -- certificates ----------------------------------------------------------------------
    "GET /certificates/classes/{class_id}/mine.pdf": row("401 ok 404 404 404 404"),
    "GET /certificates/enrolments/{enrolment_id}.pdf": row(FOLLOWERS),
}

#: Query strings (``{name}``: a world value).
QUERIES: dict[str, str] = {"GET /deep-link": "t={grant}"}

#: Minimal valid bodies: JSON for /api/…, form fields for pages (the CSRF token is added).
BODIES: dict[str, dict[str, object]] = {
    "POST /deep-link": {"t": "{grant}"},
    "POST /trainer/cohorts/{cohort_id}/support": {
        "day": "2026-12-04",
        "form": "online",
        "periods": "1",
    },
    "POST /cohorts/{cohort_id}/learners/{enrolment_id}/attendance": {"status-{session_id}": "late"},
    "POST /cohorts/{cohort_id}/submissions/{submission_id}/grade": {"score": "7"},
    "POST /admin/classes/{class_id}/fallback": {
        "url": "https://meet.example.vn/lop",
        "reason": "Bão",
        "decided_on": "2026-12-01",
    },
    "POST /admin/classes/{class_id}/trainers": {"user_id": "{trainer_user_id}"},
    "POST /admin/classes/{class_id}/cohorts/move": {
        "enrolment_id": "{enrolment_id}",
        "cohort_id": "{other_cohort_id}",
    },
    "POST /admin/classes/{class_id}/cohorts/{cohort_id}/trainer": {"trainer_user_id": ""},
    "PUT /api/v1/modules/{module_id}": {"spec": {}, "note": "authz"},
    "POST /api/v1/modules/import": {"files": {"x.toml": ""}},
    "POST /api/v1/waves": {"name": "Đợt authz", "year": 2026},
    "PUT /api/v1/classes/{class_id}/fallback": {
        "url": "https://meet.example.vn/lop",
        "reason": "Bão",
        "decided_on": "2026-12-01",
    },
    "POST /api/v1/classes/{class_id}/enrolments": {"user_id": "{user_id}"},
    "POST /api/v1/classes/{class_id}/enrolments/{enrolment_id}/shifts": {
        "reason": "Ốm",
        "delay_days": 1,
    },
    "POST /api/v1/classes/{class_id}/trainers": {"user_id": "{trainer_user_id}"},
    "POST /api/v1/classes/{class_id}/cohorts/moves": {
        "enrolment_id": "{enrolment_id}",
        "cohort_id": "{other_cohort_id}",
    },
    "PUT /api/v1/classes/{class_id}/cohorts/{cohort_id}/trainer": {"trainer_user_id": None},
    "POST /api/v1/classes/{class_id}/cohorts/{cohort_id}/support": {
        "date": "2026-12-04",
        "form": "online",
        "periods": "1",
    },
    "PUT /api/v1/classes/{class_id}/course": {"course_id": None},
    "POST /attendance/sessions/{session_id}": {"status-{enrolment_id}": "late"},
    "POST /attendance/checkin/{session_id}": {"code": "123456"},
    "PUT /api/v1/attendance/sessions/{session_id}/marks": {
        "marks": [{"enrolment_id": "{enrolment_id}", "status": "late"}]
    },
    "PUT /api/v1/attendance/sessions/{session_id}/checkin-window": {},
    "POST /api/v1/attendance/sessions/{session_id}/checkin": {"code": "123456"},
    "POST /learn/classes/{class_id}/items/{key}/quiz": {"q0": "1"},
    "POST /learn/classes/{class_id}/items/{key}/hand-in": {"text": "Bản mới"},
    "PUT /api/v1/learning/classes/{class_id}/items/{key}/done": {"done": True},
    "POST /api/v1/learning/classes/{class_id}/items/{key}/quiz": {"answers": {"0": 1}},
    "POST /api/v1/learning/classes/{class_id}/items/{key}/submissions": {"text": "Bản mới"},
    "POST /grading/submissions/{submission_id}/grade": {"score": "7"},
    "POST /grading/enrolments/{enrolment_id}/override": {
        "score": "7",
        "classification": "complete",
        "reason": "Hội đồng xét lại",
    },
    "POST /grading/enrolments/{enrolment_id}/override/clear": {"reason": "Hội đồng xét lại"},
    "POST /grading/enrolments/{enrolment_id}/manual": {
        "component": "follow_up",
        "score": "7",
        "reason": "Chấm trên LMS",
    },
    "POST /api/v1/grading/submissions/{submission_id}/grade": {"score": "7"},
    "PUT /api/v1/grading/enrolments/{enrolment_id}/override": {
        "score": "7",
        "classification": "complete",
        "reason": "Hội đồng xét lại",
    },
    "POST /api/v1/grading/enrolments/{enrolment_id}/override/clear": {"reason": "Hội đồng xét lại"},
    "PUT /api/v1/grading/enrolments/{enrolment_id}/manual": {
        "component": "follow_up",
        "score": "7",
        "reason": "Chấm trên LMS",
    },
    "POST /api/v1/reports/targets": {
        "name": "CBQL 2026",
        "track": "cbql",
        "staff_count": 10,
        "percent": "100",
        "due_on": "2026-12-31",
    },
}
