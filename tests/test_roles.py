"""lti.roles on its own: plain strings in, one blend727 role out. No database, no HTTP."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.identity.models import Role
from lti.roles import map_roles, parse_role
from tests.lti_platform import INST_ADMIN, INSTRUCTOR, LEARNER, LIS, SYS_ADMIN, TA

MENTOR = LIS + "membership#Mentor"
CONTEXT_ADMIN = LIS + "membership#Administrator"
INST_INSTRUCTOR = LIS + "institution/person#Instructor"
INST_STUDENT = LIS + "institution/person#Student"
SYS_USER = LIS + "system/person#User"

ADMIN_ROLES = [
    SYS_ADMIN,
    INST_ADMIN,
    LIS + "system/person#SysAdmin",
    "urn:lti:sysrole:ims/lis/Administrator",
    "urn:lti:sysrole:ims/lis/SysAdmin",
    "urn:lti:instrole:ims/lis/Administrator",
]


class TestParseRole:
    @pytest.mark.parametrize(
        ("role", "expected"),
        [
            (INSTRUCTOR, ("context", "Instructor")),
            (LEARNER, ("context", "Learner")),
            (TA, ("context", "TeachingAssistant")),
            (SYS_ADMIN, ("system", "Administrator")),
            (INST_ADMIN, ("institution", "Administrator")),
            ("Learner", ("context", "Learner")),
            ("Instructor", ("context", "Instructor")),
            ("  " + INSTRUCTOR + "  ", ("context", "Instructor")),
            ("urn:lti:role:ims/lis/Learner", ("context", "Learner")),
            ("urn:lti:role:ims/lis/Instructor", ("context", "Instructor")),
            ("urn:lti:sysrole:ims/lis/SysAdmin", ("system", "SysAdmin")),
            ("urn:lti:instrole:ims/lis/Administrator", ("institution", "Administrator")),
            (LIS + "something/else#Learner", ("unknown", "Learner")),
            ("http://example.com/role#Learner", ("unknown", None)),
            ("", ("unknown", None)),
        ],
        ids=repr,
    )
    def test_kind_and_name(self, role, expected):
        assert parse_role(role) == expected


class TestMapRoles:
    def test_moodle_site_admin_set_is_admin(self):
        # What Moodle 4.x/5.x sends for a site administrator launching from a course.
        assert map_roles([INST_ADMIN, INSTRUCTOR, SYS_ADMIN]) is Role.ADMIN

    def test_institution_administrator_alone_is_admin(self):
        assert map_roles([INST_ADMIN]) is Role.ADMIN

    def test_system_administrator_alone_is_admin(self):
        assert map_roles([SYS_ADMIN]) is Role.ADMIN

    @pytest.mark.parametrize("role", ADMIN_ROLES)
    def test_every_admin_spelling_is_admin(self, role):
        assert map_roles([role]) is Role.ADMIN

    def test_instructor_is_trainer(self):
        assert map_roles([INSTRUCTOR]) is Role.TRAINER

    def test_teaching_assistant_sub_role_is_trainer(self):
        assert map_roles([TA]) is Role.TRAINER

    def test_learner_is_teacher(self):
        assert map_roles([LEARNER]) is Role.TEACHER

    def test_learner_and_instructor_is_trainer(self):
        assert map_roles([LEARNER, INSTRUCTOR]) is Role.TRAINER
        assert map_roles([INSTRUCTOR, LEARNER]) is Role.TRAINER

    def test_course_level_administrator_is_trainer_not_admin(self):
        assert map_roles([CONTEXT_ADMIN]) is Role.TRAINER

    @pytest.mark.parametrize(
        ("roles", "expected"),
        [
            (["Learner"], Role.TEACHER),
            (["Instructor"], Role.TRAINER),
            (["TeachingAssistant"], Role.TRAINER),
            (["Learner", "Instructor"], Role.TRAINER),
        ],
    )
    def test_short_names(self, roles, expected):
        assert map_roles(roles) is expected

    @pytest.mark.parametrize(
        ("roles", "expected"),
        [
            (["urn:lti:role:ims/lis/Learner"], Role.TEACHER),
            (["urn:lti:role:ims/lis/Instructor"], Role.TRAINER),
            (["urn:lti:role:ims/lis/TeachingAssistant"], Role.TRAINER),
            (["urn:lti:role:ims/lis/Instructor/TeachingAssistant"], Role.TRAINER),
            (["urn:lti:sysrole:ims/lis/SysAdmin"], Role.ADMIN),
            (
                ["urn:lti:instrole:ims/lis/Administrator", "urn:lti:role:ims/lis/Learner"],
                Role.ADMIN,
            ),
            (["urn:lti:instrole:ims/lis/Instructor"], Role.TRAINER),
            (["urn:lti:instrole:ims/lis/Student"], Role.TEACHER),
        ],
    )
    def test_lti_1_1_urns(self, roles, expected):
        assert map_roles(roles) is expected

    def test_institution_roles_without_course_role(self):
        assert map_roles([INST_INSTRUCTOR]) is Role.TRAINER
        assert map_roles([INST_STUDENT]) is Role.TEACHER
        # A course role wins over the institution role.
        assert map_roles([INST_INSTRUCTOR, LEARNER]) is Role.TEACHER

    @pytest.mark.parametrize(
        "roles",
        [
            ["http://example.com/roles#Whatever"],
            [MENTOR],
            [SYS_USER],
            ["urn:lti:role:ims/lis/Mentor"],
            [""],
            ["   "],
        ],
        ids=repr,
    )
    def test_unknown_role_is_none(self, roles):
        assert map_roles(roles) is Role.NONE

    def test_empty_is_none(self):
        assert map_roles([]) is Role.NONE

    def test_non_strings_are_ignored(self):
        assert map_roles([None, 42, {"x": 1}, LEARNER]) is Role.TEACHER  # type: ignore[list-item]
        assert map_roles([None, 42]) is Role.NONE  # type: ignore[list-item]

    def test_accepts_any_iterable(self):
        assert map_roles(iter([INSTRUCTOR])) is Role.TRAINER
        assert map_roles((LEARNER,)) is Role.TEACHER


role_strings = st.one_of(
    st.text(max_size=80),
    st.sampled_from(
        [LEARNER, INSTRUCTOR, TA, MENTOR, CONTEXT_ADMIN, INST_INSTRUCTOR, INST_STUDENT, SYS_USER]
    ),
    st.builds(lambda s: LIS + s, st.text(max_size=40)),
    st.builds(lambda s: "urn:lti:role:ims/lis/" + s, st.text(max_size=40)),
)


class TestRoleProperties:
    @given(
        roles=st.lists(role_strings, max_size=8),
        admin=st.sampled_from(ADMIN_ROLES),
        position=st.integers(min_value=0, max_value=8),
    )
    def test_an_administrator_role_always_makes_admin(self, roles, admin, position):
        roles = list(roles)
        roles.insert(min(position, len(roles)), admin)
        assert map_roles(roles) is Role.ADMIN

    @given(roles=st.lists(st.text(), max_size=12))
    def test_never_raises_on_any_strings(self, roles):
        assert map_roles(roles) in set(Role)

    @given(role=st.text())
    def test_parse_role_never_raises(self, role):
        kind, name = parse_role(role)
        assert kind in {"system", "institution", "context", "unknown"}
        assert name is None or isinstance(name, str)
