"""Files people send and files the tool sends back: shared rules for every upload and download.

* :func:`cap_request_body` — refuse a body over a limit before it is parsed: at once by its
  ``Content-Length``, and while it streams in when it has none (chunked). Starlette spools a
  multipart file to disk whatever its size, so every route that takes a file calls this first.
* :func:`safe_file_name` — the name a person gave a file, fit to be shown and stored: the last
  path part, NFC, no control or invisible format characters (a right-to-left override turns
  ``fdp.exe`` into ``exe.pdf`` on screen), no quotes, no leading dots, at most 200 characters
  with the extension kept.
* :func:`content_disposition` — ``Content-Disposition`` (RFC 6266) with an ASCII fallback
  ``filename="…"`` and the exact name as ``filename*=utf-8''…`` (RFC 5987/8187), whatever the
  name holds.
* :func:`content_problem` — whether the first bytes of a file are what its extension says
  (``%PDF-``, ``PK\\x03\\x04``, PNG, JPEG, OLE2…); a program or a web page renamed as a
  document is named as such.

Plain functions and a small ASGI hook; no database.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import quote

from fastapi import Request

from app.core.errors import PayloadTooLarge

#: Longest file name kept (characters), extension included.
MAX_NAME_CHARS = 200
#: Characters never kept in a name: path separators, quotes and what Windows forbids.
_UNSAFE = set("/\\\"'<>:|?*`")
MB = 1024 * 1024


# -- bodies ---------------------------------------------------------------------------------


def too_large(limit_mb: float) -> PayloadTooLarge:
    shown = int(limit_mb) if float(limit_mb).is_integer() else round(limit_mb, 1)
    return PayloadTooLarge(
        "The file is larger than %(max)s MB.", params={"max": shown, "field": "file"}
    )


def cap_request_body(request: Request, limit: int, *, shown_mb: float | None = None) -> None:
    """Refuse a body over ``limit`` bytes: by its ``Content-Length`` before a byte is read,
    and while it streams in (no or a false length), before anything is parsed or stored.

    ``shown_mb`` is the limit the person is told (the file's, without the form's overhead).
    """
    shown = shown_mb if shown_mb is not None else limit / MB
    length = request.headers.get("content-length")
    if length is not None and length.strip().isdigit() and int(length) > limit:
        raise too_large(shown)
    receive: Callable[[], Awaitable[MutableMapping[str, Any]]] = request._receive
    seen = 0

    async def counted() -> MutableMapping[str, Any]:
        nonlocal seen
        message = await receive()
        if message.get("type") == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise too_large(shown)
        return message

    request._receive = counted


# -- names ----------------------------------------------------------------------------------


def safe_file_name(name: str | None, *, default: str = "") -> str:
    """The name to show and to offer on download (see the module's docstring)."""
    text = unicodedata.normalize("NFC", str(name or "")).replace("\\", "/")
    base = text.rsplit("/", 1)[-1]
    kept = []
    for ch in base:
        if ch in _UNSAFE:
            continue
        category = unicodedata.category(ch)
        if category == "Cc" or category in ("Zl", "Zp") or (category == "Zs" and ch != " "):
            kept.append(" ")  # tabs, line breaks, odd spaces: one plain space
            continue
        if category.startswith("C"):  # format (bidi overrides, zero-width), unassigned
            continue
        kept.append(ch)
    clean = " ".join("".join(kept).split()).lstrip(". ").rstrip(". ")
    if len(clean) > MAX_NAME_CHARS:
        stem, dot, ext = clean.rpartition(".")
        if dot and 0 < len(ext) <= 10:
            clean = stem[: MAX_NAME_CHARS - len(ext) - 1].rstrip() + "." + ext
        else:
            clean = clean[:MAX_NAME_CHARS].rstrip()
    return clean or default


def ascii_file_name(name: str, *, default: str = "download") -> str:
    """An ASCII stand-in for ``name`` (Vietnamese without its marks: "Kế hoạch" → "Ke hoach"),
    for clients that do not read ``filename*``."""
    plain = unicodedata.normalize("NFKD", name.replace("đ", "d").replace("Đ", "D"))
    out = []
    for ch in plain:
        if unicodedata.combining(ch):
            continue
        if 0x20 <= ord(ch) < 0x7F and ch not in _UNSAFE and ch not in "%;,":
            out.append(ch)
        elif not ch.isascii():
            out.append("_")
    text = " ".join("".join(out).split()).strip(". ")
    return text or default


def content_disposition(name: str, disposition: str = "attachment") -> str:
    """``attachment; filename="ASCII"; filename*=utf-8''UTF-8`` (RFC 6266, 8187): safe for any
    name — it is cleaned again here, so a name stored before the rules tightened is safe too."""
    clean = safe_file_name(name, default="download")
    fallback = ascii_file_name(clean)
    header = f'{disposition}; filename="{fallback}"'
    if fallback != clean:
        header += f"; filename*=utf-8''{quote(clean, safe='')}"
    return header


# -- content --------------------------------------------------------------------------------

PDF = "pdf"
ZIP = "zip"
OLE2 = "ole2"
PNG = "png"
JPEG = "jpeg"
TEXT = "text"

#: The family of content each allowed extension must have.
FAMILIES: dict[str, str] = {
    ".pdf": PDF,
    ".docx": ZIP,
    ".xlsx": ZIP,
    ".pptx": ZIP,
    ".odt": ZIP,
    ".ods": ZIP,
    ".odp": ZIP,
    ".zip": ZIP,
    ".doc": OLE2,
    ".xls": OLE2,
    ".ppt": OLE2,
    ".png": PNG,
    ".jpg": JPEG,
    ".jpeg": JPEG,
    ".txt": TEXT,
}
#: Bytes the first part of a file needs for the checks.
HEAD_BYTES = 4096

_EXECUTABLE = (b"MZ", b"\x7fELF", b"#!", b"\xca\xfe\xba\xbe", b"\xcf\xfa\xed\xfe", b"\xfe\xed\xfa")
_MARKUP = (b"<!doctype", b"<html", b"<script", b"<svg", b"<?xml", b"<head", b"<body", b"<iframe")


def _starts(head: bytes, prefixes: tuple[bytes, ...]) -> bool:
    return any(head.startswith(p) for p in prefixes)


def looks_executable(head: bytes) -> bool:
    return _starts(head, _EXECUTABLE)


def looks_like_markup(head: bytes) -> bool:
    """A web page or SVG, perhaps after a byte-order mark and white space."""
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip().lower()
    return _starts(text, _MARKUP)


def _matches(family: str, head: bytes) -> bool:
    if family == PDF:
        return b"%PDF-" in head[:1024]  # readers accept the header within the first 1 KB
    if family == ZIP:
        return _starts(head, (b"PK\x03\x04", b"PK\x05\x06"))
    if family == OLE2:
        return head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1")
    if family == PNG:
        return head.startswith(b"\x89PNG\r\n\x1a\n")
    if family == JPEG:
        return head.startswith(b"\xff\xd8\xff")
    if family == TEXT:
        return b"\x00" not in head and not looks_executable(head) and not looks_like_markup(head)
    return False


def content_problem(extension: str, head: bytes) -> str | None:
    """``None`` when ``head`` (the first bytes of a file) fits ``extension``; else why not:
    ``"program"``, ``"web page"`` or ``"mismatch"``."""
    family = FAMILIES.get(extension.lower())
    if family is None:
        return "mismatch"
    if family != TEXT and _matches(family, head):
        return None
    if looks_executable(head):
        return "program"
    if looks_like_markup(head):
        return "web page"
    return None if _matches(family, head) else "mismatch"
