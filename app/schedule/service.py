"""The holiday calendar of a tenant: the shipped Vietnamese calendar plus the
administrators' overrides (extra days off, shipped holidays that are working days)."""

from __future__ import annotations

from datetime import date

from sqlalchemy.orm import Session

from app.audit.rules import Actor, Subject
from app.audit.service import AuditLog, system_actor
from app.classes.models import HolidayOverride
from app.classes.repository import ClassRepository
from app.core.errors import ValidationFailed
from app.core.time import local, utcnow
from app.schedule.calendar import Holiday, HolidayCalendar

YEARS_AROUND = 2


def calendar_for(
    session: Session, deployment_id: int, *, around: int | None = None
) -> HolidayCalendar:
    """The calendar for a tenant, covering a few years around ``around`` (default: today)."""
    year = around or local(utcnow()).year
    overrides = ClassRepository(session).holiday_overrides(deployment_id)
    extra = [
        Holiday(date=o.date, name_vi=o.name, name_en=o.name, kind="custom")
        for o in overrides
        if o.kind == "off"
    ]
    removed = [o.date for o in overrides if o.kind == "working"]
    return HolidayCalendar.vietnam(
        range(year - YEARS_AROUND, year + YEARS_AROUND + 2), extra=extra, removed=removed
    )


class HolidayService:
    """``actor``: who changes the calendar, for the audit log."""

    def __init__(self, session: Session, actor: Actor | None = None) -> None:
        self.repo = ClassRepository(session)
        self.actor = actor

    def add_override(self, deployment_id: int, day: date, kind: str, name: str) -> HolidayOverride:
        if kind not in ("off", "working"):
            raise ValidationFailed(
                "%(field)s must be one of: %(allowed)s",
                params={"field": "kind", "allowed": "off, working"},
            )
        name = name.strip()
        if not name or len(name) > 200:
            raise ValidationFailed("%(field)s is required", params={"field": "name"})
        existing = self.repo.holiday_override(deployment_id, day)
        before = {"kind": existing.kind, "name": existing.name} if existing is not None else None
        if existing is not None:
            existing.kind, existing.name = kind, name
            row = existing
        else:
            row = HolidayOverride(deployment_id=deployment_id, date=day, kind=kind, name=name)
            self.repo.add(row)
        actor = self.actor or system_actor(self.repo.session, deployment_id)
        AuditLog(self.repo.session).record(
            actor,
            "holiday.add",
            Subject("holiday", row.id, day.isoformat()),
            before,
            {"date": day, "kind": kind, "name": name}
            if before is None
            else {"kind": kind, "name": name},
        )
        return row
