"""Certificates: issued lazily when someone asks for one (or in bulk for a class ZIP), revoked
when the result behind them stops completing the module, verified by their code.

Who may have what:

* a learner: their own certificate of a class they are an active learner of;
* the core trainer of the learner's cohort, or an administrator: that learner's certificate;
* anyone, without signing in: the verification of a code (what the certificate says, and
  whether it is still valid — nothing else);
* an administrator: the issuing unit of their deployment, counts per class, a class's ZIP.

Issuing is idempotent: one certificate per enrolment (unique ``enrolment_id``), inserted with
``INSERT … ON CONFLICT DO NOTHING`` so that two simultaneous first requests still make one.
A revoked certificate whose learner becomes eligible again is reinstated with the same code
and a fresh snapshot (the schema allows one certificate per enrolment, and a printed copy's
code should lead to its current state rather than to "unknown").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy.orm import Session

from app.audit.rules import Actor, Subject
from app.audit.service import AuditLog, system_actor
from app.auth.dependencies import Viewer
from app.catalogue.models import ModuleVersion
from app.certificates.models import Certificate, CertificateIssuer
from app.certificates.repository import CertificateRepository, LearnerRow
from app.certificates.rules import (
    Eligibility,
    IssuerFacts,
    LearnerFacts,
    ResultFacts,
    build_snapshot,
    eligibility,
    module_label,
    new_code,
    normalise_code,
    still_completes,
)
from app.classes.models import EnrolmentStatus, TrainingClass
from app.classes.repository import ClassRepository
from app.classes.service import learner_schedule, periods_of, stored_schedule
from app.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from app.core.templating import vndate
from app.core.time import local, utcnow
from app.grading.models import ModuleResultRow
from app.grading.rules import GradePolicy
from app.grading.service import classification_name, policy_of
from app.learning.repository import LearningRepository
from app.schedule.rules import Schedule

if TYPE_CHECKING:
    from app.grading.service import LearnerResult

#: Stored in ``certificate.revoked_reason`` (for people looking at the database, not shown).
REVOKED_RESULT_CHANGED = "result_changed: the module result no longer completes the module"

#: Longest values of the issuer's fields (the columns' sizes).
ISSUER_FIELDS: dict[str, int] = {
    "unit_name": 255,
    "parent_unit": 255,
    "signer_title": 255,
    "signer_name": 255,
    "place": 120,
}


def N_(message: str) -> str:
    """Marks an English message id for extraction; translated where it is shown."""
    return message


REQUIRED = N_("This field is required.")
TOO_LONG = N_("At most %(max_length)s characters.")


@dataclass(frozen=True)
class ModuleFacts:
    """What a class's module version says that a certificate needs."""

    policy: GradePolicy
    number: int | None
    title: str
    track: str
    periods: int


@dataclass(frozen=True)
class Verification:
    """What the public verification page may show, and nothing more."""

    status: Literal["valid", "revoked"]
    code: str
    name: str
    module: str
    start: date
    end: date
    classification: str
    issuing_unit: str
    issued_on: date

    def public(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "code": self.code,
            "name": self.name,
            "module": self.module,
            "class_dates": {"start": self.start.isoformat(), "end": self.end.isoformat()},
            "classification": self.classification,
            "issuing_unit": self.issuing_unit,
            "issued_on": self.issued_on.isoformat(),
        }


@dataclass(frozen=True)
class ClassCertificates:
    cls: TrainingClass
    module_title: str
    learners: int
    eligible: int
    issued: int


@dataclass(frozen=True)
class Printable:
    """A certificate ready to draw: who (for the file name), its code and its snapshot."""

    name: str
    code: str
    snapshot: dict[str, Any]


@dataclass(frozen=True)
class IssuerForm:
    values: dict[str, str]
    errors: dict[str, str]


def module_facts(version: ModuleVersion | None, level: str) -> ModuleFacts:
    spec: dict[str, Any] = dict(version.spec) if version is not None else {}
    titles = spec.get("titles") or {}
    title = str(titles.get(level) or (version.title_vi if version is not None else ""))
    number = spec.get("number")
    return ModuleFacts(
        policy=policy_of(spec),
        number=int(number) if isinstance(number, int) else None,
        title=title,
        track=str(spec.get("track") or ""),
        periods=sum(periods_of(spec)),
    )


def result_facts(row: ModuleResultRow | None) -> ResultFacts | None:
    if row is None:
        return None
    return ResultFacts(
        classification=row.classification,
        final=bool(row.final),
        overridden=row.override_score is not None,
        score=None if row.score is None else Decimal(row.score),
    )


def _schedule(cls: TrainingClass, own: dict[str, Any] | None) -> Schedule:
    """A learner's dates: their own when shifted, else the class's."""
    return Schedule.from_dict(own) if own else stored_schedule(cls)


def refusal(verdict: Eligibility) -> Conflict:
    """The 409 a person gets when there is no certificate (yet), saying why."""
    return Conflict(
        verdict.message,
        code=f"certificate_{verdict.reason}",
        title="No certificate yet",
        advice="The certificate becomes available here as soon as the conditions are met.",
        params={"end": vndate(verdict.end) if verdict.end else ""},
    )


def issuer_fields(row: CertificateIssuer | None) -> dict[str, str | None]:
    """The issuing unit as the audit log keeps it (``None`` for a field not set)."""
    return {name: (getattr(row, name, None) or None) for name in ISSUER_FIELDS}


class CertificateService:
    """``actor``: who changes the issuing unit, for the audit log (the tool itself when
    ``None``). Revoking a certificate whose result stopped completing the module is always
    the tool's own change (the person changed the result, logged as such)."""

    def __init__(self, session: Session, actor: Actor | None = None) -> None:
        self.session = session
        self.actor = actor
        self.repo = CertificateRepository(session)
        self.learning = LearningRepository(session)
        self._modules: dict[tuple[int, str], ModuleFacts] = {}

    # -- the issuer ------------------------------------------------------------------------
    def issuer(self, deployment_id: int) -> CertificateIssuer | None:
        return self.repo.issuer(deployment_id)

    def check_issuer(self, raw: dict[str, str]) -> IssuerForm:
        """The issuer form, trimmed, with an error per field at fault (message ids)."""
        values = {k: " ".join((raw.get(k) or "").split()) for k in ISSUER_FIELDS}
        errors: dict[str, str] = {}
        if not values["unit_name"]:
            errors["unit_name"] = REQUIRED
        for name, limit in ISSUER_FIELDS.items():
            if len(values[name]) > limit:
                errors[name] = TOO_LONG
        return IssuerForm(values, errors)

    def set_issuer(self, deployment_id: int, form: IssuerForm, now: datetime) -> CertificateIssuer:
        if form.errors:
            raise ValidationFailed(
                "Some fields are missing or not valid.", params={"field": next(iter(form.errors))}
            )
        row = self.repo.issuer(deployment_id)
        before = issuer_fields(row) if row is not None else None
        if row is None:
            row = CertificateIssuer(deployment_id=deployment_id, unit_name="")
            self.repo.add(row)
        row.unit_name = form.values["unit_name"]
        for name in ("parent_unit", "signer_title", "signer_name", "place"):
            setattr(row, name, form.values[name] or None)
        after = issuer_fields(row)
        if before == after:  # saved as it was: nothing changed, nothing to log
            return row
        row.updated_at = now
        self.repo.flush()
        actor = self.actor or system_actor(self.session, deployment_id)
        AuditLog(self.session).record(
            actor,
            "certificates.issuer",
            Subject("certificate_issuer", deployment_id, row.unit_name),
            before,
            after if before is not None else {k: v for k, v in after.items() if v},
        )
        return row

    # -- who may have which certificate ----------------------------------------------------
    def own(self, viewer: Viewer, class_id: int, now: datetime) -> Certificate:
        """The signed-in learner's certificate of a class (issued now if due)."""
        cls = self.learning.get_class(viewer.deployment_id, class_id)
        if cls is None:
            raise NotFound()
        enrolment = self.learning.active_enrolment(cls.id, viewer.user.id)
        if enrolment is None:
            raise NotFound(
                detail="There is no certificate for you in this class: you are not one of "
                "its learners.",
            )
        (row,) = self.repo.learners(cls.id, [enrolment.id])
        return self._issue(cls, row, now)

    def for_enrolment(self, viewer: Viewer, enrolment_id: int, now: datetime) -> Certificate:
        """A learner's certificate, for the core trainer of their cohort or an administrator."""
        found = self.learning.enrolment_in_tenant(viewer.deployment_id, enrolment_id)
        if found is None or found[0].status != EnrolmentStatus.ACTIVE:
            raise NotFound()
        enrolment, cls, _user = found
        if not ClassRepository(self.session).follows(viewer.role, viewer.user.id, enrolment):
            raise Forbidden(
                detail="Only the core trainer of this learner's cohort, or an administrator, "
                "can print this learner's certificate."
            )
        (row,) = self.repo.learners(cls.id, [enrolment.id])
        return self._issue(cls, row, now)

    # -- issuing ---------------------------------------------------------------------------
    def module(self, cls: TrainingClass) -> ModuleFacts:
        key = (cls.module_version_id, cls.level)
        facts = self._modules.get(key)
        if facts is None:
            version = self.learning.module_version(cls.module_version_id)
            facts = self._modules[key] = module_facts(version, cls.level)
        return facts

    def eligibility_of(self, cls: TrainingClass, row: LearnerRow, today: date) -> Eligibility:
        end = learner_schedule(cls, row.enrolment).end
        return eligibility(result_facts(row.result), self.module(cls).policy, end, today)

    def _issuer_facts(self, deployment_id: int) -> IssuerFacts:
        issuer = self.repo.issuer(deployment_id)
        if issuer is None or not issuer.unit_name:
            raise Conflict(
                "The unit that issues certificates has not been set yet.",
                code="certificate_no_issuer",
                title="No certificate yet",
                advice="Ask your unit's administrator to set it on the Certificates page.",
            )
        return IssuerFacts(
            unit_name=issuer.unit_name,
            parent_unit=issuer.parent_unit,
            signer_name=issuer.signer_name,
            signer_title=issuer.signer_title,
            place=issuer.place,
        )

    def _issue(
        self,
        cls: TrainingClass,
        row: LearnerRow,
        now: datetime,
        *,
        existing: Certificate | None = None,
        issuer: IssuerFacts | None = None,
    ) -> Certificate:
        existing = existing or self.repo.by_enrolment(row.enrolment.id)
        if existing is not None and existing.revoked_at is None:
            return existing
        verdict = self.eligibility_of(cls, row, local(now).date())
        if not verdict.eligible:
            raise refusal(verdict)
        if not (row.user.name or row.user.family_name or row.user.given_name):
            raise Conflict(
                "The learner's name is not known to blend727, so no certificate can be printed.",
                code="certificate_no_name",
                title="No certificate yet",
                advice="Ask the LMS administrator to let the LMS share names with blend727.",
            )
        snapshot = self._snapshot(cls, row, issuer or self._issuer_facts(cls.deployment_id), now)
        if existing is not None:  # revoked, and eligible again
            existing.revoked_at = None
            existing.revoked_reason = None
            existing.snapshot = snapshot
            existing.issued_at = now
            self.repo.flush()
            return existing
        self.repo.insert_if_absent(
            {
                "deployment_id": cls.deployment_id,
                "enrolment_id": row.enrolment.id,
                "code": new_code(),
                "snapshot": snapshot,
                "issued_at": now,
            }
        )
        found = self.repo.by_enrolment(row.enrolment.id)
        if found is None:  # pragma: no cover - the insert or a simultaneous one made it
            raise NotFound()
        return found

    def _snapshot(
        self, cls: TrainingClass, row: LearnerRow, issuer: IssuerFacts, now: datetime
    ) -> dict[str, Any]:
        module = self.module(cls)
        schedule = learner_schedule(cls, row.enrolment)
        result = result_facts(row.result)
        assert result is not None  # eligible
        return build_snapshot(
            LearnerFacts(
                name=row.user.display_name,
                school=row.user.school,
                module_number=module.number,
                module_title=module.title,
                track=module.track,
                class_code=cls.code,
                class_name=cls.name,
                start=schedule.start,
                end=schedule.end,
                periods=module.periods,
            ),
            result,
            classification_name(module.policy, result.classification, "vi"),
            issuer,
            issued_at=now,
            issued_on=local(now).date(),
        )

    def issue_class(self, deployment_id: int, class_id: int, now: datetime) -> list[Printable]:
        """Every eligible learner's certificate of a class (issuing those not issued yet),
        by name."""
        cls = self.repo.get_class(deployment_id, class_id)
        if cls is None:
            raise NotFound()
        today = local(now).date()
        rows = self.repo.learners(cls.id)
        certificates = self.repo.by_enrolments([r.enrolment.id for r in rows])
        issuer: IssuerFacts | None = None
        out: list[Printable] = []
        for row in rows:
            cert = certificates.get(row.enrolment.id)
            if cert is None or cert.revoked_at is not None:
                if not self.eligibility_of(cls, row, today).eligible:
                    continue
                issuer = issuer or self._issuer_facts(deployment_id)
                try:
                    cert = self._issue(cls, row, now, existing=cert, issuer=issuer)
                except Conflict:  # e.g. no name: left out of the ZIP, the others go on
                    continue
            out.append(Printable(str(cert.snapshot.get("name") or ""), cert.code, cert.snapshot))
        return out

    # -- results that change ---------------------------------------------------------------
    def sync(
        self, results: Sequence[LearnerResult], policy: GradePolicy, now: datetime | None = None
    ) -> int:
        """Revoke the certificates whose (just recomputed) result no longer completes the
        module. Called at the end of ``GradingService.refresh``: at most one statement."""
        ids = [
            r.enrolment_id
            for r in results
            if not still_completes(r.result.classification, r.result.final, policy)
        ]
        if not ids:
            return 0
        revoked = self.repo.revoke(ids, now or utcnow(), REVOKED_RESULT_CHANGED)
        if revoked:
            learners = self.repo.learners_of([c.enrolment_id for c in revoked])
            log = AuditLog(self.session)
            actors: dict[int, Actor] = {}
            for cert in revoked:
                user, class_id = learners.get(cert.enrolment_id, (None, None))
                actor = actors.get(cert.deployment_id) or system_actor(
                    self.session, cert.deployment_id
                )
                actors[cert.deployment_id] = actor
                log.record(
                    actor,
                    "certificate.revoke",
                    Subject(
                        "certificate",
                        cert.id,
                        user.display_name if user is not None else None,
                        class_id,
                    ),
                )
        return len(revoked)

    # -- verification ----------------------------------------------------------------------
    def verify(self, code: str) -> Verification:
        canonical = normalise_code(code)
        cert = self.repo.by_code(canonical) if canonical else None
        if cert is None:
            raise NotFound(
                "No certificate has this code. Check the code printed next to the QR code.",
                code="certificate_unknown",
                title="No such certificate",
            )
        snap = cert.snapshot
        issuer = snap.get("issuer") or {}
        return Verification(
            status="revoked" if cert.revoked_at is not None else "valid",
            code=cert.code,
            name=str(snap.get("name") or ""),
            module=module_label(snap),
            start=date.fromisoformat(snap["start"]),
            end=date.fromisoformat(snap["end"]),
            classification=str(snap.get("classification_vi") or ""),
            issuing_unit=str(issuer.get("unit_name") or ""),
            issued_on=date.fromisoformat(snap["issued_on"]),
        )

    # -- the administrator's overview ------------------------------------------------------
    def class_overview(self, deployment_id: int, today: date) -> list[ClassCertificates]:
        """Per class of the tenant: active learners, those eligible, valid certificates."""
        classes = self.repo.classes(deployment_id)
        versions = self.repo.versions({c.module_version_id for c in classes})
        facts = {c.id: module_facts(versions.get(c.module_version_id), c.level) for c in classes}
        by_id = {c.id: c for c in classes}
        learners: dict[int, int] = {}
        eligible: dict[int, int] = {}
        for line in self.repo.result_lines(deployment_id):
            cls = by_id.get(line.class_id)
            if cls is None:
                continue
            learners[cls.id] = learners.get(cls.id, 0) + 1
            result = (
                ResultFacts(line.classification, line.final, line.overridden, line.score)
                if line.classification is not None
                else None
            )
            end = _schedule(cls, line.own_schedule).end
            if eligibility(result, facts[cls.id].policy, end, today).eligible:
                eligible[cls.id] = eligible.get(cls.id, 0) + 1
        issued = self.repo.issued_counts(deployment_id)
        return [
            ClassCertificates(
                cls=c,
                module_title=facts[c.id].title,
                learners=learners.get(c.id, 0),
                eligible=eligible.get(c.id, 0),
                issued=issued.get(c.id, 0),
            )
            for c in classes
        ]

    def class_for_zip(self, deployment_id: int, class_id: int, today: date) -> TrainingClass:
        """The class whose ZIP an administrator asks for, refused when there is nothing to
        put in it or nobody to issue it."""
        cls = self.repo.get_class(deployment_id, class_id)
        if cls is None:
            raise NotFound()
        rows = self.repo.learners(cls.id)
        valid = {
            e
            for e, c in self.repo.by_enrolments([r.enrolment.id for r in rows]).items()
            if c.revoked_at is None
        }
        todo = [
            r
            for r in rows
            if r.enrolment.id not in valid and self.eligibility_of(cls, r, today).eligible
        ]
        if todo:
            self._issuer_facts(deployment_id)
        if not todo and not valid:
            raise Conflict(
                "No learner of this class can have a certificate yet.",
                code="certificate_none_eligible",
                title="No certificate yet",
            )
        return cls
