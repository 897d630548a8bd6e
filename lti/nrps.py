"""Names and Role Provisioning Services 2.0: who is in a course, for the roster sync.

``fetch_members`` returns the whole roster or raises ``ServiceError``: a roster sync must never
take a partial roster (a page that failed, a loop cut short) for the complete one, or it
would drop the people it did not see. ``iter_roster_pages`` streams the pages for callers
that can handle one at a time.

Pages come through pylti1p3's ``NamesRolesProvisioningService`` (scope and ``Accept`` header)
and our ``ToolServiceConnector`` (token cache, 401 retry, Link parsing, error mapping).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote_plus, urlsplit, urlunsplit

import requests
from pylti1p3.names_roles import NamesRolesProvisioningService
from pylti1p3.service_connector import TServiceConnectorResponse

from lti.services import (
    DEFAULT_MAX_PAGES,
    NRPS_SCOPE,
    ServiceError,
    ServiceRegistration,
    TokenCache,
    ToolSigningKey,
    connector_for,
    header_value,
    link_with_rel,
    paginate,
)

__all__ = [
    "MEMBERSHIP_CONTAINER",
    "NRPS_SCOPE",
    "Member",
    "RosterPage",
    "ServiceError",
    "fetch_members",
    "iter_roster_pages",
    "memberships_url",
    "parse_member",
]

log = logging.getLogger("blend727.lti.nrps")

MEMBERSHIP_CONTAINER = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"
MAX_ID_CHARS = 255
_STATUSES = {"active": "Active", "inactive": "Inactive", "deleted": "Deleted"}


@dataclass(frozen=True, kw_only=True)
class Member:
    """One membership as the platform reports it. Platforms that hide names and e-mail
    (Moodle's privacy settings) leave those ``None``."""

    user_id: str
    status: str = "Active"  # "Active" | "Inactive" | "Deleted"; others passed through
    roles: list[str]
    name: str | None = None
    given_name: str | None = None
    family_name: str | None = None
    email: str | None = None
    lis_person_sourcedid: str | None = None
    picture: str | None = None


@dataclass(frozen=True, kw_only=True)
class RosterPage:
    url: str
    members: list[Member]
    next_url: str | None = None
    differences_url: str | None = None
    context_id: str | None = None
    context_label: str | None = None
    context_title: str | None = None
    skipped: int = 0  # entries without a usable user_id


def _text(value: Any) -> str | None:
    """A string safe to store (no NUL, no lone surrogate), or None for missing/empty."""
    if not isinstance(value, str):
        return None
    if "\x00" in value:
        value = value.replace("\x00", "")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-8", "replace").decode("utf-8")
    value = value.strip()
    return value or None


def _user_id(value: Any) -> str | None:
    """The id exactly as sent; one that could not be matched reliably is refused, not
    cleaned into another (possibly existing) id."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value or len(value) > MAX_ID_CHARS:
        return None
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return None
    return value


def parse_member(raw: Any) -> Member | None:
    """A ``Member`` from one entry of ``members``; None when it has no usable ``user_id``."""
    if not isinstance(raw, dict):
        return None
    user_id = _user_id(raw.get("user_id"))
    if user_id is None:
        return None
    status = raw.get("status")
    if isinstance(status, str) and status.strip():
        status = _STATUSES.get(status.strip().lower(), status.strip())
    else:
        status = "Active"  # NRPS 2.0 §2.2: absent means Active
    raw_roles = raw.get("roles")
    roles = [r for r in (_text(x) for x in raw_roles) if r] if isinstance(raw_roles, list) else []
    return Member(
        user_id=user_id,
        status=status,
        roles=roles,
        name=_text(raw.get("name")),
        given_name=_text(raw.get("given_name")),
        family_name=_text(raw.get("family_name")),
        email=_text(raw.get("email")),
        lis_person_sourcedid=_text(raw.get("lis_person_sourcedid")),
        picture=_text(raw.get("picture")),
    )


def memberships_url(url: str, *, limit: int | None = None, role: str | None = None) -> str:
    """The membership URL with ``limit`` (and ``role``) set, keeping the platform's own
    query (Moodle's ``?type_id=3`` becomes ``?type_id=3&limit=100``) byte for byte."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError("limit must be a positive integer")
    parts = urlsplit(url.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise ServiceError("bad_response", None, f"not an http(s) membership URL: {url!r}")
    replaced = ({"limit"} if limit is not None else set()) | ({"role"} if role else set())
    kept = [
        item
        for item in parts.query.split("&")
        if item and unquote_plus(item.split("=", 1)[0]) not in replaced
    ]
    if limit is not None:
        kept.append(f"limit={limit}")
    if role:
        kept.append("role=" + quote(role, safe=""))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "&".join(kept), ""))


def _page(url: str, response: TServiceConnectorResponse) -> RosterPage:
    body = response["body"]
    raw_members = body.get("members") if isinstance(body, dict) else None
    if not isinstance(body, dict) or not isinstance(raw_members, list):
        raise ServiceError("bad_response", None, f"{url}: not a membership container")
    members: list[Member] = []
    for raw in raw_members:
        member = parse_member(raw)
        if member is not None:
            members.append(member)
    skipped = len(raw_members) - len(members)
    if skipped:
        log.warning("%s: %d members without a usable user_id skipped", url, skipped)
    context = body.get("context")
    context = context if isinstance(context, dict) else {}
    return RosterPage(
        url=url,
        members=members,
        next_url=response["next_page_url"],
        differences_url=link_with_rel(
            header_value(response["headers"], "Link"), "differences", url
        ),
        context_id=_text(context.get("id")),
        context_label=_text(context.get("label")),
        context_title=_text(context.get("title")),
        skipped=skipped,
    )


def iter_roster_pages(
    *,
    registration: ServiceRegistration,
    context_memberships_url: str,
    tool_key: ToolSigningKey,
    http: requests.Session,
    limit: int = 100,
    role: str | None = None,
    max_pages: int = DEFAULT_MAX_PAGES,
    token_cache: TokenCache | None = None,
) -> Iterator[RosterPage]:
    """The roster page by page. Raises ``ServiceError`` (possibly after some pages)."""
    first = memberships_url(context_memberships_url, limit=limit, role=role)
    connector = connector_for(
        registration, tool_key, http, token_cache=token_cache, max_pages=max_pages
    )
    service = NamesRolesProvisioningService(connector, {"context_memberships_url": first})
    for url, response in paginate(
        lambda u: service.get_nrps_data(members_url=u), first, max_pages=max_pages
    ):
        yield _page(url, response)


def fetch_members(
    *,
    registration: ServiceRegistration,
    context_memberships_url: str,
    tool_key: ToolSigningKey,
    http: requests.Session,
    limit: int = 100,
    role: str | None = None,
    max_pages: int = DEFAULT_MAX_PAGES,
    token_cache: TokenCache | None = None,
) -> list[Member]:
    """Every member of the context, in the platform's order, each ``user_id`` once (the
    first time it appears: pages can overlap when the roster changes while it is read).

    ``registration``: issuer, client_id, token_url, auth_audience (``PlatformRecord`` fits);
    ``tool_key``: the tool's current key (``KeyService(session).signing_key()``);
    ``http``: the timeout session (``ctx.http``). Blocking: run it in a worker thread.
    """
    seen: set[str] = set()
    members: list[Member] = []
    for page in iter_roster_pages(
        registration=registration,
        context_memberships_url=context_memberships_url,
        tool_key=tool_key,
        http=http,
        limit=limit,
        role=role,
        max_pages=max_pages,
        token_cache=token_cache,
    ):
        for member in page.members:
            if member.user_id not in seen:
                seen.add(member.user_id)
                members.append(member)
    return members
