"""Jinja2 templates with the gettext extension; every page is rendered through ``render``."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from app.core.i18n import DEFAULT_LOCALE, get_translations

TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "templates"

_env = Environment(
    loader=FileSystemLoader(str(TEMPLATE_DIR)),
    autoescape=select_autoescape(["html", "xml"]),
    extensions=["jinja2.ext.i18n"],
    auto_reload=False,
    trim_blocks=True,
    lstrip_blocks=True,
)
# Weekday names as message ids (the catalogue gives "Thứ Hai", …); index = date.weekday().
WEEKDAYS: dict[int, str] = {
    0: "Monday",
    1: "Tuesday",
    2: "Wednesday",
    3: "Thursday",
    4: "Friday",
    5: "Saturday",
    6: "Sunday",
}


def vndate(value: date | datetime | None) -> str:
    """dd/mm/yyyy, as Vietnamese documents write dates."""
    if value is None:
        return ""
    return value.strftime("%d/%m/%Y")


_env.filters["vndate"] = vndate
_env.globals["weekday_id"] = lambda d: WEEKDAYS[d.weekday()]

_env.install_gettext_callables(  # type: ignore[attr-defined]
    gettext=lambda s, **kw: s % kw if kw else s,
    ngettext=lambda s, p, n, **kw: (s if n == 1 else p) % ({"num": n} | kw),
    newstyle=True,
)


def score_text(value: object, locale: str) -> str:
    """A score as people write it: 7,25 in Vietnamese, 7.25 in English; "—" for none."""
    if value is None:
        return "—"
    text = str(value)
    return text.replace(".", ",") if locale == "vi" else text


def request_locale(request: Request | None) -> str:
    if request is None:
        return DEFAULT_LOCALE
    return getattr(request.state, "locale", None) or DEFAULT_LOCALE


def render_string(name: str, context: dict[str, Any], locale: str) -> str:
    translations = get_translations(locale)

    def _gettext(message: str, **kw: Any) -> str:
        text = translations.gettext(message)
        return text % kw if kw else text

    def _ngettext(singular: str, plural: str, n: int, **kw: Any) -> str:
        text = translations.ngettext(singular, plural, n)
        return text % ({"num": n} | kw)

    template = _env.get_template(name)
    return template.render(
        {
            "locale": locale,
            "_": _gettext,
            "gettext": _gettext,
            "ngettext": _ngettext,
            "score": lambda value: score_text(value, locale),
        }
        | context
    )


def render(
    request: Request | None,
    name: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    locale = request_locale(request)
    ctx = {"request": request} | (context or {})
    return HTMLResponse(render_string(name, ctx, locale), status_code=status_code, headers=headers)
