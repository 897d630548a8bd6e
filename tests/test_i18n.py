"""Vietnamese first: every message a person can see has a Vietnamese translation, pages render
in Vietnamese by default, and English only when asked for.

No database needed: the message ids come from ``scripts/extract_messages.py`` (templates,
``_()`` calls, error classes, ``lti.errors.REASONS`` and error constructor call sites) and
pages are rendered with ``render_string``.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po
from markupsafe import escape

from app.core.i18n import LOCALE_DIR, gettext, negotiate_locale
from app.core.templating import TEMPLATE_DIR, render_string
from lti.errors import ADVICE, REASONS, LaunchRefused

ROOT = Path(__file__).resolve().parent.parent
PO_PATH = LOCALE_DIR / "vi" / "LC_MESSAGES" / "messages.po"
# A %-placeholder with its conversion: %(name)s, %(value)r, %(n)d …
PLACEHOLDER = re.compile(r"%\((\w+)\)[-#0 +]*\d*(?:\.\d+)?[diouxXeEfFgGcrsa]")


def _load_extractor() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "extract_messages", ROOT / "scripts" / "extract_messages.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def extracted() -> Catalog:
    return _load_extractor().build_catalog()


@pytest.fixture(scope="module")
def msgids(extracted: Catalog) -> list[str]:
    """Message ids; a plural entry (ngettext) is named by its singular, as gettext keys it."""
    return [m.id[0] if isinstance(m.id, tuple) else m.id for m in extracted if m.id]


def _texts(value: object) -> list[str]:
    """A msgid or msgstr as a list of strings (plural entries have several)."""
    return [str(v) for v in value] if isinstance(value, tuple | list) else [str(value)]


@pytest.fixture(scope="module")
def vi_catalog() -> Catalog:
    with PO_PATH.open("rb") as fh:
        return read_po(fh, locale="vi")


# --- The catalogue ------------------------------------------------------------------------


def test_extraction_finds_every_kind_of_message(msgids: list[str]) -> None:
    """Guards the tests below against passing on an empty list of messages."""
    expected = [
        "Teacher (learner)",  # template
        "Hello, %(name)s",  # template, with a placeholder
        "Your session has expired or has not started.",  # AppError subclass attribute
        "The demonstration LMS refused the sign-in",  # DemoRefused, outside app.core.errors
        "%(field)s is required",  # ValidationFailed(...) call site
        "Go back, reload the page and try again.",  # Forbidden(advice=...) call site
        "This address does not accept that request",  # error.title = ... assignment
        "Open blend727 again from your course. If it happens again, send this code to the "
        "administrator of your LMS: %(code)s.",  # lti.errors._ADVICE_ADMIN
    ]
    expected += [text for _status, title, detail in REASONS.values() for text in (title, detail)]
    expected += list(ADVICE.values())  # lti.errors.ADVICE
    missing = [m for m in expected if m not in msgids]
    assert not missing, f"extract_messages.py did not find: {missing}"
    # Reason codes passed to LaunchRefused("…") are codes, not messages.
    assert "expired" not in msgids and "missing_claims" not in msgids


def test_every_message_has_a_vietnamese_translation(msgids: list[str], vi_catalog: Catalog) -> None:
    untranslated = []
    for msgid in msgids:
        message = vi_catalog.get(msgid)
        # Fuzzy entries are ignored when the catalogue is compiled: they show English.
        if message is None or not all(t.strip() for t in _texts(message.string)) or message.fuzzy:
            untranslated.append(msgid)
    assert not untranslated, (
        f"{len(untranslated)} message(s) would show in English to a Vietnamese user; "
        f"translate them in {PO_PATH.relative_to(ROOT)}: {untranslated}"
    )


def test_translations_keep_the_placeholders(vi_catalog: Catalog) -> None:
    wrong = []
    for message in vi_catalog:
        if not message.id or not message.string:
            continue
        source = set(PLACEHOLDER.findall(_texts(message.id)[-1]))
        for text in _texts(message.string):
            target = set(PLACEHOLDER.findall(text))
            if source != target:
                wrong.append((message.id, text))
                continue
            # And the translation formats with the same parameters the code passes.
            params = {name: "x" for name in source}
            try:
                text % params if params else None
            except (KeyError, ValueError, TypeError) as exc:
                wrong.append((message.id, f"{text!r}: {exc}"))
    assert not wrong, f"placeholders differ between msgid and msgstr: {wrong}"


def test_catalogue_has_no_stale_entries(msgids: list[str], vi_catalog: Catalog) -> None:
    """A translation whose msgid no longer exists in the code is never shown (often a typo
    or an English text changed without updating the catalogue)."""
    known = set(msgids)
    stale = [m.id for m in vi_catalog if m.id and _texts(m.id)[0] not in known]
    assert not stale, f"run pybabel update (see docs); stale entries: {stale}"


def test_catalogue_header_is_vietnamese(vi_catalog: Catalog) -> None:
    assert str(vi_catalog.locale) == "vi"
    assert vi_catalog.num_plurals == 1
    assert vi_catalog.plural_expr.strip() == "0"
    assert vi_catalog.charset.lower() == "utf-8"


@pytest.mark.parametrize(
    ("english", "vietnamese"),
    [
        ("Teacher (learner)", "Giáo viên (học viên)"),
        ("Core trainer", "Giáo viên cốt cán"),
        ("Administrator", "Quản trị viên"),
    ],
)
def test_role_names(english: str, vietnamese: str) -> None:
    assert gettext("vi", english) == vietnamese
    assert gettext("en", english) == english


def test_launch_errors_read_in_vietnamese_with_the_code() -> None:
    error = LaunchRefused("expired")
    title = gettext("vi", error.title)
    advice = gettext("vi", error.advice, **error.params)
    assert title == "Yêu cầu truy cập đã hết hạn"
    assert "expired" in advice and "quản trị viên" in advice
    assert gettext("en", error.advice, **error.params).startswith("Open blend727 again")


# --- Rendered pages -----------------------------------------------------------------------


def _viewer(role: str = "teacher") -> SimpleNamespace:
    return SimpleNamespace(
        user=SimpleNamespace(display_name="Nguyễn Thị Lan"),
        role=SimpleNamespace(value=role),
        course=SimpleNamespace(title="Mô đun 4", label="MĐ4", context_id="c1"),
        resource_link=SimpleNamespace(title="Tự học"),
        return_url="https://lms.test/course/view.php?id=2",
        csrf_token="t",
    )


def test_welcome_page_is_vietnamese_by_default() -> None:
    html = render_string("welcome.html", {"demo": True, "request": None, "viewer": None}, "vi")
    assert '<html lang="vi">' in html
    assert "Cách truy cập blend727" in html
    assert "7 ngày tự học trên LMS, 2 ngày học trực tiếp" in html
    assert "Dùng thử mà không cần LMS" in html
    assert "How to open blend727" not in html
    assert "Try the demonstration without an LMS" not in html


def test_welcome_page_in_english() -> None:
    html = render_string("welcome.html", {"demo": True, "request": None, "viewer": None}, "en")
    assert '<html lang="en">' in html
    assert "How to open blend727" in html
    assert "Try the demonstration without an LMS" in html
    assert "Cách truy cập blend727" not in html


def test_teacher_home_in_vietnamese_and_english() -> None:
    vi = render_string("home_teacher.html", {"viewer": _viewer(), "request": None}, "vi")
    assert "Xin chào, Nguyễn Thị Lan" in vi
    assert "Giáo viên (học viên)" in vi
    assert "7 ngày tự học" in vi and "7 ngày học tập sau tập trung" in vi
    assert "Đăng xuất" in vi
    assert "Hello," not in vi and "Sign out" not in vi

    en = render_string("home_teacher.html", {"viewer": _viewer(), "request": None}, "en")
    assert "Hello, Nguyễn Thị Lan" in en
    assert "Teacher (learner)" in en and "Sign out" in en
    assert "Xin chào" not in en


def _page_context() -> dict[str, object]:
    endpoints = {
        k: "https://tool.test/x"
        for k in (
            "tool_url",
            "login_url",
            "redirect_uri",
            "jwks_url",
            "deep_linking_url",
            "registration_url",
        )
    }
    person = SimpleNamespace(name="Nguyễn Thị Lan")
    return {
        "request": None,
        "viewer": _viewer(),
        "demo": True,
        "endpoints": endpoints | {"domain": "tool.test"},
        "platform": SimpleNamespace(
            name="Moodle",
            issuer="https://lms.test",
            client_id="c",
            auth_login_url="u",
            token_url="u",
            keyset_url="u",
            active=True,
        ),
        "deployments": [SimpleNamespace(deployment_id="1", name="")],
        "personas": {"teacher": person, "trainer": person, "admin": person},
        "demo_locale": "vi",
        "action": "https://tool.test/lti/launch",
        "id_token": "x",
        "state": "s",
        "title": "t",
        "detail": "d",
        "advice": "a",
        "code": "c",
        "status": 400,
        "request_id": "r",
        "return_url": "https://lms.test/",
        # lti_register_done.html: the longest variant (pending, no deployment, invitation lost)
        "outcome": SimpleNamespace(
            platform_id=3,
            issuer="https://lms.test",
            client_id="c",
            deployment_id=None,
            status="pending",
            created=True,
            invitation_taken=True,
            moodle=True,
        ),
        "close_subject": "org.imsglobal.lti.close",
        # the LTI pages of a browser that blocks cookies in the frame, and the demo's frame
        "persona": person,
        "src": "/demo/start/teacher",
        "tool_origin": "https://tool.test",
        "platform_base": "https://lms.test",
        "storage": {"target": "_parent", "origin": "https://lms.test", "key": "k", "value": "v"},
        "timeout_ms": 2000,
        "auth_url": "https://lms.test/auth",
        "cookie_attributes": "Path=/; SameSite=Lax",
        "new_window_url": "/lti/login?iss=x",
    }


# Pages rendered here with a generic context. Pages that need real data are checked through
# real requests instead: the administrator's 7-2-7 pages in tests/test_admin_pages.py, the
# learning and grading pages in tests/test_whole_path.py.
REAL_DATA_PAGES = ("_", "admin_", "learn_", "grading_")
PAGES = sorted(
    p.name
    for p in TEMPLATE_DIR.glob("*.html")
    if not p.name.startswith(REAL_DATA_PAGES) or p.name == "admin_lti.html"
)


@pytest.mark.parametrize("page", PAGES)
def test_no_english_sentence_on_a_vietnamese_page(page: str, msgids: list[str]) -> None:
    html = render_string(page, _page_context(), "vi")

    def quoted_on_purpose(m: str) -> bool:
        # "URL bộ khóa công khai (Public keyset URL)": the Moodle label, kept in brackets.
        vi = gettext("vi", m)
        return vi != m and m in vi

    leaked = [
        m
        for m in msgids
        if "%(" not in m
        and len(m.split()) >= 3
        and (m in html or str(escape(m)) in html)
        and not quoted_on_purpose(m)
    ]
    assert not leaked, f"{page} shows English to a Vietnamese user: {leaked}"


# --- Locale negotiation -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("requested", "expected"),
    [
        ("en", "en"),
        ("en-US", "en"),
        ("en_GB", "en"),
        ("vi", "vi"),
        ("vi-VN", "vi"),
        ("vi_VN", "vi"),
        (None, "vi"),
        ("", "vi"),
        ("fr", "vi"),
        ("fr-FR", "vi"),
    ],
)
def test_negotiate_locale(requested: str | None, expected: str) -> None:
    assert negotiate_locale(requested) == expected
