"""Cohort splitting and the compliance rules: plain functions over plain data.

Sources: the district 7-2-7 plan (a core trainer supports a group of 50 teachers and logs at
least 40 converted periods, online and in person); HCMC's digital-skills plan (in-person time
must exceed 50% of a topic's content; at most 150 learners per class).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Any

from modules.catalogue import PROGRAMMES as CATALOGUE_PROGRAMMES

COHORT_MAX = 50
CLASS_CAP = 150
SUPPORT_PERIODS_MIN = Decimal(40)

# Which programmes demand more than half of the content in person: the catalogue's table.
PROGRAMMES: dict[str, bool] = {
    name: rule.in_person_share_above is not None for name, rule in CATALOGUE_PROGRAMMES.items()
}


# -- cohorts -------------------------------------------------------------------------------


@dataclass(frozen=True)
class LearnerRef:
    id: int
    school: str | None = None


@dataclass(frozen=True)
class CohortPlan:
    trainer_id: int | None
    learner_ids: tuple[int, ...]


def cohort_sizes(learners: int, trainers: int, max_size: int = COHORT_MAX) -> list[int]:
    """Balanced sizes: as many cohorts as trainers, more if needed to stay within
    ``max_size``; sizes differ by at most one."""
    if max_size < 1:
        raise ValueError("max_size must be at least 1")
    count = max(trainers, math.ceil(learners / max_size), 1)
    base, extra = divmod(learners, count)
    return [base + 1 if i < extra else base for i in range(count)]


def plan_cohorts(
    learners: Sequence[LearnerRef],
    trainer_ids: Sequence[int],
    max_size: int = COHORT_MAX,
) -> list[CohortPlan]:
    """Split a class into balanced cohorts of at most ``max_size``, keeping the teachers of a
    school together where the sizes allow.

    Schools are placed largest first, each whole into the cohort with the most room left;
    a school larger than any remaining room is split across cohorts. Learners without a
    school are placed last, one by one. Cohorts beyond the number of trainers have none
    (a compliance failure the administrator sees). Deterministic for the same input.
    """
    sizes = cohort_sizes(len(learners), len(trainer_ids), max_size)
    room = list(sizes)
    members: list[list[int]] = [[] for _ in sizes]

    by_school: dict[str, list[int]] = defaultdict(list)
    loose: list[int] = []
    for learner in sorted(learners, key=lambda lr: lr.id):
        if learner.school:
            by_school[learner.school.strip().casefold()].append(learner.id)
        else:
            loose.append(learner.id)
    groups = sorted(by_school.items(), key=lambda item: (-len(item[1]), item[0]))

    def roomiest() -> int:
        return max(range(len(room)), key=lambda i: (room[i], -i))

    for _, ids in groups:
        pending = list(ids)
        while pending:
            # A cohort that can take the whole rest of this school, tightest fit first.
            fits = [i for i in range(len(room)) if room[i] >= len(pending)]
            target = min(fits, key=lambda i: (room[i], i)) if fits else roomiest()
            take = min(room[target], len(pending))
            members[target].extend(pending[:take])
            room[target] -= take
            pending = pending[take:]
    for learner_id in loose:
        target = roomiest()
        members[target].append(learner_id)
        room[target] -= 1

    return [
        CohortPlan(
            trainer_id=trainer_ids[i] if i < len(trainer_ids) else None,
            learner_ids=tuple(ids),
        )
        for i, ids in enumerate(members)
    ]


# -- compliance ----------------------------------------------------------------------------


class Status(StrEnum):
    PASS = "pass"  # noqa: S105 - a rule's status, not a password
    FAIL = "fail"
    PENDING = "pending"  # cannot be judged before the class ends


@dataclass(frozen=True)
class CohortFacts:
    name: str
    size: int
    has_trainer: bool
    support_periods: Decimal


@dataclass(frozen=True)
class ClassFacts:
    class_name: str
    programme: str
    capacity: int
    enrolled: int
    self_study_periods: int
    in_person_periods: int
    follow_up_periods: int
    cohorts: tuple[CohortFacts, ...]
    unassigned: int
    ends_on: date
    today: date
    virtual_fallback: bool = False
    fallback_reason: str | None = None
    fallback_decided_on: date | None = None


@dataclass(frozen=True)
class RuleResult:
    code: str
    status: Status
    rule: str  # message id: the rule in words
    detail: str  # message id: why it passes or fails
    params: dict[str, Any] = field(default_factory=dict)


def in_person_share(facts: ClassFacts) -> tuple[int, int]:
    """(in-person periods, all content periods): kept as integers so '> 50%' is exact."""
    total = facts.self_study_periods + facts.in_person_periods + facts.follow_up_periods
    return facts.in_person_periods, total


def evaluate(facts: ClassFacts) -> list[RuleResult]:
    results: list[RuleResult] = []
    cap = min(facts.capacity, CLASS_CAP)

    results.append(
        RuleResult(
            code="class_size",
            status=Status.PASS if facts.enrolled <= cap else Status.FAIL,
            rule="At most %(cap)s learners in a class",
            detail="%(enrolled)s learners enrolled, cap %(cap)s",
            params={"cap": cap, "enrolled": facts.enrolled},
        )
    )

    part, total = in_person_share(facts)
    percent = f"{(Decimal(part) * 100 / total).quantize(Decimal('0.1'))}" if total else "0"
    required = PROGRAMMES.get(facts.programme, False)
    if required:
        ok = total > 0 and part * 2 > total
        results.append(
            RuleResult(
                code="in_person_share",
                status=Status.PASS if ok else Status.FAIL,
                rule="In-person time must be more than 50%% of the content (%(programme)s)",
                detail="In person: %(part)s of %(total)s periods (%(percent)s%%)",
                params={
                    "programme": facts.programme,
                    "part": part,
                    "total": total,
                    "percent": percent,
                },
            )
        )
    else:
        results.append(
            RuleResult(
                code="in_person_share",
                status=Status.PASS,
                rule="No minimum in-person share in this programme (%(programme)s)",
                detail="In person: %(part)s of %(total)s periods (%(percent)s%%)",
                params={
                    "programme": facts.programme,
                    "part": part,
                    "total": total,
                    "percent": percent,
                },
            )
        )

    oversized = [c.name for c in facts.cohorts if c.size > COHORT_MAX]
    results.append(
        RuleResult(
            code="cohort_size",
            status=Status.FAIL if oversized else Status.PASS,
            rule="At most %(max)s learners per core trainer",
            detail="Cohorts over the limit: %(names)s"
            if oversized
            else "Every cohort is within the limit",
            params={"max": COHORT_MAX, "names": ", ".join(oversized)},
        )
    )

    if facts.enrolled and not facts.cohorts:
        results.append(
            RuleResult(
                code="cohort_trainer",
                status=Status.FAIL,
                rule="Every cohort has a core trainer",
                detail="The class has learners but no cohorts yet",
            )
        )
    else:
        orphans = [c.name for c in facts.cohorts if not c.has_trainer]
        results.append(
            RuleResult(
                code="cohort_trainer",
                status=Status.FAIL if orphans else Status.PASS,
                rule="Every cohort has a core trainer",
                detail="Cohorts without a trainer: %(names)s"
                if orphans
                else "Every cohort has a trainer",
                params={"names": ", ".join(orphans)},
            )
        )

    results.append(
        RuleResult(
            code="all_assigned",
            status=Status.FAIL if facts.unassigned else Status.PASS,
            rule="Every learner belongs to a cohort",
            detail="%(count)s learners are in no cohort"
            if facts.unassigned
            else "Every learner belongs to a cohort",
            params={"count": facts.unassigned},
        )
    )

    # A cohort without a trainer gets no support at all: it is short too.
    short = [c for c in facts.cohorts if c.support_periods < SUPPORT_PERIODS_MIN]
    if not short:
        status = Status.PASS
    elif facts.today > facts.ends_on:
        status = Status.FAIL
    else:
        status = Status.PENDING
    results.append(
        RuleResult(
            code="support_periods",
            status=status,
            rule="Each core trainer logs at least %(min)s converted periods by the end",
            detail="Below %(min)s periods: %(names)s"
            if short
            else "Every cohort's trainer has logged at least %(min)s periods",
            params={
                "min": int(SUPPORT_PERIODS_MIN),
                "names": ", ".join(f"{c.name} ({c.support_periods})" for c in short),
            },
        )
    )
    if facts.virtual_fallback:
        # Not a breach: the plans allow it in an epidemic or disaster. Shown so that the
        # in-person share above is read knowing the sessions are held online.
        results.append(
            RuleResult(
                code="virtual_fallback",
                status=Status.PASS,
                rule="In an epidemic or disaster the in-person days move to a virtual classroom",
                detail="In-person sessions held in a virtual classroom since %(date)s: %(reason)s",
                params={
                    "date": facts.fallback_decided_on.strftime("%d/%m/%Y")
                    if facts.fallback_decided_on
                    else "",
                    "reason": facts.fallback_reason or "",
                },
            )
        )
    return results
