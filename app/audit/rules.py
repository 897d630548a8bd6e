"""The audit log's rules as plain functions over plain data: who acted (``Actor``), on what
(``Subject``), which fields changed (``changes``), values made safe for JSON, and the filters
and keyset cursor of a search (``parse_query``). No database, no HTTP.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any

from app.core.errors import ValidationFailed
from app.core.time import VN_TZ


def N_(message: str) -> str:
    """Marks an English message id for extraction; translated where it is shown."""
    return message


#: Labels of actors who are not people (stored as they are, translated when shown).
OPERATOR = N_("operator (CLI)")
WORKER = N_("system (worker)")
REGISTRATION = N_("LMS (dynamic registration)")
NOT_PEOPLE = (OPERATOR, WORKER, REGISTRATION)

#: Longest text kept for one value of ``before``/``after``, and for a reason.
MAX_VALUE_CHARS = 300
MAX_REASON_CHARS = 1000
MAX_LABEL_CHARS = 255
#: Rows per page of a search (default and most).
DEFAULT_LIMIT = 50
MAX_LIMIT = 200
MAX_SEARCH_CHARS = 100


@dataclass(frozen=True)
class Actor:
    """Who made a change, and the tenant it was made in (``platform_id`` ``None``: the
    installation's own event, such as the operator approving a platform)."""

    label: str
    user_id: int | None = None
    platform_id: int | None = None
    deployment_id: int | None = None

    @classmethod
    def person(
        cls, user_id: int, label: str, platform_id: int | None, deployment_id: int | None
    ) -> Actor:
        return cls(label[:MAX_LABEL_CHARS], user_id, platform_id, deployment_id)

    @classmethod
    def operator(cls, platform_id: int | None = None, deployment_id: int | None = None) -> Actor:
        """Someone at the server's command line."""
        return cls(OPERATOR, None, platform_id, deployment_id)

    @classmethod
    def system(
        cls, platform_id: int | None, deployment_id: int | None, label: str = WORKER
    ) -> Actor:
        """The tool itself (the worker, a background roster sync, a registration)."""
        return cls(label, None, platform_id, deployment_id)


@dataclass(frozen=True)
class Subject:
    """What changed: a row of ``type`` (``submission``, ``enrolment``, ``class``, …), its name
    at the time (``label``) and the class it belongs to, for the log's class filter."""

    type: str
    id: int | str | None
    label: str | None = None
    class_id: int | None = None


def json_value(value: Any) -> Any:
    """A value as the log keeps it: JSON types only, long texts cut short."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, Enum):
        return json_value(value.value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat() if value.tzinfo else value.isoformat()
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_value(v) for v in value]
    text = str(value)
    return text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 1] + "…"


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        try:  # "6.5" and "6.50" are the same score
            return Decimal(a) == Decimal(b)
        except ArithmeticError:
            return a == b
    return bool(a == b)


def changes(
    before: Mapping[str, Any] | None, after: Mapping[str, Any] | None
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """Only the fields that changed, as JSON values. With one side missing (a creation, a
    removal) the other is kept whole."""
    old = {k: json_value(v) for k, v in (before or {}).items()}
    new = {k: json_value(v) for k, v in (after or {}).items()}
    if before is None or after is None:
        return (old or None), (new or None)
    keys = [k for k in dict.fromkeys([*new, *old]) if not _same(old.get(k), new.get(k))]
    kept_old = {k: old.get(k) for k in keys}
    kept_new = {k: new.get(k) for k in keys}
    return (kept_old or None), (kept_new or None)


def clip(text: str | None, limit: int) -> str | None:
    if text is None:
        return None
    text = text.strip()
    if not text:
        return None
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- searching -----------------------------------------------------------------------------

_ACTION = re.compile(r"^[a-z_]{1,20}(\.[a-z_]{1,20}){0,2}$")
_OBJECT_TYPE = re.compile(r"^[a-z_]{1,40}$")
_CURSOR = re.compile(r"^(\d{1,17})\.(\d{1,12})$")


@dataclass(frozen=True)
class AuditQuery:
    """Filters of a search: dates are Vietnam's calendar days, both ends included."""

    since: date | None = None
    until: date | None = None
    actor: str | None = None
    action: str | None = None
    object_type: str | None = None
    object_id: str | None = None
    class_id: int | None = None
    cursor: tuple[datetime, int] | None = None
    limit: int = DEFAULT_LIMIT

    @property
    def starts_at(self) -> datetime | None:
        """UTC start of the first day (Asia/Ho_Chi_Minh)."""
        if self.since is None:
            return None
        return datetime.combine(self.since, time(), VN_TZ).astimezone(UTC)

    @property
    def ends_before(self) -> datetime | None:
        """UTC start of the day after the last one."""
        if self.until is None:
            return None
        return datetime.combine(self.until + timedelta(days=1), time(), VN_TZ).astimezone(UTC)

    def params(self) -> dict[str, str]:
        """The filters as query parameters (without cursor and limit), for links."""
        values = {
            "from": self.since.isoformat() if self.since else "",
            "to": self.until.isoformat() if self.until else "",
            "actor": self.actor or "",
            "action": self.action or "",
            "object_type": self.object_type or "",
            "object_id": self.object_id or "",
            "class_id": str(self.class_id) if self.class_id is not None else "",
        }
        return {k: v for k, v in values.items() if v}


def _invalid(field: str) -> ValidationFailed:
    return ValidationFailed("%(field)s is not valid", params={"field": field})


def _date(raw: str, field: str) -> date:
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise _invalid(field) from None


def encode_cursor(occurred_at: datetime, event_id: int) -> str:
    """The position after a row, for the next page: ``<UTC microseconds>.<id>``."""
    moment = occurred_at if occurred_at.tzinfo else occurred_at.replace(tzinfo=UTC)
    micros = (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    return f"{micros}.{event_id}"


def decode_cursor(raw: str) -> tuple[datetime, int]:
    found = _CURSOR.fullmatch(raw)
    if found is None:
        raise _invalid("cursor")
    micros, event_id = int(found.group(1)), int(found.group(2))
    try:
        moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros)
    except OverflowError:
        raise _invalid("cursor") from None
    return moment, event_id


def parse_query(params: Mapping[str, str]) -> AuditQuery:
    """Filters from query parameters (``from``, ``to``, ``actor``, ``action``,
    ``object_type``, ``object_id``, ``class_id``, ``cursor``, ``limit``); an empty value is
    no filter. A value that is not valid raises ``ValidationFailed`` naming it."""

    def get(name: str) -> str:
        return (params.get(name) or "").strip()

    since = _date(get("from"), "from") if get("from") else None
    until = _date(get("to"), "to") if get("to") else None
    if since and until and until < since:
        raise ValidationFailed("The end date is before the start date", params={"field": "to"})
    actor = get("actor")
    if len(actor) > MAX_SEARCH_CHARS:
        raise _invalid("actor")
    action = get("action")
    if action and not _ACTION.fullmatch(action):
        raise _invalid("action")
    object_type = get("object_type")
    if object_type and not _OBJECT_TYPE.fullmatch(object_type):
        raise _invalid("object_type")
    object_id = get("object_id")
    if len(object_id) > 80:
        raise _invalid("object_id")
    class_id: int | None = None
    if get("class_id"):
        if not get("class_id").isdigit() or len(get("class_id")) > 12:
            raise _invalid("class_id")
        class_id = int(get("class_id"))
    limit = DEFAULT_LIMIT
    if get("limit"):
        if not get("limit").isdigit() or not 1 <= int(get("limit")) <= MAX_LIMIT:
            raise ValidationFailed(
                "%(field)s must be a whole number from 1 to %(max)s",
                params={"field": "limit", "max": MAX_LIMIT},
            )
        limit = int(get("limit"))
    return AuditQuery(
        since=since,
        until=until,
        actor=actor or None,
        action=action or None,
        object_type=object_type or None,
        object_id=object_id or None,
        class_id=class_id,
        cursor=decode_cursor(get("cursor")) if get("cursor") else None,
        limit=limit,
    )
