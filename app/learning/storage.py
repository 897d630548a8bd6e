"""Files learners hand in: stored outside the web root, under a random name, never served
by path.

A file's first bytes must be what its extension says (``%PDF-`` for a PDF, a ZIP for
DOCX/XLSX/PPTX, …): a program or a web page renamed as a document is refused before anything
is written. A file is written to a temporary name first and moved into place only when it is
complete and within the limits, so a refused or broken upload leaves nothing behind.
Downloads go through an endpoint that checks who may read it, and are sent as attachments
(``Content-Disposition`` from ``app.core.files``) with ``X-Content-Type-Options: nosniff``
(a hand-in is never rendered by the tool's origin).
"""

from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from app.core.errors import PayloadTooLarge, ValidationFailed
from app.core.files import HEAD_BYTES, content_problem, safe_file_name

#: What a lesson plan, a slide deck, a scan or a spreadsheet comes as.
ALLOWED_EXTENSIONS: dict[str, str] = {
    ".pdf": "application/pdf",
    ".doc": "application/msword",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".odt": "application/vnd.oasis.opendocument.text",
    ".ppt": "application/vnd.ms-powerpoint",
    ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ".odp": "application/vnd.oasis.opendocument.presentation",
    ".xls": "application/vnd.ms-excel",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".ods": "application/vnd.oasis.opendocument.spreadsheet",
    ".txt": "text/plain",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".zip": "application/zip",
}
CHUNK = 64 * 1024


@dataclass(frozen=True)
class StoredFile:
    key: str
    name: str
    size: int
    content_type: str
    sha256: str


def clean_file_name(name: str) -> str:
    """The name to show and to offer on download (``app.core.files.safe_file_name``): the last
    path part, NFC, no control or format characters, quotes or path separators, at most 200
    characters (keeping the extension)."""
    return safe_file_name(name)


def check_file_name(name: str) -> tuple[str, str]:
    """``(clean name, content type)``, or the error the learner sees."""
    clean = clean_file_name(name)
    ext = os.path.splitext(clean)[1].lower()
    if not clean or ext not in ALLOWED_EXTENSIONS:
        raise ValidationFailed(
            "Files of this type are not accepted; send one of %(types)s",
            params={"field": "file", "types": ", ".join(sorted(ALLOWED_EXTENSIONS))},
        )
    return clean, ALLOWED_EXTENSIONS[ext]


def check_content(name: str, head: bytes) -> None:
    """Refuse a file whose first bytes are not what its extension says: a program or a web
    page renamed as a document, or a document of another type."""
    ext = os.path.splitext(name)[1].lower()
    problem = content_problem(ext, head)
    if problem == "program":
        raise ValidationFailed(
            "This file is a program renamed as a document; it is not accepted.",
            params={"field": "file"},
            code="file_content_refused",
        )
    if problem == "web page":
        raise ValidationFailed(
            "This file is a web page renamed as a document; it is not accepted. Send the "
            "document itself (for example saved as PDF).",
            params={"field": "file"},
            code="file_content_refused",
        )
    if problem is not None:
        raise ValidationFailed(
            "The content of this file is not a %(type)s file. Send the document itself, "
            "saved in its own format.",
            params={"field": "file", "type": ext.lstrip(".").upper() or "?"},
            code="file_content_refused",
        )


class FileStore:
    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes

    def path(self, key: str) -> Path:
        if not key or not key.replace("-", "").replace("_", "").isalnum():
            raise ValueError("bad file key")
        return self.root / key[:2] / key

    def save(self, name: str, source: BinaryIO) -> StoredFile:
        """Copy ``source`` in, within the size limit and only when its first bytes are what
        its extension says; raises before anything is kept."""
        clean, content_type = check_file_name(name)
        head = source.read(HEAD_BYTES)
        if not head:
            raise ValidationFailed("The file is empty", params={"field": "file"})
        check_content(clean, head)
        key = secrets.token_urlsafe(24)
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".part")
        digest = hashlib.sha256()
        size = 0
        try:
            with open(partial, "wb") as out:
                chunk = head
                while chunk:
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise PayloadTooLarge(
                            "The file is larger than %(max)s MB.",
                            params={"max": self.max_bytes // (1024 * 1024), "field": "file"},
                        )
                    digest.update(chunk)
                    out.write(chunk)
                    chunk = source.read(CHUNK)
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
        return StoredFile(key, clean, size, content_type, digest.hexdigest())

    def discard(self, key: str) -> None:
        """Remove a file whose database row was not committed."""
        self.path(key).unlink(missing_ok=True)
