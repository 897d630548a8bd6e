"""LTI Advantage Dynamic Registration 1.0 (1EdTech LTI-DR), the tool's side.

The platform opens ``/lti/register?openid_configuration=…&registration_token=…``. The tool
fetches the platform's OpenID configuration, checks it (§3.5: the configuration URL starts
with the issuer, private_key_jwt and RS256, the LTI platform configuration), posts its own
client registration (§3.6: OAuth 2 dynamic client registration, RFC 7591, with the LTI tool
configuration) with the registration token as a bearer token, and reads the client id and
deployment id from the answer. Storing the result is the application's business
(``app.platforms.service``): nothing here touches the database.

What Moodle 5.1 requires of the request (``mod/lti`` ``registration_helper``):
``response_types`` containing ``id_token``, ``redirect_uris`` as an array,
``token_endpoint_auth_method`` ``private_key_jwt``, ``application_type`` ``web``, a
``domain`` in the tool configuration matching the host of its ``target_link_uri``; an
``LtiDeepLinkingRequest`` message turns on "Supports Deep Linking" with the message's
``target_link_uri`` as the content selection URL; the scopes requested choose the services
(AGS with column management when ``lineitem`` is asked for, NRPS); the claims choose what it
shares (name, e-mail). Moodle answers with the tool type id as ``deployment_id`` and keeps the
new tool *pending* until a Moodle administrator activates it. The registration token is a
JWT that Moodle accepts once.

pylti1p3's ``dynamic_registration`` neither checks the configuration nor limits what it
reads, so the protocol is written out here with the timeout session of ``lti.http``.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests

from lti.ags import SCOPE_LINEITEM, SCOPE_LINEITEM_READONLY, SCOPE_RESULT_READONLY, SCOPE_SCORE
from lti.errors import RegistrationRefused
from lti.http import read_limited
from lti.services import NRPS_SCOPE

PLATFORM_CONFIGURATION = "https://purl.imsglobal.org/spec/lti-platform-configuration"
TOOL_CONFIGURATION = "https://purl.imsglobal.org/spec/lti-tool-configuration"
RESOURCE_LINK_REQUEST = "LtiResourceLinkRequest"
DEEP_LINKING_REQUEST = "LtiDeepLinkingRequest"

#: The LTI Advantage scopes blend727 uses; only those the platform lists are requested.
TOOL_SCOPES: tuple[str, ...] = (
    SCOPE_LINEITEM,
    SCOPE_LINEITEM_READONLY,
    SCOPE_RESULT_READONLY,
    SCOPE_SCORE,
    NRPS_SCOPE,
)
#: What blend727 would like in each id_token (it works with ``iss`` and ``sub`` alone).
TOOL_CLAIMS: tuple[str, ...] = (
    "iss",
    "sub",
    "name",
    "given_name",
    "family_name",
    "email",
    "locale",
)
#: Where "Select content" may appear: the spec's ``ContentArea`` and Moodle's
#: ``AddContentMenu``; requested only when the platform names them.
DEEP_LINKING_PLACEMENTS: tuple[str, ...] = ("ContentArea", "AddContentMenu")

MAX_CONFIGURATION_BYTES = 256 * 1024
MAX_URL_CHARS = 2048
MAX_ID_CHARS = 255
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


# -- what the tool says about itself ---------------------------------------------------------


@dataclass(frozen=True)
class ToolMessage:
    """One LTI message the tool accepts; ``labels`` maps a language to a label, the first
    being the default ``label``."""

    type: str
    target_link_uri: str
    labels: Mapping[str, str]


@dataclass(frozen=True)
class ToolDescription:
    """The tool's side of a registration, as plain data (the application fills it in, with
    its translated names)."""

    login_url: str
    launch_url: str
    jwks_url: str
    domain: str
    names: Mapping[str, str]  # language -> client name; the first is ``client_name``
    descriptions: Mapping[str, str]
    messages: Sequence[ToolMessage]
    logo_uri: str | None = None
    custom_parameters: Mapping[str, str] = field(default_factory=dict)


def _localized(key: str, values: Mapping[str, str]) -> dict[str, str]:
    items = list(values.items())
    if not items:
        return {}
    return {key: items[0][1], **{f"{key}#{lang}": text for lang, text in items}}


def tool_configuration(
    tool: ToolDescription,
    *,
    scopes: Iterable[str] = TOOL_SCOPES,
    message_types: Collection[str] | None = None,
    deep_linking_placements: Sequence[str] = (),
) -> dict[str, Any]:
    """The client registration request (LTI-DR §3.6.1). Without arguments: everything the
    tool can do, which is also the tool configuration ``/lti/config`` publishes."""
    messages: list[dict[str, Any]] = []
    for message in tool.messages:
        if message_types is not None and message.type not in message_types:
            continue
        entry: dict[str, Any] = {
            "type": message.type,
            "target_link_uri": message.target_link_uri,
            **_localized("label", message.labels),
        }
        if message.type == DEEP_LINKING_REQUEST and deep_linking_placements:
            entry["placements"] = list(deep_linking_placements)
        messages.append(entry)
    body: dict[str, Any] = {
        "application_type": "web",
        "response_types": ["id_token"],
        "grant_types": ["implicit", "client_credentials"],
        "initiate_login_uri": tool.login_url,
        "redirect_uris": [tool.launch_url],
        **_localized("client_name", tool.names),
        "jwks_uri": tool.jwks_url,
        "token_endpoint_auth_method": "private_key_jwt",
        "scope": " ".join(scopes),
        TOOL_CONFIGURATION: {
            "domain": tool.domain,
            "target_link_uri": tool.launch_url,
            "custom_parameters": dict(tool.custom_parameters),
            "claims": list(TOOL_CLAIMS),
            "messages": messages,
            **_localized("description", tool.descriptions),
        },
    }
    if tool.logo_uri:
        body["logo_uri"] = tool.logo_uri
    return body


# -- what the platform says about itself -----------------------------------------------------


@dataclass(frozen=True)
class PlatformConfiguration:
    """The parts of a platform's OpenID configuration (LTI-DR §3.5.2) blend727 uses."""

    configuration_url: str
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    registration_endpoint: str
    scopes_supported: frozenset[str]
    messages_supported: frozenset[str]
    placements: Mapping[str, frozenset[str]]  # message type -> placements offered
    authorization_server: str | None = None  # the ``aud`` of token requests, if not the URL
    product_family_code: str = ""
    version: str = ""

    @property
    def is_moodle(self) -> bool:
        return self.product_family_code.lower() == "moodle"


def check_url(field_name: str, value: Any, *, allow_http_loopback: bool = False) -> str:
    """An absolute https URL (http only on 127.0.0.1/localhost, for tests and the demo),
    without credentials or fragment."""
    if not isinstance(value, str) or not value.strip():
        raise RegistrationRefused(
            "bad_configuration",
            "The LMS's configuration lacks %(field)s.",
            status_code=502,
            params={"field": field_name},
        )
    value = value.strip()
    parts = urlsplit(value)
    host = (parts.hostname or "").lower()
    secure = parts.scheme == "https" or (
        parts.scheme == "http" and allow_http_loopback and host in LOOPBACK_HOSTS
    )
    if (
        len(value) > MAX_URL_CHARS
        or not secure
        or not host
        or "@" in parts.netloc
        or parts.fragment
        or any(ord(c) < 33 for c in value)
    ):
        raise RegistrationRefused(
            "insecure_url",
            "%(field)s must be an https address, got %(value)s.",
            status_code=400 if field_name == "openid_configuration" else 502,
            params={"field": field_name, "value": value[:200]},
        )
    return value


def _issuer_prefixes(url: str, issuer: str) -> bool:
    """LTI-DR §3.5.1: the configuration URL starts with the issuer — at a path boundary, so
    ``https://lms.example`` does not vouch for ``https://lms.example.evil.test/…``."""
    if url == issuer:
        return True
    prefix = issuer if issuer.endswith("/") else issuer + "/"
    return url.startswith(prefix)


def _strings(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _required_list(data: Mapping[str, Any], key: str) -> list[Any]:
    value = data.get(key)
    if not isinstance(value, list):
        raise RegistrationRefused(
            "bad_configuration",
            "The LMS's configuration lacks %(field)s.",
            status_code=502,
            params={"field": key},
        )
    return value


def parse_platform_configuration(
    configuration_url: str, data: Any, *, allow_http_loopback: bool = False
) -> PlatformConfiguration:
    """Check a platform's OpenID configuration; the first problem is raised with its field."""
    if not isinstance(data, dict):
        raise RegistrationRefused(
            "bad_configuration",
            "The LMS's configuration at %(url)s is not a JSON object.",
            status_code=502,
            params={"url": configuration_url},
        )
    loopback = allow_http_loopback
    issuer = check_url("issuer", data.get("issuer"), allow_http_loopback=loopback)
    parts = urlsplit(issuer)
    if parts.query or len(issuer) > 512:
        raise RegistrationRefused(
            "bad_configuration",
            "The LMS's issuer %(issuer)s is not a valid issuer identifier.",
            status_code=502,
            params={"issuer": issuer},
        )
    if not _issuer_prefixes(configuration_url, issuer):
        raise RegistrationRefused(
            "issuer_mismatch",
            "The LMS calls itself %(issuer)s, but its configuration came from %(url)s: the "
            "address of the configuration must start with the issuer.",
            status_code=502,
            params={"issuer": issuer, "url": configuration_url},
        )
    urls = {
        key: check_url(key, data.get(key), allow_http_loopback=loopback)
        for key in ("authorization_endpoint", "token_endpoint", "jwks_uri", "registration_endpoint")
    }
    if "private_key_jwt" not in _required_list(data, "token_endpoint_auth_methods_supported"):
        raise RegistrationRefused(
            "unsupported_platform",
            "The LMS does not accept tokens signed by the tool (private_key_jwt), which "
            "blend727 needs for grades and class lists.",
            status_code=502,
        )
    if "RS256" not in _required_list(data, "id_token_signing_alg_values_supported"):
        raise RegistrationRefused(
            "unsupported_platform",
            "The LMS does not sign its messages with RS256, the algorithm LTI 1.3 requires.",
            status_code=502,
        )
    scopes = frozenset(_strings(_required_list(data, "scopes_supported")))
    lti = data.get(PLATFORM_CONFIGURATION)
    if not isinstance(lti, dict):
        raise RegistrationRefused(
            "bad_configuration",
            "The LMS's configuration lacks %(field)s.",
            status_code=502,
            params={"field": PLATFORM_CONFIGURATION},
        )
    # Moodle lists message types as strings (and its placements once, for all of them); the
    # specification as objects with their own placements. Both are read.
    shared = frozenset(_strings(lti.get("placements")))
    types: set[str] = set()
    placements: dict[str, frozenset[str]] = {}
    for item in _required_list(lti, "messages_supported"):
        if isinstance(item, str):
            kind, own = item, frozenset[str]()
        elif isinstance(item, dict) and isinstance(item.get("type"), str):
            kind, own = item["type"], frozenset(_strings(item.get("placements")))
        else:
            continue
        types.add(kind)
        placements[kind] = placements.get(kind, frozenset()) | own | shared
    if RESOURCE_LINK_REQUEST not in types:
        raise RegistrationRefused(
            "unsupported_platform",
            "The LMS does not offer resource link launches (%(type)s).",
            status_code=502,
            params={"type": RESOURCE_LINK_REQUEST},
        )
    audience = data.get("authorization_server")
    return PlatformConfiguration(
        configuration_url=configuration_url,
        issuer=issuer,
        authorization_endpoint=urls["authorization_endpoint"],
        token_endpoint=urls["token_endpoint"],
        jwks_uri=urls["jwks_uri"],
        registration_endpoint=urls["registration_endpoint"],
        scopes_supported=scopes,
        messages_supported=frozenset(types),
        placements=placements,
        authorization_server=audience.strip() if isinstance(audience, str) and audience else None,
        product_family_code=str(lti.get("product_family_code") or "")[:64],
        version=str(lti.get("version") or "")[:64],
    )


# -- talking to the platform -----------------------------------------------------------------


def _network_failure(exc: requests.RequestException, url: str) -> RegistrationRefused:
    if isinstance(exc, requests.Timeout):
        return RegistrationRefused(
            "platform_timeout",
            "The LMS did not answer in time (%(url)s).",
            status_code=504,
            params={"url": url},
            log_detail=f"timeout: {exc}",
        )
    return RegistrationRefused(
        "platform_unreachable",
        "blend727 could not reach the LMS at %(url)s.",
        status_code=502,
        params={"url": url},
        log_detail=f"{type(exc).__name__}: {exc}",
    )


def _read(response: requests.Response, url: str) -> bytes:
    try:
        return read_limited(response, MAX_CONFIGURATION_BYTES)
    except ValueError as exc:
        raise RegistrationRefused(
            "bad_configuration",
            "The LMS's answer from %(url)s is larger than blend727 accepts.",
            status_code=502,
            params={"url": url},
        ) from exc
    finally:
        response.close()


def _json(body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8"))
    except (ValueError, RecursionError):
        return None


def fetch_platform_configuration(
    http: requests.Session, configuration_url: str, *, allow_http_loopback: bool = False
) -> PlatformConfiguration:
    """GET the OpenID configuration (no redirects, size-capped) and check it."""
    url = check_url(
        "openid_configuration", configuration_url, allow_http_loopback=allow_http_loopback
    )
    try:
        response = http.get(
            url, headers={"Accept": "application/json"}, stream=True, allow_redirects=False
        )
        body = _read(response, url)
    except requests.RequestException as exc:
        raise _network_failure(exc, url) from exc
    if response.status_code != 200:
        raise RegistrationRefused(
            "bad_configuration",
            "The LMS answered HTTP %(status)s when blend727 asked for its configuration at "
            "%(url)s.",
            status_code=502,
            params={"status": response.status_code, "url": url},
        )
    return parse_platform_configuration(url, _json(body), allow_http_loopback=allow_http_loopback)


def registration_request(tool: ToolDescription, platform: PlatformConfiguration) -> dict[str, Any]:
    """The registration request for this platform: only the scopes and messages it offers."""
    offered = platform.placements.get(DEEP_LINKING_REQUEST, frozenset())
    return tool_configuration(
        tool,
        scopes=[s for s in TOOL_SCOPES if s in platform.scopes_supported],
        message_types=platform.messages_supported,
        deep_linking_placements=[p for p in DEEP_LINKING_PLACEMENTS if p in offered],
    )


@dataclass(frozen=True)
class RegisteredTool:
    """What the platform answered (LTI-DR §3.6.2)."""

    client_id: str
    deployment_id: str | None
    scope: str


def _identifier(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value).strip()
    if not text or len(text) > MAX_ID_CHARS or any(ord(c) < 32 or ord(c) == 127 for c in text):
        return None
    return text


def _platform_reason(body: bytes) -> str:
    """The platform's words for a refusal: RFC 7591 ``error``/``error_description``, or the
    start of a plain-text body (Moodle sends its message as the body)."""
    data = _json(body)
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        description = data.get("error_description")
        text = data["error"] + (f": {description}" if isinstance(description, str) else "")
    else:
        text = body.decode("utf-8", "replace")
    text = "".join(c if c.isprintable() else " " for c in text).strip()
    return text[:200] or "—"


def register_tool(
    http: requests.Session,
    platform: PlatformConfiguration,
    body: Mapping[str, Any],
    registration_token: str | None,
) -> RegisteredTool:
    """POST the registration; raise ``RegistrationRefused`` unless the platform accepted it."""
    url = platform.registration_endpoint
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if registration_token:
        headers["Authorization"] = f"Bearer {registration_token}"
    try:
        response = http.post(
            url,
            data=json.dumps(body).encode("utf-8"),
            headers=headers,
            stream=True,
            allow_redirects=False,
        )
        answer = _read(response, url)
    except requests.RequestException as exc:
        raise _network_failure(exc, url) from exc
    status = response.status_code
    if status in (401, 403):
        raise RegistrationRefused(
            "registration_token_refused",
            "The LMS refused the registration token (HTTP %(status)s: %(reason)s). Each "
            "registration started in the LMS can be used once: start a new one there.",
            status_code=502,
            params={"status": status, "reason": _platform_reason(answer)},
        )
    if not 200 <= status < 300:
        raise RegistrationRefused(
            "registration_refused",
            "The LMS refused the registration (HTTP %(status)s: %(reason)s).",
            status_code=502,
            params={"status": status, "reason": _platform_reason(answer)},
        )
    data = _json(answer)
    client_id = _identifier(data.get("client_id")) if isinstance(data, dict) else None
    if client_id is None:
        raise RegistrationRefused(
            "bad_registration_response",
            "The LMS accepted the registration but its answer has no usable client_id.",
            status_code=502,
        )
    assert isinstance(data, dict)
    tool_config = data.get(TOOL_CONFIGURATION)
    raw_deployment = tool_config.get("deployment_id") if isinstance(tool_config, dict) else None
    deployment_id = _identifier(raw_deployment)
    if raw_deployment is not None and deployment_id is None:
        raise RegistrationRefused(
            "bad_registration_response",
            "The LMS accepted the registration but its deployment_id is not usable.",
            status_code=502,
        )
    scope = data.get("scope")
    return RegisteredTool(
        client_id=client_id,
        deployment_id=deployment_id,
        scope=scope if isinstance(scope, str) else "",
    )
