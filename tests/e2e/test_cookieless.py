"""Launches inside a cross-site iframe whose browser blocks cookies, in headless Chromium
(issue #6).

The demonstration LMS runs on the same server as the tool but under another host name:
its course page is ``http://localhost:<port>/demo/frame/…`` and frames the tool at
``http://127.0.0.1:<port>`` - another *site*, as Moodle and a hosted tool are. The tool
sends production cookies (``SameSite=None; Secure; Partitioned``, which Chromium accepts
from http://127.0.0.1 as a potentially trustworthy origin).

Each test gets a fresh persistent Chromium profile whose ``Preferences`` set how cookies
are treated (what Chromium 156 does with each is what ``test_what_chromium_blocks`` checks):

* ``third-party-blocked``: "Block third-party cookies" (``block_third_party_cookies``,
  ``cookie_controls_mode: 1``). Chromium still keeps *partitioned* cookies (CHIPS) there.
* ``frame-blocked``: the same, plus a cookie exception that blocks the tool's cookies under
  the LMS's pages, partitioned ones included - a browser that keeps no cookie of ours in the
  frame (as Safari does), while the tool's own window still keeps them.
* ``allowed``: third-party cookies allowed.

The tests follow the frame from the LMS's course page: the platform's storage, the new
window, and the unchanged path when cookies work. No request may leave 127.0.0.1/localhost,
and no page may break the CSP or throw.
"""

from __future__ import annotations

import json
import re
import shutil
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest

from app.core.i18n import gettext
from app.demo.service import PERSONAS
from tests.e2e.conftest import ARTIFACTS, _listening_socket, _wait_until_healthy

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Frame, Page, Playwright

pytestmark = pytest.mark.e2e

LOCALE = "vi"
HOSTS = {"127.0.0.1", "localhost"}
TEACHER = PERSONAS["teacher"].name


def t(message: str, **params: object) -> str:
    return gettext(LOCALE, message, **params)


@dataclass(frozen=True)
class Sites:
    tool: str  # http://127.0.0.1:<port>
    lms: str  # http://localhost:<port>: the same server, another site


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sites]:
    """``blend727 demo`` with the demonstration LMS under ``localhost`` and the tool under
    ``127.0.0.1`` (one server, two sites), sending cross-site cookies over plain HTTP."""
    import uvicorn

    from app.config import Settings
    from app.core.migrate import upgrade
    from app.main import create_app

    tmp = tmp_path_factory.mktemp("e2e-cookieless")
    sock = _listening_socket()
    port = sock.getsockname()[1]
    tool, lms = f"http://127.0.0.1:{port}", f"http://localhost:{port}"
    settings = Settings(
        demo=True,
        base_url=tool,
        demo_platform_url=lms,
        cross_site_cookies=True,
        database_url=f"sqlite:///{tmp / 'e2e.db'}",
        secret_key="e2e-cookieless-" + "k" * 32,
        inprocess_worker=False,
        upload_dir=tmp / "uploads",
    )
    upgrade(settings.database_url)
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), log_config=None, log_level="warning", access_log=False)
    )
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="e2e-cookieless", daemon=True
    )
    thread.start()
    try:
        _wait_until_healthy(tool, thread)
        yield Sites(tool=tool, lms=lms)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for test in (
        "test_what_chromium_blocks",
        "test_platform_storage",
        "test_without_storage",
        "test_when_cookies_work",
    ):
        for old in ARTIFACTS.glob(f"{test}*.png"):
            old.unlink()
    with sync_playwright() as pw:
        yield pw


def preferences(profile: str, sites: Sites) -> dict[str, Any]:
    if profile == "allowed":
        return {"profile": {"block_third_party_cookies": False, "cookie_controls_mode": 0}}
    prefs: dict[str, Any] = {
        "profile": {"block_third_party_cookies": True, "cookie_controls_mode": 1}
    }
    if profile == "frame-blocked":
        # primary pattern: the cookie's site; secondary: the top-level page's
        pattern = f"{sites.tool},{sites.lms}"
        prefs["profile"]["content_settings"] = {
            "exceptions": {"cookies": {pattern: {"setting": 2}}}
        }
    return prefs


@dataclass
class Browser:
    """One test's Chromium profile, with what it must not do recorded as it happens."""

    context: BrowserContext
    page: Page
    name: str
    requests: list[str] = field(default_factory=list)  # "METHOD path" on the tool
    problems: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # "status path" of 4xx/5xx answers
    shots: int = 0

    def shot(self, step: str, page: Page | None = None) -> None:
        self.shots += 1
        target = page or self.page
        target.screenshot(path=str(ARTIFACTS / f"{self.name}-{self.shots:02d}-{step}.png"))

    def assert_clean(self, *expected_errors: str) -> None:
        assert not self.problems, "\n".join(self.problems)
        assert sorted(self.errors) == sorted(expected_errors), "unexpected error answers"


def _watch(browser: Browser, page: Page) -> None:
    def on_console(message: Any) -> None:
        text = message.text
        if text.startswith("Failed to load resource"):
            return  # the response itself is recorded, with its address (Browser.errors)
        if "Content Security Policy" in text or message.type == "error":
            browser.problems.append(f"console {message.type}: {text}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: browser.problems.append(f"JavaScript error: {error}"))


@pytest.fixture()
def open_browser(
    playwright: Playwright, sites: Sites, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[[str], Browser]]:
    opened: list[Browser] = []

    def open_profile(profile: str) -> Browser:
        user_data = tmp_path / f"profile-{len(opened)}"
        (user_data / "Default").mkdir(parents=True)
        (user_data / "Default" / "Preferences").write_text(json.dumps(preferences(profile, sites)))
        context = playwright.chromium.launch_persistent_context(
            str(user_data),
            executable_path=shutil.which("chromium"),
            headless=True,
            args=["--no-sandbox", "--disable-dev-shm-usage", "--no-first-run"],
            viewport={"width": 1280, "height": 900},
            locale="vi-VN",
            timezone_id="Asia/Ho_Chi_Minh",
            service_workers="block",
        )
        context.set_default_timeout(10_000)
        page = context.pages[0] if context.pages else context.new_page()
        name = re.sub(r"[^\w.-]+", "-", request.node.name).strip("-")
        browser = Browser(context=context, page=page, name=name)

        def on_route(route: Any) -> None:
            url = route.request.url
            if urlsplit(url).hostname in HOSTS:
                route.continue_()
            else:
                browser.problems.append(f"request to another host: {url}")
                route.abort("blockedbyclient")

        def on_request(req: Any) -> None:
            if req.url.startswith(sites.tool + "/lti/"):
                browser.requests.append(f"{req.method} {urlsplit(req.url).path}")

        def on_response(response: Any) -> None:
            if response.status >= 400:
                browser.errors.append(f"{response.status} {urlsplit(response.url).path}")

        context.route("**/*", on_route)
        context.on("request", on_request)
        context.on("response", on_response)
        context.on("page", lambda p: _watch(browser, p))
        _watch(browser, page)
        opened.append(browser)
        return browser

    try:
        yield open_profile
    finally:
        for browser in opened:
            failed = getattr(request.node, "rep_call", None)
            if failed is None or failed.failed:
                try:
                    browser.shot("failure")
                except Exception as exc:  # the page may be gone; the failure is what matters
                    print(f"could not take the failure screenshot: {exc}")
            browser.context.close()


def course_page(browser: Browser, sites: Sites, *, storage: bool) -> Frame:
    """Open the LMS's course page (the tool in its iframe); return the tool's frame."""
    query = f"locale={LOCALE}&storage={'1' if storage else '0'}"
    browser.page.goto(f"{sites.lms}/demo/frame/teacher?{query}")
    return tool_frame(browser)


def tool_frame(browser: Browser) -> Frame:
    """The frame of the iframe as it is now (a navigation to another site swaps it)."""
    handle = browser.page.locator("#contentframe").element_handle()
    assert handle is not None
    frame = handle.content_frame()
    assert frame is not None
    return frame


def frame_at(browser: Browser, path: str, timeout_s: float = 10.0) -> Frame:
    """Wait until the tool's frame shows ``path`` (or a page below it); return it."""
    shown = "nothing"
    for _ in range(int(timeout_s * 10)):
        handle = browser.page.locator("#contentframe").element_handle()
        frame = handle.content_frame() if handle else None
        if frame is not None:
            shown = urlsplit(frame.url).path
            if shown == path or (path != "/" and shown.startswith(path + "/")):
                frame.wait_for_load_state()
                return frame
        browser.page.wait_for_timeout(100)
    raise AssertionError(f"the tool's frame never showed {path} (it shows {shown})")


def greeting(scope: Page | Frame) -> str:
    return scope.get_by_role("heading", level=1).inner_text().strip()


def cookie_survives(frame: Frame) -> bool:
    """Whether a partitioned cookie set by script survives in this frame."""
    return bool(
        frame.evaluate(
            """() => {
                document.cookie = "probe=1; Path=/; Secure; SameSite=None; Partitioned";
                const kept = document.cookie.includes("probe=1");
                document.cookie = "probe=; Path=/; Max-Age=0; Secure; SameSite=None; Partitioned";
                return kept;
            }"""
        )
    )


def plain_cookie_launch(frame: Frame) -> None:
    """Go from the login page straight to the platform's authorization endpoint, as the
    login's plain 302 does: the cookie path, without the page's checks."""
    frame.locator("#lti-storage").wait_for(state="attached")
    frame.evaluate("() => { location.href = document.getElementById('lti-storage').dataset.next; }")


# -- what Chromium does ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("profile", "partitioned_kept", "lands_on"),
    [
        ("third-party-blocked", True, "/"),
        ("frame-blocked", False, "/lti/launch"),
    ],
)
def test_what_chromium_blocks(
    open_browser: Callable[[str], Browser],
    sites: Sites,
    profile: str,
    partitioned_kept: bool,
    lands_on: str,
) -> None:
    """The control: with cookies blocked in the frame, the plain cookie path (no storage,
    no checks) gets no session there - its launch is refused, as before this issue. With
    only *third-party* cookies blocked, Chromium keeps partitioned cookies (CHIPS), so the
    same path works in the frame."""
    browser = open_browser(profile)
    # Without its script the login page stays put: the test takes the plain path by hand.
    browser.context.route(
        "**/static/lti-storage.js",
        lambda route: route.fulfill(status=200, body="", content_type="text/javascript"),
    )
    course_page(browser, sites, storage=False)
    frame = frame_at(browser, "/lti/login")
    assert cookie_survives(frame) is partitioned_kept
    plain_cookie_launch(frame)
    frame = frame_at(browser, lands_on)
    browser.shot("after-plain-launch")
    if partitioned_kept:
        assert greeting(frame) == t("Hello, %(name)s", name=TEACHER)
        browser.assert_clean()
        return
    assert frame.locator("code", has_text="cookies_blocked").count() == 1
    frame.evaluate("() => { location.href = '/learn'; }")
    frame = frame_at(browser, "/learn")
    assert frame.locator("code", has_text="not_signed_in").count() == 1
    browser.assert_clean("401 /lti/launch", "401 /learn")


# -- (a) the platform's storage --------------------------------------------------------------


def test_platform_storage_carries_the_state_and_a_new_window_the_session(
    open_browser: Callable[[str], Browser], sites: Sites
) -> None:
    """No cookie of ours survives in the frame: the login stores the state with the LMS
    (lti.put_data), the launch reads it back (lti.get_data) and is confirmed in the frame;
    the session cookie cannot live there, so the frame offers a new window, where the
    one-time hand-off signs the teacher in."""
    browser = open_browser("frame-blocked")
    course_page(browser, sites, storage=True)
    frame = frame_at(browser, "/lti/continue")
    browser.shot("frame-offers-new-window")
    assert frame.get_by_role("heading", level=1).inner_text().strip() == t(
        "Your browser blocks cookies inside the LMS page"
    )
    # the check page posted the launch on only after the LMS's storage answered
    assert browser.requests[:4] == [
        "GET /lti/login",
        "POST /lti/launch",
        "POST /lti/launch/confirm",
        "GET /lti/continue",
    ]
    link = frame.get_by_role("link", name=t("Open in a new window"))
    assert link.get_attribute("target") == "_blank"
    assert link.get_attribute("rel") == "noopener"
    href = link.get_attribute("href") or ""
    with browser.page.expect_popup() as opened:
        link.click()
    popup = opened.value
    popup.wait_for_url(sites.tool + "/")
    browser.shot("new-window-start-page", popup)
    assert greeting(popup) == t("Hello, %(name)s", name=TEACHER)
    # the link is used up: elsewhere (without the session cookie) it signs no one in
    with pytest.raises(urllib.error.HTTPError) as used:
        urllib.request.urlopen(sites.tool + href, timeout=5)
    assert used.value.code == 410
    # the frame itself still has no session: the browser keeps no cookie of ours there
    frame.evaluate("() => { location.href = '/learn'; }")
    frame = frame_at(browser, "/learn")
    assert frame.locator("code", has_text="not_signed_in").count() == 1
    browser.assert_clean("401 /learn")


def test_platform_storage_answers_only_the_framed_tool(
    open_browser: Callable[[str], Browser], sites: Sites
) -> None:
    """The demonstration LMS's storage is origin-checked: a page of another origin gets no
    answer (the tool's check would time out and show its failure)."""
    browser = open_browser("third-party-blocked")
    course_page(browser, sites, storage=True)
    answered = browser.page.evaluate(
        """() => new Promise(resolve => {
            const id = "probe-" + Math.random();
            window.addEventListener("message", e => {
                if (e.data && e.data.subject === "lti.get_data.response") { resolve(true); }
            });
            window.postMessage({subject: "lti.get_data", key: "k", message_id: id}, "*");
            setTimeout(() => resolve(false), 500);
        })"""
    )
    assert answered is False
    browser.assert_clean()


# -- (b) no storage, cookies blocked: a new window from the login ----------------------------


def test_without_storage_the_login_offers_a_new_window(
    open_browser: Callable[[str], Browser], sites: Sites
) -> None:
    """No storage and no cookies in the frame: the login page says so *before* the LMS's
    authorization endpoint has used its one-time hint, and its link starts the same login
    top-level, where the cookies are first-party."""
    browser = open_browser("frame-blocked")
    frame = course_page(browser, sites, storage=False)
    link = frame.get_by_role("link", name=t("Open in a new window"))
    link.wait_for(state="visible")
    browser.shot("login-offers-new-window")
    assert urlsplit(frame.url).path == "/lti/login"
    assert browser.requests == ["GET /lti/login"], "the LMS's authorization was not asked yet"
    with browser.page.expect_popup() as opened:
        link.click()
    popup = opened.value
    popup.wait_for_url(sites.tool + "/")
    browser.shot("new-window-start-page", popup)
    assert greeting(popup) == t("Hello, %(name)s", name=TEACHER)
    assert "GET /lti/continue" not in browser.requests, "a top-level launch needs no hand-off"
    browser.assert_clean()


# -- (c) cookies that work: the usual path ----------------------------------------------------


@pytest.mark.parametrize("profile", ["allowed", "third-party-blocked"])
@pytest.mark.parametrize("storage", [False, True], ids=["cookies-only", "with-storage"])
def test_when_cookies_work_the_usual_path_is_kept(
    open_browser: Callable[[str], Browser], sites: Sites, profile: str, storage: bool
) -> None:
    """Third-party cookies allowed, or only unpartitioned ones blocked (Chromium keeps the
    tool's partitioned cookies): the launch lands on the start page in the frame, through
    the state cookie, without the storage check or a hand-off; the next page works too."""
    browser = open_browser(profile)
    course_page(browser, sites, storage=storage)
    frame = frame_at(browser, "/")
    browser.shot("start-page-in-frame")
    assert greeting(frame) == t("Hello, %(name)s", name=TEACHER)
    assert browser.requests == ["GET /lti/login", "POST /lti/launch"]
    # the session cookie works for the next page too
    frame.evaluate("() => { location.href = '/learn'; }")
    assert "not_signed_in" not in frame_at(browser, "/learn").content()
    browser.assert_clean()
