"""The three roles in a real browser (headless system Chromium), each after a real LTI 1.3
launch from the demonstration LMS: OIDC login initiation, the platform's authorization
endpoint, a signed id_token posted back by the page's own script, and the tool's checks.

Each role runs on a 360×740 phone, where no page may scroll sideways, and at desktop width;
the launch is repeated inside an iframe served from another port, as Moodle embeds the tool.
The teacher's first learning item is marked done with the keyboard alone. Every page must load
without a request leaving 127.0.0.1, without a CSP violation and without a console error
(see ``conftest.py``); screenshots of every step are kept in ``test-artifacts/e2e/``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from app.core.i18n import gettext
from app.demo.seed import DEMO_CLASS_CODE, DEMO_ITEMS
from app.demo.service import PERSONAS
from tests.e2e.conftest import DESKTOP, PHONE, Ui, open_ui

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Frame, FrameLocator, Locator, Page

pytestmark = pytest.mark.e2e

LOCALE = "vi"  # the default: an LMS that asks for no language gets Vietnamese
READING, VIDEO, QUIZ, REFLECTION = (str(DEMO_ITEMS[i]["title"]) for i in range(4))
CLASS_NAME = "Mô đun 4 — THCS — lớp demo"
LAUNCH_BUTTON = {
    "teacher": "Launch as teacher",
    "trainer": "Launch as core trainer",
    "admin": "Launch as administrator",
}
VIEWPORTS = ["phone", "desktop"]


def t(message: str, **params: object) -> str:
    """What a person reads on the page: the Vietnamese of a message id."""
    return gettext(LOCALE, message, **params)


def exact(text: str) -> re.Pattern[str]:
    return re.compile(rf"^\s*{re.escape(text)}\s*$")


# -- steps shared by the tests --------------------------------------------------------------


def launch(ui: Ui, persona: str) -> None:
    """Click the persona's button on the demonstration LMS and land on the start page."""
    page = ui.page
    page.goto(ui.url("/demo"))
    ui.step("demo-lms")
    page.get_by_role("link", name=t(LAUNCH_BUTTON[persona])).click()
    page.wait_for_url(ui.url("/"))
    heading = page.get_by_role("heading", level=1)
    assert heading.inner_text().strip() == t("Hello, %(name)s", name=PERSONAS[persona].name)
    assert page.locator("html").get_attribute("lang") == LOCALE


def class_section(page: Page) -> Locator:
    """The start page's card about the demo class (a teacher's class, a trainer's cohort)."""
    heading = page.get_by_role("heading", level=2, name=re.compile(re.escape(CLASS_NAME)))
    return page.locator("main section").filter(has=heading).first


def self_study_percent(scope: Page | Frame | FrameLocator) -> int:
    """The self-study bar of the learner's page (a native <progress>, as screen readers
    announce it)."""
    bar = scope.locator("[aria-labelledby=progress-h] progress").first
    return int(bar.get_attribute("value") or "-1")


def item(scope: Page | Frame | FrameLocator, title: str) -> Locator:
    return scope.locator("li.item").filter(has_text=title)


def undo_if_done(page: Page, row: Locator) -> None:
    """Earlier tests share the database: start each from an item that is not done yet."""
    undo = row.get_by_role("button", name=t("Mark as not done"))
    if undo.count():
        with page.expect_navigation():
            undo.click()


def tab_to(page: Page, target: Locator, limit: int = 120) -> int:
    """Press Tab until ``target`` has the keyboard focus; returns how many presses it took."""
    for presses in range(1, limit + 1):
        page.keyboard.press("Tab")
        if target.evaluate("el => el === document.activeElement"):
            return presses
    raise AssertionError(f"{limit} presses of Tab never reached {target}")


def focus_is_visible(target: Locator) -> bool:
    return bool(
        target.evaluate(
            """el => {
                const s = getComputedStyle(el);
                return (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0)
                    || s.boxShadow !== 'none';
            }"""
        )
    )


# -- teacher --------------------------------------------------------------------------------


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_teacher(ui: Ui, viewport: str) -> None:
    """Start page with the class; learning items; a reading marked done by keyboard alone;
    the self-check quiz; the reflection handed in; progress moves."""
    page = ui.page
    launch(ui, "teacher")
    my_class = class_section(page)
    assert my_class.is_visible()
    ui.step("start-page")

    my_class.get_by_role("link", name=t("My learning items and progress")).click()
    page.wait_for_url(re.compile(r"/learn/classes/\d+$"))
    class_url = page.url
    undo_if_done(page, item(page, READING))
    page.goto(class_url)  # from the top of the page, without the #item fragment
    ui.step("learning-items")

    # Keyboard only. The first Tab reaches the "skip to content" link, and shows it.
    page.keyboard.press("Tab")
    skip = page.locator("a.skip")
    assert skip.evaluate("el => el === document.activeElement"), (
        "Tab does not start at the skip link"
    )
    assert skip.get_attribute("href") == "#main"
    box = skip.bounding_box()
    assert box is not None and 0 <= box["x"] < ui.width, "the focused skip link is off-screen"
    # Then Tab on to the reading's "Mark as done" button, and Enter.
    before = self_study_percent(page)
    button = item(page, READING).get_by_role("button", name=t("Mark as done"))
    presses = tab_to(page, button)
    assert focus_is_visible(button), "the focused button shows no focus outline"
    ui.step("reading-focused-by-keyboard")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert self_study_percent(page) > before, f"progress stayed at {before}% ({presses} Tabs)"
    reading = item(page, READING)
    assert "done" in (reading.get_attribute("class") or "").split()
    assert reading.get_by_role("button", name=t("Mark as not done")).count() == 1
    ui.step("reading-done")

    # The self-check quiz, answered right.
    page.goto(class_url)
    item(page, QUIZ).get_by_role("link", name=QUIZ).click()
    page.wait_for_url(re.compile(r"/items/[^/]+$"))
    questions = DEMO_ITEMS[2]["questions"]
    assert isinstance(questions, list)
    for index, question in enumerate(questions):
        page.locator(f"#q{index}-{question['answer']}").check()
    ui.step("quiz-answered")
    with page.expect_navigation():
        page.get_by_role("button", name=t("Check my answers")).click()
    outcome = page.locator("#outcome-h")
    expected = t(
        "Your answers: %(correct)s of %(total)s right",
        correct=len(questions),
        total=len(questions),
    )
    assert outcome.inner_text().strip() == expected
    ui.step("quiz-result")

    # The reflection, handed in as text.
    page.goto(class_url)
    before = self_study_percent(page)
    already = "done" in (item(page, REFLECTION).get_attribute("class") or "").split()
    item(page, REFLECTION).get_by_role("link", name=REFLECTION).click()
    page.wait_for_url(re.compile(r"/items/[^/]+$"))
    page.locator("#f-text").fill(
        f"Sau mô đun này tôi sẽ lập kế hoạch bài dạy theo năng lực ({viewport})."
    )
    ui.step("reflection-written")
    with page.expect_navigation():
        page.get_by_role("button", name=exact(t("Hand in"))).click()
    assert "saved=1" in page.url
    assert page.locator(".notice[role=status]").inner_text().strip() == t(
        "Handed in. Your core trainer sees it now."
    )
    ui.step("reflection-handed-in")
    page.goto(class_url)
    after = self_study_percent(page)
    assert after >= before if already else after > before
    ui.step("progress")
    ui.assert_no_horizontal_scroll()


# -- core trainer ---------------------------------------------------------------------------


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_core_trainer(ui: Ui, viewport: str) -> None:
    """Start page with the cohort; the attendance sheet, a mark saved; progress and grading;
    one learner's work."""
    page = ui.page
    launch(ui, "trainer")
    cohort = class_section(page)
    assert cohort.is_visible()
    ui.step("start-page")

    cohort.get_by_role("link", name=exact(t("Take attendance"))).click()
    page.wait_for_url(re.compile(r"/attendance/sessions/\d+$"))
    sheet_url = page.url
    ui.step("attendance-sheet")

    learner = page.locator("form fieldset[id^=learner-]").first
    was_present = learner.locator("input[value=present]").is_checked()
    status = "late" if was_present else "present"
    learner.locator(f"input[value={status}]").check()
    with page.expect_navigation():
        page.get_by_role("button", name=exact(t("Save attendance"))).click()
    assert page.url.startswith(sheet_url + "?saved=")
    notice = page.locator(".notice[role=status]")
    assert notice.inner_text().strip() == t("Saved: %(num)s mark changed.", num=1)
    learner = page.locator("form fieldset[id^=learner-]").first
    assert learner.locator(f"input[value={status}]").is_checked()
    ui.step("attendance-saved")

    page.locator("header a.brand").click()  # back to the start page
    page.wait_for_url(ui.url("/"))
    class_section(page).get_by_role("link", name=exact(t("Progress and grading"))).click()
    page.wait_for_url(re.compile(r"/grading/classes/\d+$"))
    assert CLASS_NAME in page.get_by_role("heading", level=1).inner_text()
    rows = page.locator("a[href^='/grading/enrolments/']")
    assert rows.count() > 0
    ui.step("progress-and-grading")

    rows.first.click()
    page.wait_for_url(re.compile(r"/grading/enrolments/\d+$"))
    ui.step("learner-work")
    ui.assert_no_horizontal_scroll()


# -- administrator --------------------------------------------------------------------------


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_administrator(ui: Ui, viewport: str) -> None:
    """Start page; the classes; the demo class's page; the module catalogue."""
    page = ui.page
    launch(ui, "admin")
    ui.step("start-page")

    page.locator("main").get_by_role("link", name=exact(t("Classes"))).click()
    page.wait_for_url(ui.url("/admin/classes"))
    demo_class = page.get_by_role("link", name=DEMO_CLASS_CODE)
    assert demo_class.count() == 1
    ui.step("classes")

    demo_class.click()
    page.wait_for_url(re.compile(r"/admin/classes/\d+$"))
    assert CLASS_NAME in page.get_by_role("heading", level=1).inner_text()
    ui.step("class")

    page.goto(ui.url("/admin/modules"))
    assert page.get_by_role("heading", level=1).inner_text().strip() == t("Module catalogue")
    assert page.locator("main table tbody tr").count() > 0
    ui.step("modules")
    ui.assert_no_horizontal_scroll()


# -- inside Moodle's iframe -----------------------------------------------------------------


@pytest.fixture()
def framed(
    browser: Browser, live_server: str, moodle_server: str, request: pytest.FixtureRequest
) -> Iterator[tuple[Ui, str]]:
    callspec = request.node.callspec.params
    viewport = PHONE if callspec["viewport"] == "phone" else DESKTOP
    for ui in open_ui(browser, request, live_server, viewport):
        yield ui, moodle_server


def tool_frame(page: Page) -> Frame:
    handle = page.locator("#contentframe").element_handle()
    assert handle is not None
    frame = handle.content_frame()
    assert frame is not None
    return frame


@pytest.mark.parametrize(
    ("persona", "viewport"),
    [("teacher", "desktop"), ("teacher", "phone"), ("trainer", "desktop"), ("admin", "desktop")],
)
def test_in_iframe(framed: tuple[Ui, str], persona: str, viewport: str) -> None:
    """Launched from a page on another port that frames the tool, as Moodle does: the start
    page renders in the frame, links work there, and so does a form post (the teacher
    marks an item done or not done)."""
    ui, moodle = framed
    page = ui.page
    page.goto(f"{moodle}/course?persona={persona}")
    tool = page.frame_locator("#contentframe")
    heading = tool.get_by_role("heading", level=1)
    expected = t("Hello, %(name)s", name=PERSONAS[persona].name)
    heading.filter(has_text=expected).wait_for()
    frame = tool_frame(page)
    assert frame.url == ui.url("/")
    assert page.url.startswith(moodle)  # the launch stayed inside the frame
    ui.step("start-page-in-frame", frame=frame)

    if persona == "teacher":
        tool.get_by_role("link", name=t("My learning items and progress")).first.click()
        tool.locator("[aria-labelledby=progress-h]").wait_for()
        frame = tool_frame(page)
        assert re.search(r"/learn/classes/\d+$", frame.url)
        row = item(tool, VIDEO)
        was_done = "done" in (row.get_attribute("class") or "").split()
        label = t("Mark as not done") if was_done else t("Mark as done")
        before = self_study_percent(tool)
        ui.step("learning-items-in-frame", frame=frame)
        with frame.expect_navigation():
            row.get_by_role("button", name=label).click()
        row = item(tool, VIDEO)
        assert ("done" in (row.get_attribute("class") or "").split()) is not was_done
        after = self_study_percent(tool)
        assert after < before if was_done else after > before
        ui.step("item-toggled-in-frame", frame=tool_frame(page))
    elif persona == "trainer":
        tool.get_by_role("link", name=t("Progress and grading")).first.click()
        tool.get_by_role("heading", level=1).filter(has_text=CLASS_NAME).wait_for()
        ui.step("progress-in-frame", frame=tool_frame(page))
    else:
        tool.locator("main").get_by_role("link", name=exact(t("Classes"))).click()
        tool.get_by_role("link", name=DEMO_CLASS_CODE).wait_for()
        ui.step("classes-in-frame", frame=tool_frame(page))
    ui.assert_no_horizontal_scroll()
