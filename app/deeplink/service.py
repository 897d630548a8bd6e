"""Deep Linking 2.0 for the 7-2-7 catalogue.

A deep-linking launch (Moodle's "Select content") signs the platform's
``deep_linking_settings`` into a short-lived token (``deep_link_location``) and sends the
browser to ``/deep-link?t=…``: no table holds the settings, and the token is bound to the
web session the launch created, so a copied address is useless to anyone else. The picker
lists the tenant's modules (one choice per module and level that has a title) and its
classes; the choice becomes an ``ltiResourceLink`` with the custom parameters the tool reads
back on launch and a line item for the module's result, signed with the tool's current key
(``lti.deep_linking``) and posted back to the platform by the browser.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from itsdangerous import BadData, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy.orm import Session

from app.catalogue.repository import CatalogueRepository
from app.catalogue.service import CatalogueService, spec_of
from app.classes.repository import ClassRepository
from app.core.errors import AppError
from app.core.i18n import gettext
from app.keys.service import KeyService
from app.platforms.models import Deployment
from app.platforms.repository import PlatformRepository
from lti.deep_linking import (
    DeepLinkSettings,
    LineItemSpec,
    RefusedItems,
    ResourceLinkItem,
    ResponsePlatform,
    UnusableSettings,
    keep_settings,
    sign_response,
)
from modules.catalogue import LEVELS

SETTINGS_SALT = "blend727.deep-link-settings.v1"
#: How long after the launch the picker may be used (the platform's own dialog rarely
#: stays open longer; the response JWT itself lives 5 minutes).
SETTINGS_MAX_AGE_SECONDS = 3600
#: Longest ``t`` accepted (a real one is well under 1 000 characters).
MAX_TOKEN_CHARS = 8192
PICKER_PATH = "/deep-link"

#: The line item every placed module brings (AGS ``tag``); results are on a 10-point scale.
LINE_ITEM_TAG = "blend727-module-result"
SCORE_MAXIMUM = 10
#: ``<module key>:<level>``, the value of one choice on the picker.
CHOICE_SEPARATOR = ":"


def N_(message: str) -> str:
    """Mark an English message id for extraction; it is translated where it is shown."""
    return message


LEVEL_NAMES = {
    "tieu_hoc": N_("Primary school"),
    "thcs": N_("Lower secondary school"),
    "thpt": N_("Upper secondary school"),
}
TRACK_NAMES = {"gvpt": N_("GVPT (teachers)"), "cbql": N_("CBQL (school managers)")}


# -- errors ---------------------------------------------------------------------------------
# Built with literal message ids at the call site, so that scripts/extract_messages.py finds
# them without a list of modules to import.


def _expired() -> AppError:
    return AppError(
        "This page was opened too long ago to add content to the course.",
        title="The content selection has expired",
        advice="Close this window and choose “Select content” again in your course.",
        code="deep_link_expired",
        status_code=400,
    )


def _invalid(log_detail: str) -> AppError:
    return AppError(
        "The address of this page is incomplete, has been changed or belongs to another sign-in.",
        title="This content selection is not valid",
        advice="Close this window and choose “Select content” again in your course.",
        code="deep_link_invalid",
        status_code=400,
        log_detail=log_detail,
    )


def _not_accepted(accepted: Sequence[str]) -> AppError:
    return AppError(
        "Here the LMS does not accept activities (LTI resource links) from blend727, so "
        "nothing was sent.",
        title="This place in the course does not accept blend727 activities",
        advice="Add blend727 from the activity chooser of a course section, or ask the "
        "administrator of your LMS.",
        code="deep_link_type_not_accepted",
        status_code=422,
        log_detail=f"accept_types {list(accepted)!r}",
    )


# -- the signed settings --------------------------------------------------------------------


def _serializer(secret: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt=SETTINGS_SALT)


def _session_binding(secret: str, session_id: str) -> str:
    """Names the web session without revealing its id (the token travels in a URL)."""
    mac = hmac.new(secret.encode(), f"deep-link:{session_id}".encode(), hashlib.sha256)
    return mac.hexdigest()[:32]


def sign_deep_link_settings(
    secret: str,
    settings: Mapping[str, Any],
    deployment_id: int,
    platform_id: int,
    *,
    session_id: str,
) -> str:
    """A URL-safe token carrying the launch's ``deep_linking_settings`` (the known
    properties only), the deployment and platform (primary keys) and the web session it
    belongs to; valid for ``SETTINGS_MAX_AGE_SECONDS``."""
    payload = {
        "s": keep_settings(settings),
        "d": int(deployment_id),
        "p": int(platform_id),
        "b": _session_binding(secret, session_id),
    }
    token = _serializer(secret).dumps(payload)
    assert isinstance(token, str)
    return token


def deep_link_location(
    secret: str,
    settings: Mapping[str, Any],
    *,
    deployment_id: int,
    platform_id: int,
    session_id: str,
) -> str:
    """Where a deep-linking launch sends the browser: the picker, with the signed settings."""
    token = sign_deep_link_settings(
        secret, settings, deployment_id, platform_id, session_id=session_id
    )
    return f"{PICKER_PATH}?{urlencode({'t': token})}"


@dataclass(frozen=True)
class DeepLinkGrant:
    """Verified settings of one deep-linking launch."""

    settings: DeepLinkSettings
    deployment_id: int
    platform_id: int


def read_deep_link_settings(
    secret: str,
    token: str | None,
    max_age: int = SETTINGS_MAX_AGE_SECONDS,
    *,
    session_id: str | None = None,
    deployment_id: int | None = None,
    platform_id: int | None = None,
) -> DeepLinkGrant:
    """The settings a token carries; ``AppError`` (400) when it is missing, tampered with,
    older than ``max_age`` seconds, or — when given — issued to another web session,
    deployment or platform."""
    if not token or len(token) > MAX_TOKEN_CHARS:
        raise _invalid("no token or token too long")
    try:
        payload = _serializer(secret).loads(token, max_age=max_age)
    except SignatureExpired as exc:
        raise _expired() from exc
    except BadData as exc:
        raise _invalid(f"bad token: {type(exc).__name__}") from exc
    if not isinstance(payload, dict) or not isinstance(payload.get("s"), dict):
        raise _invalid("token payload is not an object")
    dep, plat, binding = payload.get("d"), payload.get("p"), payload.get("b")
    if not isinstance(dep, int) or not isinstance(plat, int) or not isinstance(binding, str):
        raise _invalid("token payload lacks deployment, platform or session")
    if session_id is not None and not hmac.compare_digest(
        binding, _session_binding(secret, session_id)
    ):
        raise _invalid("token issued to another web session")
    if (deployment_id is not None and dep != deployment_id) or (
        platform_id is not None and plat != platform_id
    ):
        raise _invalid(f"token for deployment {dep}/platform {plat}")
    try:
        settings = DeepLinkSettings.from_claim(payload["s"])
    except UnusableSettings as exc:
        raise _invalid(str(exc)) from exc
    return DeepLinkGrant(settings=settings, deployment_id=dep, platform_id=plat)


# -- what can be chosen ---------------------------------------------------------------------


@dataclass(frozen=True)
class LevelChoice:
    value: str  # "<module key>:<level>"
    level: str
    title: str  # the module's Vietnamese title for this level


@dataclass(frozen=True)
class ModuleChoice:
    key: str
    track: str
    number: int | None
    local_code: str | None
    title: str
    levels: tuple[LevelChoice, ...]


@dataclass(frozen=True)
class ClassChoice:
    code: str
    name: str
    module_key: str
    level: str


@dataclass(frozen=True)
class Picker:
    modules: tuple[ModuleChoice, ...]
    classes: tuple[ClassChoice, ...]

    def choice(self, value: str) -> tuple[ModuleChoice, LevelChoice] | None:
        for module in self.modules:
            for level in module.levels:
                if level.value == value:
                    return module, level
        return None

    def class_by_code(self, code: str) -> ClassChoice | None:
        return next((c for c in self.classes if c.code == code), None)


class ChoiceRefused(Exception):
    """A form value that cannot be used: ``field`` and an English message id."""

    def __init__(self, field: str, message: str, **params: Any) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.params = params


@dataclass(frozen=True)
class SignedResponse:
    """What the browser posts back to the platform."""

    return_url: str
    jwt: str
    items: tuple[ResourceLinkItem, ...] = field(default_factory=tuple)


def activity_title(locale: str, module: ModuleChoice, level: LevelChoice) -> str:
    """The activity's name in the course: "Mô đun 4 · Trung học cơ sở — <title>"."""
    level_name = gettext(locale, LEVEL_NAMES.get(level.level, level.level))
    if module.number is not None:
        head = gettext(locale, "Module %(number)s", number=module.number)
        return f"{head} · {level_name} — {level.title}"
    return f"{level.title} · {level_name}"


class DeepLinkService:
    def __init__(self, session: Session) -> None:
        self.session = session

    def picker(self, deployment_id: int) -> Picker:
        """The tenant's modules (one choice per level with a title) and classes."""
        modules: list[ModuleChoice] = []
        for module, version in CatalogueService(self.session).modules(deployment_id):
            spec = spec_of(version)
            titles: dict[str, str] = {str(k): v for k, v in spec.titles.items()}
            levels = tuple(
                LevelChoice(f"{module.key}{CHOICE_SEPARATOR}{lv}", lv, titles[lv])
                for lv in LEVELS
                if titles.get(lv)
            )
            if levels:
                modules.append(
                    ModuleChoice(
                        key=module.key,
                        track=module.track,
                        number=module.number,
                        local_code=spec.local_code,
                        title=version.title_vi,
                        levels=levels,
                    )
                )
        rows = ClassRepository(self.session).classes(deployment_id)
        refs = CatalogueRepository(self.session).versions_with_modules(
            {c.module_version_id for c in rows}
        )
        classes = tuple(
            ClassChoice(c.code, c.name, refs[c.module_version_id][0].key, c.level)
            for c in rows
            if c.module_version_id in refs
        )
        return Picker(tuple(modules), classes)

    def respond(
        self,
        grant: DeepLinkGrant,
        picker: Picker,
        values: Sequence[str],
        class_code: str,
        *,
        base_url: str,
        locale: str,
    ) -> SignedResponse:
        """The signed response for the chosen module/level pairs (and class); raises
        ``ChoiceRefused`` for a form to correct, ``AppError`` when nothing can be sent."""
        settings = grant.settings
        if not settings.accepts_resource_links:
            raise _not_accepted(settings.accept_types)
        chosen = list(dict.fromkeys(v for v in values if v))
        if not chosen:
            raise ChoiceRefused("item", N_("Choose a module and a level."))
        if len(chosen) > 1 and not settings.accept_multiple:
            raise ChoiceRefused("item", N_("Here the LMS accepts one activity at a time."))
        picked = []
        for value in chosen:
            found = picker.choice(value)
            if found is None:
                raise ChoiceRefused("item", N_("Choose one of the options."))
            picked.append(found)
        class_choice: ClassChoice | None = None
        if class_code:
            class_choice = picker.class_by_code(class_code)
            if class_choice is None:
                raise ChoiceRefused("class_code", N_("Choose one of the options."))
            for module, level in picked:
                if (class_choice.module_key, class_choice.level) != (module.key, level.level):
                    raise ChoiceRefused(
                        "class_code",
                        N_("Class %(code)s teaches another module or level."),
                        code=class_choice.code,
                    )

        launch_url = base_url.rstrip("/") + "/lti/launch"
        items = []
        for module, level in picked:
            title = activity_title(locale, module, level)
            custom = {"module_key": module.key, "level": level.level}
            if class_choice is not None:
                custom["class_code"] = class_choice.code
            items.append(
                ResourceLinkItem(
                    title=title,
                    url=launch_url,
                    custom=custom,
                    line_item=LineItemSpec(
                        label=title,
                        score_maximum=SCORE_MAXIMUM,
                        resource_id=module.key,
                        tag=LINE_ITEM_TAG,
                    ),
                )
            )
        platform = self._platform(grant)
        try:
            token = sign_response(platform, settings, items, KeyService(self.session).signing_key())
        except RefusedItems as exc:  # checked above; kept for a platform we misread
            raise _not_accepted(settings.accept_types) from exc
        return SignedResponse(settings.return_url, token, tuple(items))

    def _platform(self, grant: DeepLinkGrant) -> ResponsePlatform:
        record = PlatformRepository(self.session).record_for_deployment(grant.deployment_id)
        deployment = self.session.get(Deployment, grant.deployment_id)
        if record is None or deployment is None or record.id != grant.platform_id:
            raise _invalid(f"deployment {grant.deployment_id} of platform {grant.platform_id} gone")
        return ResponsePlatform(
            issuer=record.issuer,
            client_id=record.client_id,
            deployment_id=deployment.deployment_id,
        )
