"""End-to-end fixtures: the real app with its demonstration LMS on a free port of 127.0.0.1,
a stand-in for Moodle's course page that frames the tool from another port, and the
system's headless Chromium (Debian's ``chromium``) driven by Playwright.

Nothing here downloads a browser. Without ``chromium`` on PATH or without the ``playwright``
package every test of this folder is skipped with the reason, never failed.

Every browser context only reaches 127.0.0.1: any other request is aborted and fails the
test ("loads without any external request"), and so do Content-Security-Policy violations
and uncaught JavaScript errors. Each step leaves a full-page screenshot in
``test-artifacts/e2e/<test>-<step>.png`` (and ``<test>-failure.png`` when a test fails).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Frame, Page, Route

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("BLEND727_E2E_ARTIFACTS", ROOT / "test-artifacts" / "e2e"))
LOCAL_HOST = "127.0.0.1"
PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 900}
VIEWPORTS = {"phone": PHONE, "desktop": DESKTOP}


def _why_no_browser() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as exc:
        return f"the playwright package is not installed ({exc}); pip install -e '.[test]'"
    if shutil.which("chromium") is None:
        return (
            "no `chromium` on PATH: end-to-end tests need Debian's chromium package "
            "(apt-get install chromium; .ci/run installs it when it runs as root)"
        )
    return None


SKIP_REASON = _why_no_browser()


@pytest.fixture(scope="package", autouse=True)
def _browser_available() -> None:
    if SKIP_REASON:
        pytest.skip(SKIP_REASON)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Iterator[None]:
    """Keep each phase's report on the test, so that a fixture can tell that it failed."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    setattr(item, f"rep_{report.when}", report)


# -- the tool, served for real --------------------------------------------------------------


def _listening_socket() -> socket.socket:
    """Bound to a free port and handed to the server: no race for the port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((LOCAL_HOST, 0))
    return sock


def _wait_until_healthy(url: str, thread: threading.Thread, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if not thread.is_alive():
            raise RuntimeError("the e2e server stopped while starting (see the log above)")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except Exception as exc:
            last = exc
        time.sleep(0.05)
    raise RuntimeError(f"the e2e server did not answer {url}/healthz in {timeout} s: {last}")


@pytest.fixture(scope="package")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``blend727 demo`` in a thread: a migrated SQLite file, the demonstration platform and
    its seeded module-4 class. Yields the base URL (http://127.0.0.1:<port>)."""
    import uvicorn

    from app.config import Settings
    from app.core.migrate import upgrade
    from app.main import create_app

    tmp = tmp_path_factory.mktemp("e2e")
    sock = _listening_socket()
    base = f"http://{LOCAL_HOST}:{sock.getsockname()[1]}"
    settings = Settings(
        demo=True,
        base_url=base,
        database_url=f"sqlite:///{tmp / 'e2e.db'}",
        secret_key="e2e-secret-" + "k" * 32,
        inprocess_worker=False,
        upload_dir=tmp / "uploads",
    )
    upgrade(settings.database_url)  # as `blend727 demo` does; the app never creates tables
    # log_config=None: leave the process's logging set-up (pytest's) alone.
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), log_config=None, log_level="warning", access_log=False)
    )
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="e2e-server", daemon=True
    )
    thread.start()
    try:
        _wait_until_healthy(base, thread)
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def _moodle_page(tool: str, persona: str) -> bytes:
    """A stand-in for Moodle's activity page: a header, and the tool in an iframe as
    ``mod/lti/view.php`` embeds it (100% wide, 8 px page margin, a fixed height)."""
    src = escape(f"{tool}/demo/start/{persona}?locale=vi")
    return f"""<!doctype html>
<html lang="vi"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Moodle (stand-in) · BDTX-M4</title>
<style>
  body {{ margin: 8px; font-family: sans-serif; background: #f5f5f5; }}
  header {{ background: #0f47ad; color: #fff; padding: 8px 12px; margin-bottom: 8px; }}
  iframe {{ display: block; width: 100%; height: 640px; border: 1px solid #ccc;
            box-sizing: border-box; background: #fff; }}
</style></head>
<body><header>Moodle · BDTX-M4 · blend727</header>
<iframe id="contentframe" title="blend727" src="{src}"
  allow="microphone *; camera *; geolocation *; fullscreen *"></iframe>
</body></html>""".encode()


@pytest.fixture(scope="package")
def moodle_server(live_server: str) -> Iterator[str]:
    """A second HTTP server on 127.0.0.1 (another port, so another origin but the same
    site, as the demo's plain-HTTP cookies need) serving ``/course?persona=…``."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            persona = parse_qs(parts.query).get("persona", ["teacher"])[0]
            if parts.path != "/course" or not re.fullmatch(r"[a-z-]+", persona):
                self.send_error(404)
                return
            body = _moodle_page(live_server, persona)
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer((LOCAL_HOST, 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, name="e2e-moodle", daemon=True)
    thread.start()
    try:
        yield f"http://{LOCAL_HOST}:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


# -- the browser ----------------------------------------------------------------------------


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """One headless system Chromium for every test (each test gets its own context)."""
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("*.png"):
        old.unlink()
    with sync_playwright() as pw:
        executable = shutil.which("chromium")
        try:
            chromium = pw.chromium.launch(
                executable_path=executable,
                headless=True,
                args=["--no-sandbox", "--disable-dev-shm-usage", "--no-first-run"],
            )
        except Exception as exc:  # a browser that cannot start is missing, not a failing app
            lines = str(exc).strip().splitlines() or [type(exc).__name__]
            said = [ln.split("[err]", 1)[1].strip() for ln in lines if "[err]" in ln][:2]
            why = "; ".join(dict.fromkeys(said)) or lines[0]
            pytest.skip(f"{executable} did not start in headless mode: {why}")
        try:
            yield chromium
        finally:
            chromium.close()


def _slug(text: str) -> str:
    return re.sub(r"[^\w.-]+", "-", text).strip("-")


@dataclass
class Ui:
    """One test's browser tab, with everything it must not do recorded as it happens."""

    page: Page
    name: str
    base: str
    width: int
    external: list[str] = field(default_factory=list)
    csp: list[str] = field(default_factory=list)
    js_errors: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    overflow: list[str] = field(default_factory=list)
    steps: int = 0

    def url(self, path: str) -> str:
        return self.base + path

    def screenshot(self, step: str) -> Path:
        path = ARTIFACTS / f"{self.name}-{step}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def step(self, step: str, frame: Frame | None = None) -> Path:
        """Screenshot the page as it is now, note any horizontal scroll, and fail at once on
        an external request, a CSP violation or a JavaScript error."""
        self.steps += 1
        path = self.screenshot(f"{self.steps:02d}-{step}")
        target = frame or self.page.main_frame
        widths = target.evaluate(
            "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
        )
        if widths[0] > widths[1] + 1:
            self.overflow.append(
                f"{target.url}: page is {widths[0]} px wide in a {widths[1]} px viewport "
                f"({path.name})"
            )
        self.assert_clean()
        return path

    def assert_clean(self) -> None:
        assert not self.external, f"requests to other hosts than {LOCAL_HOST}: {self.external}"
        assert not self.csp, f"Content-Security-Policy violations: {self.csp}"
        assert not self.js_errors, f"JavaScript errors: {self.js_errors}"
        assert not self.console_errors, f"errors in the browser console: {self.console_errors}"

    def assert_no_horizontal_scroll(self) -> None:
        assert not self.overflow, "pages scroll sideways:\n" + "\n".join(self.overflow)


def _watch(ui: Ui) -> None:
    page = ui.page

    def on_route(route: Route) -> None:
        url = route.request.url
        if urlsplit(url).hostname == LOCAL_HOST:
            route.continue_()
        else:
            ui.external.append(url)
            route.abort("blockedbyclient")

    def on_console(message: Any) -> None:
        text = message.text
        if "Content Security Policy" in text:
            ui.csp.append(text)
        elif message.type == "error" and "ERR_BLOCKED_BY_CLIENT" not in text:
            ui.console_errors.append(text)

    page.context.route("**/*", on_route)
    page.on("console", on_console)
    page.on("pageerror", lambda error: ui.js_errors.append(str(error)))


def open_ui(
    browser: Browser, request: pytest.FixtureRequest, base: str, viewport: dict[str, int]
) -> Iterator[Ui]:
    context = browser.new_context(
        viewport=viewport,
        screen=viewport,
        device_scale_factor=1,
        is_mobile=viewport["width"] <= PHONE["width"],
        has_touch=viewport["width"] <= PHONE["width"],
        locale="vi-VN",
        timezone_id="Asia/Ho_Chi_Minh",
        service_workers="block",
    )
    context.set_default_timeout(10_000)
    page = context.new_page()
    ui = Ui(page=page, name=_slug(request.node.name), base=base, width=viewport["width"])
    _watch(ui)
    try:
        yield ui
    finally:
        report = getattr(request.node, "rep_call", None)
        failed = report is None or report.failed
        if failed:
            try:
                ui.screenshot("failure")
            except Exception as exc:  # the page may be gone; the failure is what matters
                print(f"could not take the failure screenshot: {exc}")
        context.close()
    if not failed:
        # Whatever happened after the test's last step still fails it (as a teardown error).
        ui.assert_clean()


@pytest.fixture()
def ui(browser: Browser, live_server: str, request: pytest.FixtureRequest) -> Iterator[Ui]:
    """A fresh browser context (no cookies) at the width the test is parametrized with
    (``viewport`` = "phone" 360×740 or "desktop" 1280×900; desktop by default)."""
    yield from open_ui(browser, request, live_server, VIEWPORTS[_viewport_of(request)])


def _viewport_of(request: pytest.FixtureRequest) -> str:
    callspec = getattr(request.node, "callspec", None)
    name = callspec.params.get("viewport", "desktop") if callspec else "desktop"
    return str(name)
