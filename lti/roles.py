"""Map LTI roles onto blend727's roles.

Plain function over plain data, tested on its own. Precedence is ours, not the library's:
a system or institution Administrator is an administrator even when the launch also carries
context roles (Moodle sends a site admin as institution Administrator + membership
Instructor + system Administrator); otherwise Instructor / TeachingAssistant make a core
trainer, and Learner a teacher. Short context role names ("Learner") and LTI 1.1 URNs are
accepted, because the 1EdTech certification suite sends them.
"""

from __future__ import annotations

from collections.abc import Iterable

from app.identity.models import Role

_LIS = "http://purl.imsglobal.org/vocab/lis/v2/"

_ADMIN_NAMES = {"Administrator", "SysAdmin"}
_TRAINER_NAMES = {"Instructor", "TeachingAssistant"}
_LEARNER_NAMES = {"Learner"}


def parse_role(role: str) -> tuple[str, str | None]:
    """Split a role into (kind, name): kind is ``system``, ``institution``, ``context``
    or ``unknown``; sub-roles (``membership/Instructor#TeachingAssistant``) keep their name
    after ``#`` and their parent's kind."""
    role = role.strip()
    if role.startswith(_LIS):
        rest = role[len(_LIS) :]
        path, _, name = rest.partition("#")
        if path.startswith("system/"):
            return "system", name or None
        if path.startswith("institution/"):
            return "institution", name or None
        if path.startswith("membership"):
            # membership#Instructor or membership/Instructor#TeachingAssistant
            return "context", name or None
        return "unknown", name or None
    if role.startswith("urn:lti:sysrole:ims/lis/"):
        return "system", role.rsplit("/", 1)[-1]
    if role.startswith("urn:lti:instrole:ims/lis/"):
        return "institution", role.rsplit("/", 1)[-1]
    if role.startswith("urn:lti:role:ims/lis/"):
        return "context", role.rsplit("/", 1)[-1].split("/")[0]
    if role and "/" not in role and ":" not in role and "#" not in role:
        # LTI 1.3 allows simple names for context roles.
        return "context", role
    return "unknown", None


def map_roles(roles: Iterable[str]) -> Role:
    parsed = [parse_role(r) for r in roles if isinstance(r, str)]
    if any(kind in ("system", "institution") and name in _ADMIN_NAMES for kind, name in parsed):
        return Role.ADMIN
    context_names = {name for kind, name in parsed if kind == "context"}
    # A course-level Administrator manages the course: closest to a core trainer there.
    if context_names & (_TRAINER_NAMES | {"Administrator"}):
        return Role.TRAINER
    if context_names & _LEARNER_NAMES:
        return Role.TEACHER
    # Institution-level Instructor/Learner without a course role still tells us who they are.
    inst_names = {name for kind, name in parsed if kind == "institution"}
    if inst_names & {"Instructor", "Faculty"}:
        return Role.TRAINER
    if inst_names & {"Learner", "Student"}:
        return Role.TEACHER
    return Role.NONE
