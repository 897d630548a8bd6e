"""An audit event as a sentence people read, in their language:
"Nguyễn Văn A đã sửa điểm bài nộp #12 (Trần Thị B · Kế hoạch bài dạy): 6,5 → 7,5 — lý do: …".

Only message ids here (English); the Vietnamese is in the catalogue. Values are written as
the page's language writes them: scores with a decimal comma, dates dd/mm/yyyy, statuses
and results by name.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from app.audit.rules import NOT_PEOPLE
from app.core.i18n import gettext
from app.core.templating import vndate
from app.core.time import local
from app.grading.service import CLASSIFICATION_NAMES


def _(message: str) -> str:
    """Marks an English message id for extraction; translated when it is shown."""
    return message


class EventFacts(Protocol):
    actor_label: str
    actor_user_id: int | None
    action: str
    object_type: str
    object_id: str | None
    object_label: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    reason: str | None


#: What each action says; ``%(actor)s`` and ``%(object)s`` are filled in.
ACTIONS: dict[str, str] = {
    "grade.set": _("%(actor)s set the grade of %(object)s"),
    "override.set": _("%(actor)s overrode the result of %(object)s"),
    "override.clear": _("%(actor)s removed the override of the result of %(object)s"),
    "result.manual": _("%(actor)s entered a component score of %(object)s"),
    "attendance.mark": _("%(actor)s marked the attendance of %(object)s"),
    "attendance.checkin": _("%(actor)s checked in as %(object)s"),
    "enrolment.add": _("%(actor)s enrolled %(object)s"),
    "enrolment.remove": _("%(actor)s marked %(object)s as having left the class"),
    "enrolment.shift": _("%(actor)s moved the dates of %(object)s"),
    "cohort.move": _("%(actor)s moved %(object)s to another cohort"),
    "cohort.trainer": _("%(actor)s changed the core trainer of %(object)s"),
    "cohort.split": _("%(actor)s split %(object)s into cohorts"),
    "trainer.add": _("%(actor)s added a core trainer to %(object)s"),
    "support.log": _("%(actor)s logged support periods for %(object)s"),
    "wave.create": _("%(actor)s created %(object)s"),
    "class.create": _("%(actor)s created %(object)s"),
    "class.update": _("%(actor)s changed %(object)s"),
    "class.fallback.set": _(
        "%(actor)s moved the in-person sessions of %(object)s to the virtual classroom"
    ),
    "class.fallback.clear": _("%(actor)s brought the sessions of %(object)s back in person"),
    "calendar.renew": _("%(actor)s renewed the calendar link of %(object)s"),
    "module.edit": _("%(actor)s edited %(object)s"),
    "module.import": _("%(actor)s imported %(object)s"),
    "roster.import": _("%(actor)s imported a class list into %(object)s"),
    "holiday.add": _("%(actor)s changed the calendar on %(object)s"),
    "platform.register": _("%(actor)s registered %(object)s"),
    "platform.update": _("%(actor)s updated the registration of %(object)s"),
    "platform.approve": _("%(actor)s approved %(object)s"),
    "platform.reject": _("%(actor)s rejected %(object)s"),
    "platform.disable": _("%(actor)s disabled %(object)s"),
    "platform.enable": _("%(actor)s enabled %(object)s"),
    "platform.invite": _("%(actor)s created %(object)s"),
    "keys.rotate": _("%(actor)s rotated the signing key to %(object)s"),
    "passback.retry": _("%(actor)s had %(object)s sent to the LMS again"),
    "target.add": _("%(actor)s added %(object)s"),
    "target.delete": _("%(actor)s deleted %(object)s"),
    "certificates.issuer": _("%(actor)s changed %(object)s"),
    "certificate.revoke": _(
        "%(actor)s revoked %(object)s: the result no longer completes the module"
    ),
    "user.disable": _("%(actor)s disabled %(object)s"),
    "user.enable": _("%(actor)s enabled %(object)s"),
    "audit.export": _("%(actor)s exported %(object)s"),
}
OTHER_ACTION = _("%(actor)s changed %(object)s (%(action)s)")
#: The action filter of the page: a group matches every action under it ("class" matches
#: "class.create", "class.fallback.set" …).
ACTION_GROUPS: dict[str, str] = {
    "grade": _("Grades of hand-ins"),
    "override": _("Overrides of results"),
    "result": _("Component scores typed in"),
    "attendance": _("Attendance"),
    "enrolment": _("Enrolments"),
    "cohort": _("Cohorts"),
    "trainer": _("Core trainers"),
    "support": _("Support periods"),
    "class": _("Classes"),
    "calendar": _("Calendar links"),
    "wave": _("Waves"),
    "module": _("Modules"),
    "holiday": _("Holidays"),
    "passback": _("Scores sent to the LMS again"),
    "target": _("Targets"),
    "certificate": _("Certificates revoked"),
    "certificates": _("Issuing unit"),
    "user": _("People disabled or enabled"),
    "audit": _("Exports of the audit log"),
}

#: Names of the things an event is about.
OBJECTS: dict[str, str] = {
    "submission": _("hand-in"),
    "enrolment": _("learner enrolment"),
    "class": _("class"),
    "cohort": _("cohort"),
    "wave": _("wave"),
    "module": _("module"),
    "holiday": _("day"),
    "platform": _("LMS"),
    "invitation": _("invitation"),
    "tool_key": _("key"),
    "score": _("score"),
    "target": _("target"),
    "certificate": _("certificate"),
    "certificate_issuer": _("the issuing unit of certificates"),
    "user": _("person"),
    "audit_log": _("the audit log"),
}

#: Names of the fields in ``before``/``after``.
FIELDS: dict[str, str] = {
    "score": _("Score"),
    "classification": _("Result"),
    "self_study": _("Self-study"),
    "follow_up": _("Follow-up"),
    "status": _("Status"),
    "note": _("Note"),
    "session": _("Session"),
    "source": _("Source"),
    "cohort": _("Cohort"),
    "cohort_id": _("Cohort"),
    "cohorts": _("Cohorts"),
    "learners": _("Learners"),
    "trainer": _("Core trainer"),
    "trainer_user_id": _("Core trainer"),
    "course_id": _("Course"),
    "url": _("Virtual classroom link"),
    "decided_on": _("Date of the decision"),
    "version": _("Version"),
    "kind": _("Kind"),
    "name": _("Name"),
    "year": _("Year"),
    "date": _("Date"),
    "code": _("Class code"),
    "module": _("Module"),
    "level": _("Level"),
    "capacity": _("Capacity"),
    "in_person_dates": _("In-person dates"),
    "start": _("Start date"),
    "end": _("End date"),
    "form": _("Kind"),
    "periods": _("Periods"),
    "delivery": _("Sending"),
    "track": _("Staff group"),
    "district": _("District"),
    "module_key": _("Module"),
    "staff_count": _("Staff count"),
    "percent": _("Target (%)"),
    "due_on": _("Due by"),
    "unit_name": _("Issuing unit"),
    "parent_unit": _("Parent body"),
    "signer_title": _("Title of the signer"),
    "signer_name": _("Name of the signer"),
    "place": _("Place written before the date"),
    # the filters of an export of the log
    "from": _("From"),
    "to": _("To"),
    "actor": _("Done by"),
    "action": _("Action"),
    "object_type": _("Object type"),
    "object_id": _("Object id"),
    "class_id": _("Class"),
}
#: Fields whose values are scores (written 6,5 in Vietnamese).
SCORES = {"score", "self_study", "follow_up", "periods", "percent"}
#: Values that have a name.
VALUES: dict[str, dict[str, str]] = {
    "status": {
        "present": _("Present"),
        "late": _("Late"),
        "excused": _("Excused"),
        "absent": _("Absent"),
        "active": _("enrolled"),
        "left": _("left the class"),
        "pending": _("Waiting for approval"),
        "disabled": _("Disabled"),
        "enabled": _("Enabled"),
    },
    "delivery": {
        "pending": _("Waiting"),
        "failed": _("Failed"),
        "dead": _("Gave up after three days"),
        "queued": _("Queued to be sent at once"),
    },
    "track": {"gvpt": _("GVPT (teachers)"), "cbql": _("CBQL (school managers)")},
    "source": {
        "manual": _("by an administrator"),
        "nrps": _("from the LMS's class list"),
        "launch": _("opened from the LMS"),
        "demo": _("demonstration"),
    },
    "kind": {"off": _("Day off"), "working": _("Working day")},
}
SESSION_PARTS = {"morning": _("Morning of %(date)s"), "afternoon": _("Afternoon of %(date)s")}
REASON = _("reason: %(reason)s")
NOTHING = "—"


def actor_text(label: str, user_id: int | None, locale: str) -> str:
    """A person's name as it was; the tool's own actors in the reader's language."""
    if user_id is None and label in NOT_PEOPLE:
        return gettext(locale, label)
    return label


def object_text(object_type: str, object_id: str | None, label: str | None, locale: str) -> str:
    name = OBJECTS.get(object_type)
    text = gettext(locale, name) if name else object_type
    if object_id:
        text += f" #{object_id}"
    if label:
        text += f" ({label})"
    return text


def _number(raw: str, locale: str) -> str:
    """6.50 → 6,5 (Vietnamese) or 6.5; 7.00 → 7."""
    try:
        value = Decimal(raw)
    except (InvalidOperation, ValueError):
        return raw
    if not value.is_finite():
        return raw
    if value == value.to_integral_value():
        text = str(value.quantize(Decimal(1)))
    else:
        text = format(value.normalize(), "f")
    return text.replace(".", ",") if locale == "vi" else text


def _date_text(raw: str) -> str | None:
    try:
        if "T" in raw:
            return local(datetime.fromisoformat(raw)).strftime("%d/%m/%Y %H:%M")
        return vndate(date.fromisoformat(raw))
    except ValueError:
        return None


def value_text(field: str, value: Any, locale: str) -> str:
    """One value of ``before``/``after`` as the reader's language writes it."""
    if value is None or value == "":
        return NOTHING
    if isinstance(value, bool):
        return gettext(locale, _("Yes") if value else _("No"))
    if isinstance(value, list):
        return ", ".join(value_text(field, v, locale) for v in value) or NOTHING
    if isinstance(value, dict):
        return "; ".join(f"{k}: {value_text(k, v, locale)}" for k, v in value.items())
    if field == "session" and isinstance(value, str):
        day, _sep, part = value.partition(" ")
        when = _date_text(day) or day
        template = SESSION_PARTS.get(part)
        return gettext(locale, template, date=when) if template else when
    if field == "classification" and isinstance(value, str):
        names = CLASSIFICATION_NAMES.get(value)
        return (names[0] if locale == "vi" else names[1]) if names else value
    named = VALUES.get(field, {}).get(str(value))
    if named:
        return gettext(locale, named)
    if field in SCORES and isinstance(value, str | int | float):
        return _number(str(value), locale)
    if isinstance(value, str):
        found = _date_text(value) if len(value) in (10, 25, 32) or "T" in value else None
        return found or value
    return str(value)


def field_name(field: str, locale: str) -> str:
    name = FIELDS.get(field)
    return gettext(locale, name) if name else field


def changes_text(
    before: Mapping[str, Any] | None, after: Mapping[str, Any] | None, locale: str
) -> str:
    """``6,5 → 7,5`` for one field; ``Field: old → new; …`` for several; a created thing's
    values as ``Field: value; …``."""
    old, new = dict(before or {}), dict(after or {})
    context = {k: new.pop(k) for k in ("session",) if k in new and k not in old}
    keys = list(dict.fromkeys([*new, *old]))
    parts: list[str] = []
    if not old:
        parts = [f"{field_name(k, locale)}: {value_text(k, new[k], locale)}" for k in keys]
    elif len(keys) == 1:
        k = keys[0]
        parts = [f"{value_text(k, old.get(k), locale)} → {value_text(k, new.get(k), locale)}"]
    else:
        parts = [
            f"{field_name(k, locale)}: {value_text(k, old.get(k), locale)} → "
            f"{value_text(k, new.get(k), locale)}"
            for k in keys
        ]
    text = "; ".join(parts)
    if context:
        where = ", ".join(value_text(k, v, locale) for k, v in context.items())
        text = f"{where}: {text}" if text else where
    return text


def describe(event: EventFacts, locale: str) -> str:
    """The whole sentence of one event."""
    head = gettext(
        locale,
        ACTIONS.get(event.action, OTHER_ACTION),
        actor=actor_text(event.actor_label, event.actor_user_id, locale),
        object=object_text(event.object_type, event.object_id, event.object_label, locale),
        action=event.action,
    )
    text = head
    details = changes_text(event.before, event.after, locale)
    if details:
        text += f": {details}"
    if event.reason:
        text += " — " + gettext(locale, REASON, reason=event.reason)
    return text
