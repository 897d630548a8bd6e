"""Assignment and Grade Services 2.0: line items and scores, built for Moodle 5.1.

Three blocking calls (run them in a worker thread, as the grade outbox does):

* ``find_or_create_line_item`` — the column a resource link's grades go to: the line item
  the launch claim couples to the link (Moodle does when the activity accepts grades), else
  one found in the line items container (filtered by ``resource_link_id`` and ``tag``, paged
  along ``Link`` headers), else a new one (``POST`` with ``label`` and a numeric
  ``scoreMaximum``; Moodle grants this only when the tool's "IMS LTI Assignment and Grade
  Services" setting is "Use this service for grade sync and column management").
* ``post_score`` — one ``Score`` to ``<line item path>/scores``; the line item URL's query
  (Moodle: ``?type_id=3``) is kept after the new path.
* ``get_results`` — what the platform holds for a line item (Moodle reports a grade of 0 as
  no result at all, see there).

How the outbox reads an ``AgsError`` (a ``ServiceError``; ``kind`` says what to do):

==================  ========================================================================
``conflict``        409: the platform holds a score with this timestamp or a later one
                    (Moodle compares whole seconds). Resending the same timestamp loops
                    forever: take ``next_timestamp(previous, now)`` and send again.
``rejected``        400/422: the platform refused this score (Moodle: a user who is not
                    gradable in the course, a malformed score). Retrying the same score
                    cannot help: the outbox tries a few times (a proxy's passing error),
                    then puts it on the failed list with ``platform_message``.
``rate_limited``    429: retry after ``retry_after`` seconds (``None``: the platform gave no
                    usable ``Retry-After``; back off on your own).
``unreachable``     no answer, a timeout or a 5xx: transient, retry with back-off
                    (``retry_after`` is set when a 503 carried a ``Retry-After``).
``forbidden``       401 (after one fresh token) or 403: a setting on the platform; the
                    ``detail`` names the Moodle setting when one is known to be the cause.
``not_found``       404/410: the line item is gone (a teacher deleted the column).
``token_refused``   the token endpoint said no (key, client id): an administrator's job.
``bad_response``    an answer we cannot use (a 2xx carrying an HTML page included: that is
                    a proxy or sign-in page, not the gradebook; ``at_token_endpoint`` when
                    the token endpoint gave it: the score was never sent).
==================  ========================================================================

``AgsError.transient`` is true for ``unreachable`` and ``rate_limited``.

Token handling (cache, one retry on a 401, client assertion) is ``ToolServiceConnector``'s;
every call asks for the narrowest scope it needs, so a tool that Moodle grants "grade sync
only" still posts scores. Line items go through pylti1p3's ``AssignmentsGradesService``;
scores and results do not (its ``Grade`` writes timestamps without the colon in the offset
and drops the offset of naive datetimes, and its URL joining splits on every ``?``).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import Any, Final, Literal, TypeVar
from urllib.parse import quote, unquote_plus, urlsplit, urlunsplit

import requests
from pylti1p3.assignments_grades import AssignmentsGradesService
from pylti1p3.exception import LtiException
from pylti1p3.lineitem import LineItem as PyltiLineItem

from lti.services import (
    DEFAULT_MAX_PAGES,
    ServiceError,
    ServiceRegistration,
    TokenCache,
    ToolServiceConnector,
    ToolSigningKey,
    header_value,
    parse_retry_after,
    service_registration,
)

__all__ = [
    "ACTIVITY_PROGRESS",
    "AGS_CLAIM",
    "AGS_ERROR_KINDS",
    "GRADING_PROGRESS",
    "LINEITEM_CONTAINER_MEDIA_TYPE",
    "LINEITEM_MEDIA_TYPE",
    "MOODLE_COLUMN_MANAGEMENT",
    "RESULT_CONTAINER_MEDIA_TYPE",
    "SCOPE_LINEITEM",
    "SCOPE_LINEITEM_READONLY",
    "SCOPE_RESULT_READONLY",
    "SCOPE_SCORE",
    "SCORE_MEDIA_TYPE",
    "AgsError",
    "LineItem",
    "Result",
    "ScoreToSend",
    "ServiceError",
    "find_or_create_line_item",
    "format_timestamp",
    "get_results",
    "next_timestamp",
    "parse_line_item",
    "parse_retry_after",
    "post_score",
    "results_url",
    "score_body",
    "scores_url",
]

log = logging.getLogger("blend727.lti.ags")

AGS_CLAIM = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
SCOPE_LINEITEM: Final = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem"
SCOPE_LINEITEM_READONLY: Final = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly"
SCOPE_RESULT_READONLY: Final = "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly"
SCOPE_SCORE: Final = "https://purl.imsglobal.org/spec/lti-ags/scope/score"
_LineItemScope = Literal[
    "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
    "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly",
]

LINEITEM_MEDIA_TYPE = "application/vnd.ims.lis.v2.lineitem+json"
LINEITEM_CONTAINER_MEDIA_TYPE = "application/vnd.ims.lis.v2.lineitemcontainer+json"
SCORE_MEDIA_TYPE = "application/vnd.ims.lis.v1.score+json"
RESULT_CONTAINER_MEDIA_TYPE = "application/vnd.ims.lis.v2.resultcontainer+json"

ACTIVITY_PROGRESS: frozenset[str] = frozenset(
    {"Initialized", "Started", "InProgress", "Submitted", "Completed"}
)
GRADING_PROGRESS: frozenset[str] = frozenset(
    {"FullyGraded", "Pending", "PendingManual", "Failed", "NotReady"}
)

MOODLE_COLUMN_MANAGEMENT = (
    "On Moodle, set the tool's 'IMS LTI Assignment and Grade Services' to 'Use this service "
    "for grade sync and column management' (Site administration > Plugins > Activity "
    "modules > External tool > Manage tools); the resource link must also be an activity of "
    "this tool in the course"
)
MOODLE_GRADE_SYNC = (
    "On Moodle, set the tool's 'IMS LTI Assignment and Grade Services' to 'Use this service "
    "for grade sync only' or 'Use this service for grade sync and column management'"
)

MAX_PLATFORM_MESSAGE_CHARS = 500
MAX_LABEL_CHARS = 255  # Moodle's grade_items.itemname

AgsErrorKind = Literal[
    "token_refused",
    "forbidden",
    "not_found",
    "bad_response",
    "unreachable",
    "conflict",
    "rejected",
    "rate_limited",
]
AGS_ERROR_KINDS: frozenset[str] = frozenset(
    {
        "token_refused",
        "forbidden",
        "not_found",
        "bad_response",
        "unreachable",
        "conflict",
        "rejected",
        "rate_limited",
    }
)


class AgsError(ServiceError):
    """A failed AGS call. ``ServiceError``'s kinds plus ``conflict``, ``rejected`` and
    ``rate_limited`` (see the module's table); ``platform_message`` is what the platform said
    (Moodle puts it in the HTTP status line: ``400 Incorrect score received``), cut to
    ``MAX_PLATFORM_MESSAGE_CHARS``; ``retry_after`` is in seconds."""

    kind: AgsErrorKind  # type: ignore[assignment]

    def __init__(
        self,
        kind: AgsErrorKind,
        status: int | None = None,
        detail: str = "",
        *,
        platform_message: str | None = None,
        retry_after: float | None = None,
        at_token_endpoint: bool = False,
    ) -> None:
        if kind not in AGS_ERROR_KINDS:
            raise ValueError(f"unknown AGS error kind {kind!r}")
        message = kind + (f" (HTTP {status})" if status is not None else "")
        # ServiceError.__init__ knows only its own kinds
        Exception.__init__(self, f"{message}: {detail}" if detail else message)
        self.kind = kind
        self.status = status
        self.detail = detail
        self.platform_message = platform_message
        self.retry_after = retry_after
        self.at_token_endpoint = at_token_endpoint

    @property
    def transient(self) -> bool:
        return self.kind in ("unreachable", "rate_limited")


# -- plain data -------------------------------------------------------------------------


@dataclass(frozen=True)
class LineItem:
    """A gradebook column. ``id`` is its URL (scores go to ``<id path>/scores``)."""

    id: str
    label: str
    score_maximum: float
    resource_link_id: str | None = None
    resource_id: str | None = None
    tag: str | None = None
    start: datetime | None = None
    end: datetime | None = None


@dataclass(frozen=True)
class ScoreToSend:
    """One score for one user. ``timestamp`` must be timezone-aware and later, to the
    second, than the last one sent for this user and line item (``next_timestamp``).
    ``score_given`` is sent only with ``grading_progress="FullyGraded"``: Moodle drops it
    otherwise — and a score without ``scoreGiven`` clears the grade Moodle holds."""

    user_id: str
    score_given: float | None
    score_maximum: float
    activity_progress: str
    grading_progress: str
    timestamp: datetime
    comment: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.user_id, str) or not self.user_id.strip():
            raise ValueError("user_id must be a non-empty string")
        if not _is_number(self.score_maximum) or self.score_maximum <= 0:
            raise ValueError("score_maximum must be a finite number greater than 0")
        if self.score_given is not None and (
            not _is_number(self.score_given) or self.score_given < 0
        ):
            raise ValueError("score_given must be None or a finite number >= 0")
        if self.activity_progress not in ACTIVITY_PROGRESS:
            raise ValueError(f"unknown activity_progress {self.activity_progress!r}")
        if self.grading_progress not in GRADING_PROGRESS:
            raise ValueError(f"unknown grading_progress {self.grading_progress!r}")
        _require_aware(self.timestamp, "timestamp")
        if self.comment is not None and not isinstance(self.comment, str):
            raise ValueError("comment must be a string or None")


@dataclass(frozen=True)
class Result:
    """One result as the platform reports it. Moodle leaves ``result_score`` (and the rest)
    out for a grade of 0 or no grade, so ``None`` may mean "0" there."""

    user_id: str
    result_score: float | None = None
    result_maximum: float | None = None
    comment: str | None = None
    timestamp: datetime | None = None
    score_of: str | None = None
    id: str | None = None


# -- helpers without HTTP ---------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _require_aware(value: Any, name: str) -> None:
    if not isinstance(value, datetime):
        raise ValueError(f"{name} must be a datetime")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (a naive time is read in the LMS's zone)")


def next_timestamp(previous: datetime | None, now: datetime) -> datetime:
    """The timestamp for the next score of one user on one line item: ``now``, or one second
    after ``previous`` when that is later, truncated to whole seconds (UTC). Moodle refuses
    (409) a score whose timestamp is not later, to the second, than the one it holds."""
    _require_aware(now, "now")
    candidate = now
    if previous is not None:
        _require_aware(previous, "previous")
        candidate = max(now, previous + timedelta(seconds=1))
    return candidate.astimezone(UTC).replace(microsecond=0)


def format_timestamp(value: datetime) -> str:
    """ISO 8601 with the offset (``2025-09-01T08:00:00+00:00``); microseconds when set."""
    _require_aware(value, "timestamp")
    utc = value.astimezone(UTC)
    return utc.isoformat(timespec="microseconds" if utc.microsecond else "seconds")


def _http_url(url: Any, what: str) -> tuple[str, str, str, str]:
    if not isinstance(url, str):
        raise AgsError("bad_response", None, f"{what} is not a URL: {url!r}")
    parts = urlsplit(url.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise AgsError("bad_response", None, f"{what} is not an http(s) URL: {url!r}")
    return parts.scheme, parts.netloc, parts.path, parts.query


def _with_query(url: str, params: list[tuple[str, str]], what: str) -> str:
    """``url`` with ``params`` appended; the platform's own query is kept byte for byte,
    except for parameters of the same names, which ours replace."""
    scheme, netloc, path, query = _http_url(url, what)
    names = {name for name, _ in params}
    kept = [
        item
        for item in query.split("&")
        if item and unquote_plus(item.split("=", 1)[0]) not in names
    ]
    kept += [quote(name, safe="") + "=" + quote(value, safe="") for name, value in params]
    return urlunsplit((scheme, netloc, path, "&".join(kept), ""))


def _line_item_sub_url(line_item_url: str, ending: str, params: list[tuple[str, str]]) -> str:
    scheme, netloc, path, query = _http_url(line_item_url, "the line item URL")
    path = (path if path.endswith("/") else path + "/") + ending
    return _with_query(urlunsplit((scheme, netloc, path, query, "")), params, "the line item URL")


def scores_url(line_item_url: str) -> str:
    """``…/lineitems/5/lineitem?type_id=3`` → ``…/lineitems/5/lineitem/scores?type_id=3``."""
    return _line_item_sub_url(line_item_url, "scores", [])


def results_url(line_item_url: str, *, user_id: str | None = None, limit: int | None = None) -> str:
    """``…/lineitem?type_id=3`` → ``…/lineitem/results?type_id=3[&user_id=…][&limit=…]``."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError("limit must be a positive integer")
    params: list[tuple[str, str]] = []
    if user_id is not None:
        params.append(("user_id", user_id))
    if limit is not None:
        params.append(("limit", str(limit)))
    return _line_item_sub_url(line_item_url, "results", params)


def score_body(score: ScoreToSend) -> dict[str, Any]:
    """The JSON a ``Score`` POST carries. ``scoreGiven`` only with ``FullyGraded``."""
    body: dict[str, Any] = {
        "userId": score.user_id,
        "timestamp": format_timestamp(score.timestamp),
        "activityProgress": score.activity_progress,
        "gradingProgress": score.grading_progress,
        "scoreMaximum": float(score.score_maximum),
    }
    if score.grading_progress == "FullyGraded" and score.score_given is not None:
        body["scoreGiven"] = float(score.score_given)
    elif score.score_given is not None:
        log.debug("scoreGiven for user %s not sent: %s", score.user_id, score.grading_progress)
    if score.comment is not None:
        body["comment"] = score.comment
    return body


def _text(value: Any) -> str | None:
    """An id or label as text (Moodle sends ids as strings, others as numbers); "" → None."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        return None
    value = value.replace("\x00", "").strip()
    return value or None


def _number(value: Any) -> float | None:
    if _is_number(value):
        return float(value)
    if isinstance(value, str):
        try:
            parsed = float(value.strip())
        except ValueError:
            return None
        return parsed if math.isfinite(parsed) else None
    return None


def _datetime(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def parse_line_item(raw: Any, *, default_score_maximum: float | None = None) -> LineItem | None:
    """A ``LineItem`` from the platform's JSON; ``None`` without an http(s) ``id`` or a
    usable ``scoreMaximum`` (unless a default is given). Moodle writes ``""`` for no tag
    and no resource id; those become ``None``."""
    if not isinstance(raw, Mapping):
        return None
    item_id = raw.get("id")
    if not isinstance(item_id, str) or urlsplit(item_id).scheme.lower() not in ("http", "https"):
        return None
    score_maximum = _number(raw.get("scoreMaximum"))
    if score_maximum is None:
        score_maximum = default_score_maximum
    if score_maximum is None:
        return None
    resource_link_id = _text(raw.get("resourceLinkId"))
    if resource_link_id is None:
        resource_link_id = _text(raw.get("ltiLinkId"))  # Moodle's older name
    return LineItem(
        id=item_id,
        label=_text(raw.get("label")) or "",
        score_maximum=score_maximum,
        resource_link_id=resource_link_id,
        resource_id=_text(raw.get("resourceId")),
        tag=_text(raw.get("tag")),
        start=_datetime(raw.get("startDateTime")),
        end=_datetime(raw.get("endDateTime")),
    )


def _parse_result(raw: Any) -> Result | None:
    if not isinstance(raw, Mapping):
        return None
    user_id = _text(raw.get("userId"))
    if user_id is None:
        return None
    return Result(
        user_id=user_id,
        result_score=_number(raw.get("resultScore")),
        result_maximum=_number(raw.get("resultMaximum")),
        comment=raw.get("comment") if isinstance(raw.get("comment"), str) else None,
        timestamp=_datetime(raw.get("timestamp")),
        score_of=_text(raw.get("scoreOf")),
        id=_text(raw.get("id")),
    )


# -- errors from answers ----------------------------------------------------------------


@dataclass(frozen=True)
class _Answer:
    status: int
    reason: str
    headers: Any
    body: bytes


class _AgsConnector(ToolServiceConnector):
    """Keeps the last service answer, so a failure can carry what the platform said
    (``ToolServiceConnector`` reports the status only)."""

    last_answer: _Answer | None = None

    def _send(
        self, method: str, url: str, *, limit: int, what: str, **kwargs: Any
    ) -> tuple[requests.Response, bytes]:
        response, body = super()._send(method, url, limit=limit, what=what, **kwargs)
        if what == "service":
            self.last_answer = _Answer(
                status=response.status_code,
                reason=response.reason or "",
                headers=response.headers,
                body=body,
            )
        return response, body


def _repair(text: str) -> str:
    """http.client reads the status line as Latin-1; Moodle writes UTF-8."""
    if text.isascii():
        return text
    try:
        return text.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text


def _standard_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def _clean(text: str) -> str:
    text = "".join(c if c.isprintable() else " " for c in text)
    return " ".join(text.split())


def platform_message(answer: _Answer) -> str | None:
    """What the platform said about a refusal: Moodle's status line reason (``409 Refusing
    score with an earlier timestamp …``), a JSON body's ``reason``/``message``/
    ``error_description``, or a short plain-text body. ``None`` when it said nothing."""
    standard = _standard_phrase(answer.status).lower()
    found: list[str] = []

    def add(value: Any) -> None:
        if isinstance(value, str):
            text = _clean(value)
            if text and text.lower() != standard and text not in found:
                found.append(text)

    add(_repair(answer.reason))
    text = answer.body.decode("utf-8", "replace").strip()
    try:
        data = json.loads(text) if text else None
    except (ValueError, RecursionError):
        data = None
        # plain text; HTML error pages and JSON cut short say nothing useful
        if text and text.lstrip()[:1] not in ("<", "{", "[") and len(text) <= 1000:
            add(text)
    if isinstance(data, dict):
        for key in ("reason", "message", "error_description", "detail", "title", "error"):
            add(data.get(key))
        errors = data.get("errors")
        if isinstance(errors, list):
            for entry in errors[:3]:
                add(entry.get("message") if isinstance(entry, dict) else entry)
    if not found:
        return None
    return " — ".join(found)[:MAX_PLATFORM_MESSAGE_CHARS]


def _translate(exc: ServiceError, answer: _Answer | None, hint: str | None) -> AgsError:
    if isinstance(exc, AgsError):
        return exc
    status = exc.status
    token = exc.at_token_endpoint
    if exc.kind == "token_refused":
        if hint and "invalid_scope" in exc.detail:
            return AgsError("forbidden", status, f"{exc.detail}. {hint}", at_token_endpoint=token)
        return AgsError("token_refused", status, exc.detail, at_token_endpoint=token)
    if token:  # the token endpoint's own failure (down, 429, garbage): no service answer
        if exc.kind == "unreachable" and status == 429:
            return AgsError(
                "rate_limited",
                status,
                exc.detail,
                retry_after=exc.retry_after,
                at_token_endpoint=True,
            )
        return AgsError(
            exc.kind, status, exc.detail, retry_after=exc.retry_after, at_token_endpoint=True
        )
    if status is None or answer is None or answer.status != status or 200 <= status < 300:
        return AgsError(exc.kind, status, exc.detail)
    message = platform_message(answer)
    retry_after = parse_retry_after(header_value(answer.headers, "Retry-After"))
    detail = exc.detail + (f": {message}" if message else "")
    kind: AgsErrorKind = exc.kind
    if status == 409:
        kind = "conflict"
    elif status in (400, 422):
        kind = "rejected"
    elif status == 429:
        kind = "rate_limited"
    elif status in (401, 403):
        kind = "forbidden"
        if hint:
            detail += f". {hint}"
    return AgsError(
        kind,
        status,
        detail,
        platform_message=message,
        retry_after=retry_after if kind in ("rate_limited", "unreachable") else None,
    )


T = TypeVar("T")


def _run(connector: _AgsConnector, call: Callable[[], T], *, hint: str | None = None) -> T:
    """``call()`` with every failure as an ``AgsError``."""
    connector.last_answer = None
    try:
        return call()
    except ServiceError as exc:
        raise _translate(exc, connector.last_answer, hint) from None
    except LtiException as exc:  # pylti1p3's shape checks (a container that is not a list)
        raise AgsError("bad_response", None, f"unusable answer: {exc}") from None


def _connector(
    registration: ServiceRegistration,
    tool_key: ToolSigningKey,
    http_session: requests.Session,
    token_cache: TokenCache | None,
    max_pages: int = DEFAULT_MAX_PAGES,
) -> _AgsConnector:
    return _AgsConnector(
        service_registration(registration, tool_key),
        http_session,
        token_cache=token_cache,
        max_pages=max_pages,
    )


# -- line items -------------------------------------------------------------------------


def _claim_scopes(endpoint: Mapping[str, Any]) -> set[str] | None:
    """The scopes the claim grants; ``None`` when it does not say (then we just ask)."""
    scopes = endpoint.get("scope")
    if not isinstance(scopes, list):
        return None
    return {s for s in scopes if isinstance(s, str)}


def _read_scope(granted: set[str] | None) -> _LineItemScope | None:
    if granted is None or SCOPE_LINEITEM_READONLY in granted:
        return SCOPE_LINEITEM_READONLY
    if SCOPE_LINEITEM in granted:
        return SCOPE_LINEITEM
    return None


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def _same_origin(item: LineItem, container_url: str) -> LineItem:
    """Scores to a line item carry our bearer token: it must live where the container does."""
    if _origin(item.id) != _origin(container_url):
        raise AgsError(
            "bad_response", None, f"line item {item.id} is not on the host of {container_url}"
        )
    return item


def _pick(
    items: Iterator[LineItem],
    *,
    resource_link_id: str,
    tag: str | None,
    label: str,
    resource_id: str | None,
) -> LineItem | None:
    """The first item of the link with our tag; else the first with our label and no other
    tag. The filters are checked again here: not every platform applies them."""
    by_label: LineItem | None = None
    for item in items:
        if item.resource_link_id != resource_link_id:
            continue
        if resource_id is not None and item.resource_id != resource_id:
            continue
        if tag is not None and item.tag == tag:
            return item
        if by_label is None and item.label == label and item.tag in (None, tag):
            by_label = item
            if tag is None:
                return item
    return by_label


def find_or_create_line_item(
    *,
    registration: ServiceRegistration,
    tool_key: ToolSigningKey,
    http: requests.Session,
    endpoint: Mapping[str, Any],
    label: str,
    score_maximum: float,
    resource_link_id: str,
    resource_id: str | None = None,
    tag: str | None = None,
    token_cache: TokenCache | None = None,
    page_size: int = 100,
    max_pages: int = DEFAULT_MAX_PAGES,
) -> LineItem:
    """The line item a resource link's scores go to.

    ``endpoint``: the launch's AGS claim (``lineitems``, ``lineitem``, ``scope``). Its
    coupled ``lineitem`` wins; else the container is searched (``resource_link_id``, ``tag``,
    ``resource_id`` filters; all pages); else a line item is created. Two workers doing this
    at once for one link may create two: store the result and serialize per link.
    Raises ``AgsError``; ``ValueError`` for a missing label or a score maximum <= 0.
    """
    label = label.strip() if isinstance(label, str) else ""
    if not label:
        raise ValueError("a line item needs a label (Moodle refuses one without)")
    if not _is_number(score_maximum) or score_maximum <= 0:
        raise ValueError("score_maximum must be a finite number greater than 0")
    if not isinstance(resource_link_id, str) or not resource_link_id:
        raise ValueError("resource_link_id must be a non-empty string")
    if page_size < 1:
        raise ValueError("page_size must be a positive integer")
    label = label[:MAX_LABEL_CHARS]
    granted = _claim_scopes(endpoint)
    read_scope = _read_scope(granted)
    connector = _connector(registration, tool_key, http, token_cache, max_pages)

    coupled = endpoint.get("lineitem")
    if coupled:
        _http_url(coupled, "the claim's lineitem")
        home = {_origin(registration.issuer), _origin(registration.token_url)}
        if isinstance(endpoint.get("lineitems"), str):
            home.add(_origin(endpoint["lineitems"]))
        if _origin(coupled) not in home:
            raise AgsError(
                "bad_response", None, f"line item {coupled} is not on the platform's own origin"
            )
        if read_scope is None:  # score-only grant: nothing to read, the URL is enough
            return LineItem(
                coupled, label, float(score_maximum), resource_link_id, resource_id, tag
            )
        service = AssignmentsGradesService(connector, {"scope": [read_scope], "lineitem": coupled})

        def fetch_coupled() -> PyltiLineItem:
            try:
                return service.get_lineitem(coupled)
            except AttributeError:  # pylti1p3 builds a LineItem from any body, dict or not
                raise AgsError("bad_response", None, f"{coupled}: not a line item") from None

        fetched = _run(connector, fetch_coupled, hint=MOODLE_GRADE_SYNC)
        # the claim's URL is the id: it carries the query (type_id) the platform needs
        item = parse_line_item(
            {**_lineitem_dict(fetched), "id": coupled}, default_score_maximum=float(score_maximum)
        )
        if item is None:
            raise AgsError("bad_response", None, f"{coupled}: not a line item")
        return item

    container = endpoint.get("lineitems")
    _http_url(container, "the claim's lineitems")
    assert isinstance(container, str)
    if read_scope is None:
        raise AgsError(
            "forbidden", None, f"the claim grants no line item scope. {MOODLE_GRADE_SYNC}"
        )
    params = [("resource_link_id", resource_link_id)]
    if tag is not None:
        params.append(("tag", tag))
    if resource_id is not None:
        params.append(("resource_id", resource_id))
    params.append(("limit", str(page_size)))
    search = _with_query(container, params, "the claim's lineitems")
    finder = AssignmentsGradesService(connector, {"scope": [read_scope], "lineitems": search})

    def found() -> LineItem | None:
        items = (
            parsed
            for parsed in (parse_line_item(raw) for raw in finder.get_lineitems())
            if parsed is not None
        )
        return _pick(
            items,
            resource_link_id=resource_link_id,
            tag=tag,
            label=label,
            resource_id=resource_id,
        )

    existing = _run(connector, found, hint=MOODLE_GRADE_SYNC)
    if existing is not None:
        return _same_origin(existing, container)

    if granted is not None and SCOPE_LINEITEM not in granted:
        raise AgsError(
            "forbidden",
            None,
            f"no line item for resource link {resource_link_id} and the claim does not grant "
            f"creating one. {MOODLE_COLUMN_MANAGEMENT}",
        )
    new = PyltiLineItem()
    new.set_label(label).set_score_maximum(float(score_maximum))
    new.set_resource_link_id(resource_link_id)
    if tag is not None:
        new.set_tag(tag)
    if resource_id is not None:
        new.set_resource_id(resource_id)
    creator = AssignmentsGradesService(
        connector, {"scope": [SCOPE_LINEITEM], "lineitems": container}
    )
    created = _run(connector, lambda: creator.create_lineitem(new), hint=MOODLE_COLUMN_MANAGEMENT)
    item = parse_line_item(_lineitem_dict(created), default_score_maximum=float(score_maximum))
    if item is None:
        raise AgsError("bad_response", None, f"{container}: the created line item has no id")
    log.info("line item %s created for resource link %s (%s)", item.id, resource_link_id, label)
    return _same_origin(item, container)


def _lineitem_dict(item: PyltiLineItem) -> dict[str, Any]:
    """pylti1p3's ``LineItem`` back into the platform's JSON names (its ``get_value`` drops
    falsy values and returns a string)."""
    values = {
        "id": item.get_id(),
        "label": item.get_label(),
        "scoreMaximum": item.get_score_maximum(),
        "resourceId": item.get_resource_id(),
        "resourceLinkId": item.get_resource_link_id(),
        "tag": item.get_tag(),
        "startDateTime": item.get_start_date_time(),
        "endDateTime": item.get_end_date_time(),
    }
    return {k: v for k, v in values.items() if v is not None}


# -- scores and results -----------------------------------------------------------------


def post_score(
    *,
    registration: ServiceRegistration,
    tool_key: ToolSigningKey,
    http: requests.Session,
    line_item_url: str,
    score: ScoreToSend,
    token_cache: TokenCache | None = None,
) -> None:
    """POST one score. Returns when the platform accepted it (any 2xx whose body, if any, is
    not a web page: Moodle answers an empty body, others JSON); raises ``AgsError``
    otherwise — see the module's table for what each kind asks of the caller. A 401 gets
    one fresh token and one more try (``ToolServiceConnector``).

    A 2xx carrying an HTML page is *not* acceptance: that is a proxy's sign-in or
    maintenance page, or a captive portal, answering in the LMS's place, and the score never
    reached the gradebook. It raises ``bad_response`` (sent again later: re-sending the same
    timestamp is harmless, the LMS answers 409 if it did hold it)."""
    url = scores_url(line_item_url)
    data = json.dumps(score_body(score))
    connector = _connector(registration, tool_key, http, token_cache)
    try:
        _run(
            connector,
            lambda: connector.make_service_request(
                [SCOPE_SCORE],
                url,
                is_post=True,
                data=data,
                content_type=SCORE_MEDIA_TYPE,  # exactly: Moodle compares the whole header
            ),
            hint=MOODLE_GRADE_SYNC,
        )
    except AgsError as exc:
        if (
            exc.kind == "bad_response"
            and not exc.at_token_endpoint  # a garbled token answer: the score was never sent
            and exc.status is not None
            and 200 <= exc.status < 300
        ):
            answer = connector.last_answer
            if answer is not None and _is_web_page(answer):
                raise AgsError(
                    "bad_response",
                    exc.status,
                    f"{url}: a web page instead of the gradebook's answer (a proxy or a "
                    "sign-in page answering for the LMS?)",
                ) from None
            log.info("score for %s on %s accepted; answer unreadable", score.user_id, url)
            return
        raise


def _is_web_page(answer: _Answer) -> bool:
    """Markup where a JSON answer (or none) belongs: ``<!DOCTYPE html>``, ``<html>``, a
    bare ``<h1>`` fragment, XML. A short plain-text "OK" is not one (some LMSs say that)."""
    return answer.body.lstrip()[:1] == b"<"


def get_results(
    *,
    registration: ServiceRegistration,
    tool_key: ToolSigningKey,
    http: requests.Session,
    line_item_url: str,
    user_id: str | None = None,
    limit: int | None = None,
    token_cache: TokenCache | None = None,
    max_pages: int = DEFAULT_MAX_PAGES,
) -> list[Result]:
    """Every result of a line item (one user's with ``user_id``), all pages.

    Moodle: a grade of 0 reads back as a result with no ``resultScore`` (its
    ``result_for_json`` tests ``!empty($grade->finalgrade)``), so ``result_score is None``
    can mean 0; ``resultScore`` is on the line item's scale (Moodle rescales what it gets);
    ``user_id`` must be numeric there. ``limit`` is not sent unless asked: Moodle's results
    paging with ``type_id`` in the URL has been seen to fail.
    """
    url = results_url(line_item_url, user_id=user_id, limit=limit)
    connector = _connector(registration, tool_key, http, token_cache, max_pages)

    def read() -> list[Result]:
        results: list[Result] = []
        for page in connector.get_paginated_data(
            [SCOPE_RESULT_READONLY], url, accept=RESULT_CONTAINER_MEDIA_TYPE
        ):
            body = page["body"]
            if not isinstance(body, list):
                raise AgsError("bad_response", None, f"{url}: not a result container")
            results.extend(r for r in (_parse_result(raw) for raw in body) if r is not None)
        return results

    return _run(connector, read, hint=MOODLE_GRADE_SYNC)
