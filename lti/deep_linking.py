"""Deep Linking 2.0: reading a platform's deep linking settings and signing the
``LtiDeepLinkingResponse`` the tool posts back to ``deep_link_return_url``.

Content items are built with pylti1p3's ``DeepLinkResource`` and ``LineItem``, and the message
with its ``DeepLink``; the library's gaps are closed here:

* the JWT header carries the ``kid`` that ``/lti/jwks.json`` publishes (the library's
  ``Registration.get_kid()`` is ``None`` unless a public key PEM was also set), and it is
  signed with the tool's CURRENT key, already parsed (parsing PEM costs tens of ms);
* ``aud`` is the platform's issuer as a plain string, the response lives 5 minutes, not 10;
* the nonce is random (the library's includes a ``uuid1``: the host's MAC address and time);
* the ``data`` claim is echoed exactly when the request had one and left out otherwise
  (the library always writes it, ``null`` when absent);
* the library's ``get_response_form_html`` is not used: it writes an inline script (our CSP
  forbids them) and puts the return URL and JWT into HTML unescaped. The endpoint renders
  an escaped form and an external auto-submit script instead.

Everything here is plain data and plain functions over the library; no database, no HTTP.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, cast
from urllib.parse import urlsplit

import jwt
from pylti1p3.deep_link import DeepLink, TDeepLinkData
from pylti1p3.deep_link_resource import DeepLinkResource
from pylti1p3.lineitem import LineItem

from lti.services import ToolKeyRegistration

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
DL_CLAIM = "https://purl.imsglobal.org/spec/lti-dl/claim/"
MESSAGE_TYPE = CLAIM + "message_type"
VERSION = CLAIM + "version"
DEPLOYMENT_ID = CLAIM + "deployment_id"
CONTENT_ITEMS = DL_CLAIM + "content_items"
DATA = DL_CLAIM + "data"

DEEP_LINKING_RESPONSE = "LtiDeepLinkingResponse"
RESOURCE_LINK = "ltiResourceLink"
RESPONSE_LIFETIME_SECONDS = 300

#: The properties of ``deep_linking_settings`` (LTI Deep Linking 2.0 §4.4.1) kept when the
#: settings travel from the launch to the picker; anything else a platform adds is dropped.
SETTINGS_KEYS = (
    "deep_link_return_url",
    "accept_types",
    "accept_presentation_document_targets",
    "accept_media_types",
    "accept_multiple",
    "accept_lineitem",
    "auto_create",
    "title",
    "text",
    "data",
)
MAX_TITLE_CHARS = 255  # Moodle's activity name column
MAX_TEXT_CHARS = 1000


class UnusableSettings(ValueError):
    """The deep linking settings cannot be answered (no usable return URL)."""


def _flag(value: Any) -> bool | None:
    """A boolean setting, sent as JSON ``true``/``false`` or (some platforms) as a string."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


def _strings(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):  # a lone string where a list was meant
        return (value,)
    if isinstance(value, list | tuple):
        return tuple(v for v in value if isinstance(v, str))
    return ()


def usable_return_url(value: Any) -> str | None:
    """An absolute http(s) URL the browser may post the response to, else ``None``."""
    if not isinstance(value, str) or not value or not value.isprintable() or " " in value:
        return None
    parts = urlsplit(value)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return value


def keep_settings(claim: Mapping[str, Any]) -> dict[str, Any]:
    """The known properties of a ``deep_linking_settings`` claim, as they were sent."""
    return {k: claim[k] for k in SETTINGS_KEYS if k in claim}


@dataclass(frozen=True)
class DeepLinkSettings:
    """What the platform asked for (LTI Deep Linking 2.0 §4.4.1), as plain data."""

    return_url: str
    accept_types: tuple[str, ...] = ()
    accept_presentation_document_targets: tuple[str, ...] = ()
    accept_multiple: bool = False
    #: ``None``: the platform did not say whether it creates line items.
    accept_lineitem: bool | None = None
    title: str | None = None
    text: str | None = None
    has_data: bool = False
    data: Any = None

    @classmethod
    def from_claim(cls, claim: Mapping[str, Any]) -> DeepLinkSettings:
        url = usable_return_url(claim.get("deep_link_return_url"))
        if url is None:
            raise UnusableSettings("deep_link_return_url is not an absolute http(s) URL")
        return cls(
            return_url=url,
            accept_types=_strings(claim.get("accept_types")),
            accept_presentation_document_targets=_strings(
                claim.get("accept_presentation_document_targets")
            ),
            # Absent means one item: the conservative reading.
            accept_multiple=bool(_flag(claim.get("accept_multiple"))),
            accept_lineitem=_flag(claim.get("accept_lineitem")),
            title=claim.get("title") if isinstance(claim.get("title"), str) else None,
            text=claim.get("text") if isinstance(claim.get("text"), str) else None,
            has_data="data" in claim,
            data=claim.get("data"),
        )

    def accepts(self, item_type: str) -> bool:
        return item_type in self.accept_types

    @property
    def accepts_resource_links(self) -> bool:
        return self.accepts(RESOURCE_LINK)

    @property
    def wants_line_items(self) -> bool:
        """Send a line item unless the platform said it ignores them."""
        return self.accept_lineitem is not False


@dataclass(frozen=True)
class LineItemSpec:
    label: str
    score_maximum: float
    resource_id: str | None = None
    tag: str | None = None


@dataclass(frozen=True)
class ResourceLinkItem:
    """An ``ltiResourceLink`` content item; ``custom`` values are strings (LTI 1.3 §5.4.6)."""

    title: str
    url: str
    custom: Mapping[str, str] = field(default_factory=dict)
    text: str | None = None
    line_item: LineItemSpec | None = None


@dataclass(frozen=True)
class ResponsePlatform:
    """The registration the response answers: it is issued by us to the platform."""

    issuer: str
    client_id: str
    deployment_id: str  # the platform's LTI deployment id, not our primary key


class ToolKey(Protocol):
    """The tool's current signing key (``app.keys.service.SigningKey`` fits; its parsed
    ``private_key`` is used when it has one)."""

    @property
    def kid(self) -> str: ...
    @property
    def private_key_pem(self) -> str: ...


class RefusedItems(ValueError):
    """The items do not fit what the platform accepts; ``reason`` is a stable code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class _Resource(DeepLinkResource):
    """``DeepLinkResource`` with the item's ``text`` (the library has no field for it)."""

    def __init__(self, text: str | None = None) -> None:
        self._text = text

    def to_dict(self) -> dict[str, object]:
        body = super().to_dict()
        if self._text:
            body["text"] = self._text
        return body


def _resource(item: ResourceLinkItem, *, with_line_item: bool) -> DeepLinkResource:
    resource = (
        _Resource(item.text[:MAX_TEXT_CHARS] if item.text else None)
        .set_type(RESOURCE_LINK)
        .set_title(item.title[:MAX_TITLE_CHARS])
        .set_url(item.url)
        .set_custom_params({str(k): str(v) for k, v in item.custom.items()})
    )
    if with_line_item and item.line_item is not None:
        spec = item.line_item
        line_item = LineItem().set_score_maximum(spec.score_maximum).set_label(spec.label)
        if spec.resource_id:
            line_item.set_resource_id(spec.resource_id)
        if spec.tag:
            line_item.set_tag(spec.tag)
        resource.set_lineitem(line_item)
    return resource


class _DeepLink(DeepLink):
    def __init__(
        self,
        registration: ToolKeyRegistration,
        deployment_id: str,
        settings: DeepLinkSettings,
        *,
        now: int,
        lifetime: int,
    ) -> None:
        raw: dict[str, Any] = {"deep_link_return_url": settings.return_url}
        if settings.has_data:
            raw["data"] = settings.data
        super().__init__(registration, deployment_id, cast(TDeepLinkData, raw))
        self._tool_registration = registration
        self._settings = settings
        self._now = now
        self._lifetime = lifetime

    def _generate_nonce(self) -> str:
        return secrets.token_urlsafe(24)

    def get_message_jwt(self, resources: Sequence[DeepLinkResource]) -> dict[str, object]:
        message = super().get_message_jwt(resources)
        message["aud"] = self._tool_registration.get_issuer()
        message["iat"] = self._now
        message["exp"] = self._now + self._lifetime
        if not self._settings.has_data:
            message.pop(DATA, None)
        return message

    def encode_jwt(self, message: Mapping[str, object]) -> str:
        return jwt.encode(
            dict(message),
            self._tool_registration.signing_key(),
            algorithm="RS256",
            headers={"kid": self._tool_registration.get_kid(), "typ": "JWT"},
        )


def _check(settings: DeepLinkSettings, items: Sequence[ResourceLinkItem]) -> None:
    if items and not settings.accepts_resource_links:
        raise RefusedItems(
            "type_not_accepted",
            f"the platform accepts {list(settings.accept_types)}, not {RESOURCE_LINK}",
        )
    if len(items) > 1 and not settings.accept_multiple:
        raise RefusedItems("one_item_only", "the platform accepts one content item")


def _deep_link(
    platform: ResponsePlatform,
    settings: DeepLinkSettings,
    tool_key: ToolKey,
    now: int | None,
    lifetime: int,
) -> _DeepLink:
    registration = ToolKeyRegistration(
        kid=tool_key.kid,
        private_key_pem=tool_key.private_key_pem,
        private_key=getattr(tool_key, "private_key", None),
    )
    registration.set_issuer(platform.issuer).set_client_id(platform.client_id)
    return _DeepLink(
        registration,
        platform.deployment_id,
        settings,
        now=int(time.time()) if now is None else now,
        lifetime=lifetime,
    )


def response_claims(
    platform: ResponsePlatform,
    settings: DeepLinkSettings,
    items: Sequence[ResourceLinkItem],
    tool_key: ToolKey,
    *,
    now: int | None = None,
    lifetime: int = RESPONSE_LIFETIME_SECONDS,
) -> dict[str, object]:
    """The claims of the response, unsigned (see ``sign_response``)."""
    _check(settings, items)
    resources = [_resource(item, with_line_item=settings.wants_line_items) for item in items]
    return _deep_link(platform, settings, tool_key, now, lifetime).get_message_jwt(resources)


def sign_response(
    platform: ResponsePlatform,
    settings: DeepLinkSettings,
    items: Sequence[ResourceLinkItem],
    tool_key: ToolKey,
    *,
    now: int | None = None,
    lifetime: int = RESPONSE_LIFETIME_SECONDS,
) -> str:
    """The signed ``LtiDeepLinkingResponse`` (RS256, the ``kid`` of ``tool_key``) to post as
    ``JWT`` to ``settings.return_url``.

    Raises ``RefusedItems``, signing nothing, when the platform does not accept the items
    (a type outside ``accept_types``, several items without ``accept_multiple``). An empty
    ``items`` is a valid answer: the person chose nothing. A line item goes with each item
    unless the platform said ``accept_lineitem: false``.
    """
    _check(settings, items)
    resources = [_resource(item, with_line_item=settings.wants_line_items) for item in items]
    return _deep_link(platform, settings, tool_key, now, lifetime).get_response_jwt(resources)
