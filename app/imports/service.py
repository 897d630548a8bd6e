"""Imports of the files departments keep, all or nothing.

* :meth:`ImportService.holidays` — days off and working days into the tenant's holiday
  calendar (the same rows as the form on ``/admin/holidays``);
* :meth:`ImportService.roster` — the learners of a class: matched to the people the LMS has
  told blend727 about, enrolled within the class's capacity, their school and district set,
  optionally placed in a cohort.

The whole file is checked first; any problem refuses it (:class:`ImportRefused`, listing every
problem with its line and column) and nothing is written. ``dry_run`` checks and reports
what would happen without writing anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from app.audit.rules import Actor, Subject
from app.audit.service import AuditLog, system_actor
from app.classes.models import Cohort, Enrolment, EnrolmentStatus, HolidayOverride, TrainingClass
from app.classes.repository import ClassRepository
from app.classes.service import ClassService
from app.core.errors import AppError
from app.core.templating import vndate
from app.identity.models import User
from app.identity.repository import IdentityRepository
from app.imports.rules import (
    HolidayLine,
    Problem,
    RosterLine,
    heading_key,
    parse_holidays,
    parse_roster,
    quoted,
)
from app.imports.tables import FileProblem, Table
from app.schedule.service import HolidayService

#: Most learners in a cohort (the programme's rule; ``ClassService.move`` keeps it too).
COHORT_CAP = 50


def N_(message: str) -> str:
    """Mark an English message id for extraction; translated where it is shown."""
    return message


class ImportRefused(AppError):
    status_code = 422
    code = "import_refused"
    title = "The file was not imported"
    detail = "Nothing was changed. Correct the problems listed and import the file again."

    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__(log_detail=f"{len(problems)} problem(s)")
        self.problems = list(problems)


def refused_file(exc: FileProblem) -> ImportRefused:
    return ImportRefused([Problem(None, None, exc.message, exc.params)])


# -- holidays -------------------------------------------------------------------------------

CONFLICT = N_(
    "%(date)s is already in the calendar as “%(name)s” (%(kind)s); change it with the form "
    "on this page, or remove this line"
)
KIND_TEXT = {"off": N_("day off"), "working": N_("working day")}


@dataclass
class HolidayImportResult:
    lines: int = 0
    added: list[HolidayLine] = field(default_factory=list)
    unchanged: list[HolidayLine] = field(default_factory=list)
    dry_run: bool = False

    def as_dict(self) -> dict[str, object]:
        return {
            "lines": self.lines,
            "added": len(self.added),
            "unchanged": len(self.unchanged),
            "dry_run": self.dry_run,
        }


# -- rosters --------------------------------------------------------------------------------

UNKNOWN_ID = N_(
    "nobody with LMS user id '%(value)s' is in the LMS course yet: they open blend727 once "
    "from the course, or sync the class list from the LMS"
)
UNKNOWN_EMAIL = N_(
    "nobody with e-mail '%(value)s' is in the LMS course yet: they open blend727 once from the "
    "course, or sync the class list from the LMS"
)
SHARED_EMAIL = N_(
    "several people of the LMS have the e-mail '%(value)s'; give their LMS user id instead"
)
SWITCHED_OFF = N_("'%(value)s' has been switched off in blend727")
SAME_PERSON = N_("the same person as on line %(other)s")
A_TRAINER = N_("'%(value)s' is a core trainer of this class, not a learner")
UNKNOWN_COHORT = N_(
    "the class has no cohort '%(value)s'; split the class into cohorts first, or leave the "
    "cell empty"
)
COHORT_FULL = N_("cohort '%(value)s' would have more than %(max)s learners")
CLASS_FULL = N_(
    "The class has %(capacity)s places and %(enrolled)s learners: the %(new)s new learners of "
    "this file do not fit (%(over)s too many). Nothing was imported."
)


@dataclass(frozen=True)
class RosterOutcome:
    """What the import does for one line of the file."""

    line: int
    user_id: int
    name: str  # as the LMS gave it
    email: str | None
    school: str | None
    district: str | None
    cohort: str | None
    action: str  # "enrol" | "already" | "return" (enrolled again after leaving)


@dataclass
class RosterImportResult:
    lines: int = 0
    outcomes: list[RosterOutcome] = field(default_factory=list)
    updated_people: int = 0  # school or district changed
    cohort_moves: int = 0
    dry_run: bool = False

    @property
    def enrolled(self) -> int:
        return sum(1 for o in self.outcomes if o.action in ("enrol", "return"))

    @property
    def already(self) -> int:
        return sum(1 for o in self.outcomes if o.action == "already")

    def as_dict(self) -> dict[str, object]:
        return {
            "lines": self.lines,
            "enrolled": self.enrolled,
            "already": self.already,
            "updated_people": self.updated_people,
            "cohort_moves": self.cohort_moves,
            "dry_run": self.dry_run,
            "learners": [
                {
                    "line": o.line,
                    "user_id": o.user_id,
                    "name": o.name,
                    "school": o.school,
                    "district": o.district,
                    "cohort": o.cohort,
                    "action": o.action,
                }
                for o in self.outcomes
            ],
        }


def _cohort_key(text: str) -> str:
    """ "Nhóm 2", "nhom 2", "2" → "2"; other names compared like headings."""
    key = heading_key(text)
    for prefix in ("nhom ", "cohort ", "group "):
        if key.startswith(prefix) and key[len(prefix) :].isdigit():
            return str(int(key[len(prefix) :]))
    return str(int(key)) if key.isdigit() else key


class ImportService:
    """``actor``: who imports, for the audit log (each holiday is one event; a class list
    is one ``roster.import`` event with what it changed)."""

    def __init__(self, session: Session, actor: Actor | None = None) -> None:
        self.session = session
        self.actor = actor
        self.classes = ClassRepository(session)
        self.identity = IdentityRepository(session)

    # -- holidays ------------------------------------------------------------------------
    def holidays(
        self, deployment_id: int, table: Table, *, dry_run: bool = False
    ) -> HolidayImportResult:
        lines, problems = parse_holidays(table)
        existing = {o.date: o for o in self.classes.holiday_overrides(deployment_id)}
        result = HolidayImportResult(lines=len(lines), dry_run=dry_run)
        for line in lines:
            found: HolidayOverride | None = existing.get(line.date)
            if found is None:
                result.added.append(line)
            elif found.kind == line.kind and found.name == line.name:
                result.unchanged.append(line)
            else:
                problems.append(
                    Problem(
                        line.line,
                        "date",
                        CONFLICT,
                        {
                            "date": vndate(line.date),
                            "name": quoted(found.name),
                            "kind": KIND_TEXT.get(found.kind, found.kind),
                        },
                    )
                )
        if problems:
            raise ImportRefused(sorted(problems, key=_order))
        if not dry_run:
            service = HolidayService(self.session, self.actor)
            for line in result.added:
                service.add_override(deployment_id, line.date, line.kind, line.name)
            self.session.flush()
        return result

    # -- rosters -------------------------------------------------------------------------
    def roster(
        self, deployment_id: int, class_id: int, table: Table, *, dry_run: bool = False
    ) -> RosterImportResult:
        service = ClassService(self.session, self.actor)
        cls = service.get_class(deployment_id, class_id)  # 404 before the file is read
        lines, problems = parse_roster(table)
        platform_id = service._platform_id(deployment_id)
        assert platform_id is not None
        by_sub = self.identity.users_by_subs(
            platform_id, sorted({x.user_id for x in lines if x.user_id})
        )
        by_email = self.identity.users_by_emails(
            platform_id, sorted({x.email for x in lines if x.email and not x.user_id})
        )
        cohorts = {_cohort_key(c.name): c for c in self.classes.cohorts(cls.id)}
        for c in self.classes.cohorts(cls.id):
            cohorts.setdefault(str(c.position), c)

        trainers = {u.id for _, u in self.classes.trainers(cls.id)}
        matched: list[tuple[RosterLine, User]] = []
        seen: dict[int, int] = {}
        for line in lines:
            user = self._person(line, by_sub, by_email, problems)
            if user is None:
                continue
            if user.id in trainers:
                column, value = ("user_id", line.user_id) if line.user_id else ("email", line.email)
                problems.append(
                    Problem(line.line, column, A_TRAINER, {"value": quoted(value or "")})
                )
                continue
            if user.id in seen:
                column = "user_id" if line.user_id else "email"
                problems.append(Problem(line.line, column, SAME_PERSON, {"other": seen[user.id]}))
                continue
            seen[user.id] = line.line
            if line.cohort and _cohort_key(line.cohort) not in cohorts:
                problems.append(
                    Problem(line.line, "cohort", UNKNOWN_COHORT, {"value": quoted(line.cohort)})
                )
                continue
            matched.append((line, user))
        if problems:
            raise ImportRefused(sorted(problems, key=_order))

        enrolments = self.classes.enrolments_for_users(cls.id, [u.id for _, u in matched])
        result = RosterImportResult(lines=len(lines), dry_run=dry_run)
        for line, user in matched:
            row = enrolments.get(user.id)
            if row is not None and row.status == EnrolmentStatus.ACTIVE:
                action = "already"
            else:
                action = "return" if row is not None else "enrol"
            result.outcomes.append(
                RosterOutcome(
                    line=line.line,
                    user_id=user.id,
                    name=user.display_name,
                    email=user.email or line.email,
                    school=line.school or user.school,
                    district=line.district or user.district,
                    cohort=cohorts[_cohort_key(line.cohort)].name if line.cohort else None,
                    action=action,
                )
            )
        new = result.enrolled
        if cls.enrolled_count + new > cls.capacity:
            raise ImportRefused([self._class_full(cls, new)])
        self._check_cohorts(cls, matched, enrolments, cohorts, problems)
        if problems:
            raise ImportRefused(sorted(problems, key=_order))

        for line, user in matched:
            if (line.school and line.school != user.school) or (
                line.district and line.district != user.district
            ):
                result.updated_people += 1
                if not dry_run:
                    user.school = line.school or user.school
                    user.district = line.district or user.district
        for line, user in matched:
            if line.cohort:
                row = enrolments.get(user.id)
                target = cohorts[_cohort_key(line.cohort)]
                stays = (
                    row is not None
                    and row.status == EnrolmentStatus.ACTIVE
                    and row.cohort_id == target.id
                )
                if not stays:
                    result.cohort_moves += 1
        if dry_run:
            return result

        wanted = [o.user_id for o in result.outcomes if o.action != "already"]
        _seated, refused = service.enrol_many(deployment_id, cls.id, wanted, source="import")
        if refused:  # someone else took seats since we counted: refuse the whole file
            self.session.refresh(cls)
            raise ImportRefused([self._class_full(cls, len(wanted))])
        rows = self.classes.enrolments_for_users(cls.id, [u.id for _, u in matched])
        for line, user in matched:
            if line.cohort:
                rows[user.id].cohort_id = cohorts[_cohort_key(line.cohort)].id
        AuditLog(self.session).record(
            self.actor or system_actor(self.session, deployment_id),
            "roster.import",
            Subject("class", cls.id, cls.code, class_id=cls.id),
            after={
                "lines": result.lines,
                "enrolled": sum(1 for o in result.outcomes if o.action == "enrol"),
                "returned": sum(1 for o in result.outcomes if o.action == "return"),
                "already": result.already,
                "people_updated": result.updated_people,
                "cohort_moves": result.cohort_moves,
            },
        )
        self.session.flush()
        return result

    def _person(
        self,
        line: RosterLine,
        by_sub: dict[str, User],
        by_email: dict[str, list[User]],
        problems: list[Problem],
    ) -> User | None:
        if line.user_id:
            user = by_sub.get(line.user_id)
            if user is None:
                problems.append(
                    Problem(line.line, "user_id", UNKNOWN_ID, {"value": quoted(line.user_id)})
                )
                return None
            column, value = "user_id", line.user_id
        else:
            assert line.email is not None
            people = by_email.get(line.email, [])
            if not people:
                problems.append(
                    Problem(line.line, "email", UNKNOWN_EMAIL, {"value": quoted(line.email)})
                )
                return None
            if len(people) > 1:
                problems.append(
                    Problem(line.line, "email", SHARED_EMAIL, {"value": quoted(line.email)})
                )
                return None
            user, column, value = people[0], "email", line.email
        if user.disabled_at is not None:
            problems.append(Problem(line.line, column, SWITCHED_OFF, {"value": quoted(value)}))
            return None
        return user

    def _check_cohorts(
        self,
        cls: TrainingClass,
        matched: Sequence[tuple[RosterLine, User]],
        enrolments: dict[int, Enrolment],
        cohorts: dict[str, Cohort],
        problems: list[Problem],
    ) -> None:
        """No cohort may end with more than 50 learners once the file's moves are made."""
        if not any(line.cohort for line, _ in matched):
            return
        sizes = dict(self.classes.cohort_sizes(cls.id))
        for line, user in matched:
            if not line.cohort:
                continue
            target = cohorts[_cohort_key(line.cohort)]
            target_id = target.id
            row = enrolments.get(user.id)
            current = row.cohort_id if row is not None else None
            active = row is not None and row.status == EnrolmentStatus.ACTIVE
            if active and current == target_id:
                continue
            if active and current is not None:
                sizes[current] = sizes.get(current, 0) - 1
            sizes[target_id] = sizes.get(target_id, 0) + 1
            if sizes[target_id] > COHORT_CAP:
                problems.append(
                    Problem(
                        line.line,
                        "cohort",
                        COHORT_FULL,
                        {"value": target.name, "max": COHORT_CAP},
                    )
                )

    @staticmethod
    def _class_full(cls: TrainingClass, new: int) -> Problem:
        return Problem(
            None,
            None,
            CLASS_FULL,
            {
                "capacity": cls.capacity,
                "enrolled": cls.enrolled_count,
                "new": new,
                "over": cls.enrolled_count + new - cls.capacity,
            },
        )


def _order(problem: Problem) -> tuple[int, str]:
    return (problem.line or 0, problem.column or "")
