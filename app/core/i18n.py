"""Translations: Vietnamese first, English second.

Message ids are English; ``app/locale/vi/LC_MESSAGES/messages.po`` carries the Vietnamese.
Catalogues stay as text (``.po``) in the repository and are compiled in memory when the
process starts, so there is no build step and no binary file to keep in sync.
"""

from __future__ import annotations

import io
from functools import cache
from gettext import NullTranslations
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"
SUPPORTED_LOCALES = ("vi", "en")
DEFAULT_LOCALE = "vi"


@cache
def get_translations(locale: str) -> NullTranslations:
    """The catalogue for ``locale``; English is the message ids themselves."""
    po_path = LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po"
    if locale == "en" or not po_path.exists():
        return NullTranslations()
    with po_path.open("rb") as fh:
        catalog = read_po(fh, locale=locale)
    buf = io.BytesIO()
    write_mo(buf, catalog, use_fuzzy=False)
    buf.seek(0)
    return Translations(buf)


def negotiate_locale(requested: str | None, default: str = DEFAULT_LOCALE) -> str:
    """Map an LTI ``launch_presentation.locale`` (``en``, ``en-US``, ``vi_VN``…) to ours.

    Vietnamese is the default: only a launch that asks for English gets English.
    """
    if not requested:
        return default if default in SUPPORTED_LOCALES else DEFAULT_LOCALE
    primary = requested.replace("_", "-").split("-")[0].strip().lower()
    if primary in SUPPORTED_LOCALES:
        return primary
    return default if default in SUPPORTED_LOCALES else DEFAULT_LOCALE


def gettext(locale: str, message: str, **params: object) -> str:
    text = get_translations(locale).gettext(message)
    return text % params if params else text
