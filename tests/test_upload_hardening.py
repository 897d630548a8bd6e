"""Bad input in files: hand-ins and the CSV/XLSX imports.

* bodies are capped before they are read whole (``Content-Length`` at once, a body without
  one while it streams);
* a hand-in's first bytes must be what its extension says: a program or a web page renamed
  as a document is refused, with a clear message, and nothing is kept;
* spreadsheets are read safely: the ZIP's declared sizes are checked before openpyxl opens it
  (no zip bomb), rows and columns are capped, a part that inflates past its declared size is
  a damaged file;
* CSV must be UTF-8 (with or without BOM); anything else is refused, never guessed;
* file names are cleaned wherever they are shown or sent back (``Content-Disposition`` with
  an ASCII ``filename`` and an RFC 5987 ``filename*``).
"""

from __future__ import annotations

import asyncio
import io
import struct
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openpyxl import Workbook
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.requests import Request

from app.classes.models import HolidayOverride
from app.core.errors import PayloadTooLarge
from app.core.files import (
    cap_request_body,
    content_disposition,
    content_problem,
    safe_file_name,
)
from app.imports import tables
from app.imports.tables import FileProblem, read_table
from app.learning.models import Submission
from tests import test_learning as learning
from tests.lti_platform import INST_ADMIN, SYS_ADMIN, TestPlatform
from tests.test_learning import MB, PDF, World, hand_in, item, stored_files, vn

# The learning world of tests/test_learning.py (a class with an assignment taking files).
settings = learning.settings
fake_clock = learning.fake_clock
world = learning.world

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 32
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 32
EXE = (
    b"MZ\x90\x00\x03\x00\x00\x00\x04\x00" + b"\x00" * 64 + b"This program cannot be run in DOS mode"
)
ELF = b"\x7fELF\x02\x01\x01" + b"\x00" * 64
HTML = b"\n  <!DOCTYPE html><html><script>alert(document.cookie)</script></html>"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>'


def docx() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("word/document.xml", "<w:document/>")
    return out.getvalue()


def count(db: Session, model: type) -> int:
    db.expire_all()
    return int(db.scalar(select(func.count()).select_from(model)) or 0)


# == what the first bytes say ==================================================================


class TestHandInContentMatchesItsExtension:
    @pytest.mark.parametrize(
        "name,data,says",
        [
            ("ke-hoach.pdf", EXE, "chương trình"),
            ("ke-hoach.docx", ELF, "chương trình"),
            ("ke-hoach.docx", HTML, "trang web"),
            ("ke-hoach.pdf", HTML, "trang web"),
            ("ghi-chu.txt", SVG, "trang web"),
            ("anh.png", JPEG, "không phải là tệp PNG"),
            ("ke-hoach.pdf", docx(), "không phải là tệp PDF"),
            ("ke-hoach.xlsx", PDF, "không phải là tệp XLSX"),
            ("ke-hoach.doc", PDF, "không phải là tệp DOC"),
            ("ghi-chu.txt", b"abc\x00def", "không phải là tệp TXT"),
        ],
    )
    def test_a_disguised_file_is_refused_and_nothing_is_kept(
        self, world: World, db: Session, name: str, data: bytes, says: str
    ) -> None:
        w = world
        w.clock.set(vn(6))
        r = hand_in(w, w.learners[0], "plan-1", file=(name, data, "application/pdf"))
        assert r.status_code == 422
        assert says in r.text
        assert stored_files(w) == []
        assert count(db, Submission) == 0

    @pytest.mark.parametrize(
        "name,data",
        [
            ("ke-hoach.pdf", PDF),
            ("scan.pdf", b"\r\n\x00junk from a scanner\n" + PDF),  # header within the 1st KB
            ("ke-hoach.docx", docx()),
            ("anh.png", PNG),
            ("anh.JPG", JPEG),
            ("ghi-chu.txt", "Kế hoạch bài dạy — bản nháp\n".encode()),
            ("ke-hoach.doc", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 64),
        ],
    )
    def test_the_real_thing_is_accepted(self, world: World, name: str, data: bytes) -> None:
        w = world
        w.clock.set(vn(6))
        r = hand_in(w, w.learners[0], "plan-1", file=(name, data, "application/octet-stream"))
        assert r.status_code == 303, r.text[-300:]
        assert [p.read_bytes() for p in stored_files(w)] == [data]

    def test_stored_under_a_random_name_outside_the_web_root_and_served_as_attachment(
        self, world: World
    ) -> None:
        w = world
        hv1 = w.learners[0]
        w.clock.set(vn(6))
        name = "..\\..\\static\\báo cáo\u202eFDP.exe.pdf"
        assert hand_in(w, hv1, "plan-1", file=(name, PDF, "application/pdf")).status_code == 303
        sub = item(w, hv1, "plan-1")["submission"]
        assert sub["file_name"] == "báo cáoFDP.exe.pdf"  # no path, no right-to-left override
        [stored] = stored_files(w)
        assert stored.is_relative_to(w.upload_dir)
        assert "báo" not in str(stored) and "static" not in str(stored.relative_to(w.upload_dir))
        r = hv1.device.get(f"/learn/files/{sub['id']}")
        assert r.status_code == 200 and r.content == PDF
        header = r.headers["content-disposition"]
        assert header == (
            'attachment; filename="bao caoFDP.exe.pdf"; '
            "filename*=utf-8''b%C3%A1o%20c%C3%A1oFDP.exe.pdf"
        )
        assert r.headers["x-content-type-options"] == "nosniff"
        assert "sandbox" in r.headers["content-security-policy"]

    def test_a_name_stored_before_the_rules_is_still_sent_safely(
        self, world: World, db: Session
    ) -> None:
        w = world
        hv1 = w.learners[0]
        w.clock.set(vn(6))
        hand_in(w, hv1, "plan-1", file=("a.pdf", PDF, "application/pdf"))
        sub_id = item(w, hv1, "plan-1")["submission"]["id"]
        row = db.get(Submission, sub_id)
        assert row is not None
        row.file_name = 'x"; filename=evil.html\r\nSet-Cookie: a=b.pdf'
        db.commit()
        header = hv1.device.get(f"/learn/files/{sub_id}").headers["content-disposition"]
        assert "\r" not in header and "\n" not in header
        assert header.count('"') == 2 and "filename=evil.html" not in header.split('"')[0]
        assert header.startswith('attachment; filename="x filename=evil.html Set-Cookie a=b.pdf"')


class TestContentProblem:
    @pytest.mark.parametrize(
        "ext,head,problem",
        [
            (".pdf", b"%PDF-1.7", None),
            (".pdf", EXE, "program"),
            (".pdf", b"#!/bin/sh\nrm -rf /", "program"),
            (".docx", b"PK\x03\x04", None),
            (".zip", b"PK\x05\x06" + b"\x00" * 18, None),
            (".docx", b"\xef\xbb\xbf<html>", "web page"),
            (".jpeg", JPEG, None),
            (".png", PNG, None),
            (".png", b"GIF89a", "mismatch"),
            (".txt", b"plain words", None),
            (".txt", b"<?xml version='1.0'?><svg/>", "web page"),
            (".exe", EXE, "mismatch"),
        ],
    )
    def test_first_bytes_against_the_extension(
        self, ext: str, head: bytes, problem: str | None
    ) -> None:
        assert content_problem(ext, head) == problem


# == bodies are capped before they are read ====================================================


def _request(headers: dict[str, str], chunks: list[bytes]) -> tuple[Request, list[int]]:
    """A request whose body arrives in ``chunks``; the list counts what was read."""
    read: list[int] = []

    async def receive() -> dict[str, Any]:
        index = len(read)
        read.append(index)
        body = chunks[index] if index < len(chunks) else b""
        return {"type": "http.request", "body": body, "more_body": index + 1 < len(chunks)}

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }
    return Request(scope, receive), read


class TestBodiesAreCappedBeforeTheyAreRead:
    def test_a_declared_length_over_the_cap_is_refused_before_a_byte_is_read(self) -> None:
        request, read = _request({"content-length": str(6 * MB)}, [b"x" * 10])
        with pytest.raises(PayloadTooLarge) as refused:
            cap_request_body(request, 5 * MB)
        assert refused.value.params["max"] == 5
        assert read == []

    def test_a_body_without_a_length_is_cut_off_where_it_passes_the_cap(self) -> None:
        chunks = [b"x" * 400_000] * 10  # 4 MB in ten chunks, cap 1 MB
        request, read = _request({}, chunks)
        cap_request_body(request, MB)

        async def drain() -> None:
            async for _ in request.stream():
                pass

        with pytest.raises(PayloadTooLarge):
            asyncio.run(drain())
        assert len(read) == 3  # the third chunk passed the cap; the rest was never read

    def test_a_false_small_length_does_not_help(self) -> None:
        request, read = _request({"content-length": "10"}, [b"x" * 700_000] * 3)
        cap_request_body(request, MB)

        async def drain() -> None:
            async for _ in request.stream():
                pass

        with pytest.raises(PayloadTooLarge):
            asyncio.run(drain())
        assert len(read) == 2

    def test_an_import_over_the_cap_is_413_and_writes_nothing(
        self, client: TestClient, platform: TestPlatform, db: Session
    ) -> None:
        from tests.helpers import sign_in

        me = sign_in(client, platform, [INST_ADMIN, SYS_ADMIN], "admin-1", "Lê Quản Trị")
        big = b"Ng\xc3\xa0y,Lo\xe1\xba\xa1i,T\xc3\xaan\r\n" + b"x" * (tables.MAX_FILE_BYTES + 1)
        for url in ("/admin/holidays/import", "/api/v1/holidays/import"):
            r = client.post(
                url, data={"csrf_token": me["csrf_token"]}, files={"file": ("a.csv", big)}
            )
            assert r.status_code == 413, url
        assert count(db, HolidayOverride) == 0


# == spreadsheets ==============================================================================


def xlsx(rows: list[list[object]]) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def zip_bomb(inflated: int) -> bytes:
    """A small .xlsx-looking ZIP whose sheet inflates to ``inflated`` bytes of zeros."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        with z.open("xl/worksheets/sheet1.xml", "w") as sheet:
            block = b"\x00" * MB
            for _ in range(inflated // MB):
                sheet.write(block)
    return out.getvalue()


def understate(data: bytes, member: str, size: int) -> bytes:
    """The ZIP with ``member``'s declared uncompressed size set to ``size`` (local header and
    central directory), its compressed data unchanged: a part that lies about its size."""
    buf = bytearray(data)
    info = zipfile.ZipFile(io.BytesIO(data)).getinfo(member)
    struct.pack_into("<I", buf, info.header_offset + 22, size)
    at = 0
    while (at := bytes(buf).find(b"PK\x01\x02", at)) != -1:
        length = struct.unpack_from("<H", buf, at + 28)[0]
        if bytes(buf[at + 46 : at + 46 + length]).decode() == member:
            struct.pack_into("<I", buf, at + 24, size)
        at += 4
    return bytes(buf)


@pytest.fixture()
def no_openpyxl(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    import openpyxl

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("openpyxl must not open this file")

    monkeypatch.setattr(openpyxl, "load_workbook", refuse)
    yield


class TestSpreadsheetsAreReadSafely:
    def test_a_zip_bomb_is_refused_from_its_directory_without_being_opened(
        self, no_openpyxl: None
    ) -> None:
        bomb = zip_bomb(60 * MB)
        assert len(bomb) < 200_000
        with pytest.raises(FileProblem) as refused:
            read_table("ds.xlsx", bomb)
        assert refused.value.message == tables.ZIP_TOO_BIG

    def test_too_many_parts_is_refused_too(self, no_openpyxl: None) -> None:
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as z:
            for i in range(tables.MAX_ZIP_PARTS + 1):
                z.writestr(f"x/{i}", b"")
        with pytest.raises(FileProblem) as refused:
            read_table("ds.xlsx", out.getvalue())
        assert refused.value.message == tables.ZIP_TOO_BIG

    def test_a_part_that_inflates_past_its_declared_size_is_a_damaged_file(self) -> None:
        rows: list[list[object]] = [["Email"], *[[f"gv{i}@x.vn"] for i in range(3000)]]
        real = xlsx(rows)
        lying = understate(real, "xl/worksheets/sheet1.xml", 2_000)
        assert read_table("ds.xlsx", real).lines[-1].cells == ("gv2999@x.vn",)
        with pytest.raises(FileProblem) as refused:
            read_table("ds.xlsx", lying)
        assert refused.value.message == tables.BROKEN_XLSX

    def test_rows_and_columns_are_capped(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(tables, "MAX_LINES", 10)
        monkeypatch.setattr(tables, "MAX_ROWS", 100)
        wide = read_table("ds.xlsx", xlsx([[f"c{i}" for i in range(120)]]))
        assert len(wide.lines[0].cells) == tables.MAX_COLUMNS
        with pytest.raises(FileProblem) as refused:
            read_table("ds.xlsx", xlsx([["Email"]] * 11))
        assert refused.value.message == tables.TOO_MANY_LINES
        book = Workbook()
        sheet = book.active
        assert sheet is not None
        sheet["A1"], sheet["A5000"] = "Email", "far@x.vn"  # 4998 empty rows between
        out = io.BytesIO()
        book.save(out)
        with pytest.raises(FileProblem) as refused:
            read_table("ds.xlsx", out.getvalue())
        assert refused.value.message == tables.TOO_MANY_LINES
        with pytest.raises(FileProblem):
            read_table("ds.csv", b"Email\n" + b"a@x.vn\n" * 11)

    def test_dates_and_numbers_come_out_as_people_wrote_them(self) -> None:
        from datetime import datetime

        t = read_table("ds.xlsx", xlsx([[datetime(2027, 2, 6), 12345.0, 7.5, "  Trường\u00a0A "]]))
        assert t.lines[0].cells == ("2027-02-06", "12345", "7.5", "Trường A")

    @pytest.mark.parametrize(
        "name,data,message",
        [
            ("ds.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, tables.OLD_EXCEL),
            ("ds.xlsx", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, tables.OLD_EXCEL),
            ("ds.ods", b"PK\x03\x04", tables.OLD_EXCEL),
            ("ds.xlsx", b"Email\r\na@x.vn\r\n", tables.MISMATCH),
            ("ds.csv", b"PK\x03\x04" + b"\x00" * 40, tables.MISMATCH),
            ("ds.xlsx", b"PK\x03\x04" + b"\x00" * 40, tables.BROKEN_XLSX),
            ("ds.xlsx", docx(), tables.BROKEN_XLSX),
            ("ds.pdf", PDF, tables.NOT_A_TABLE),
            ("ds.csv", b"", tables.EMPTY),
        ],
    )
    def test_what_is_not_a_readable_table_says_why(
        self, name: str, data: bytes, message: str
    ) -> None:
        with pytest.raises(FileProblem) as refused:
            read_table(name, data)
        assert refused.value.message == message


class TestCsvIsUtf8OrRefused:
    def test_with_or_without_a_byte_order_mark(self) -> None:
        text = "Họ và tên;Email\r\nNguyễn Thị Học;hoc@x.vn\r\n"
        plain = read_table("a.csv", text.encode())
        marked = read_table("a.csv", b"\xef\xbb\xbf" + text.encode())
        assert plain.lines == marked.lines
        assert plain.lines[0].cells == ("Họ và tên", "Email")

    def test_a_windows_vietnamese_file_is_refused_with_its_line(self) -> None:
        data = "Email,Ten\r\na@x.vn,Lan\r\nb@x.vn,Lê Văn Hai\r\n".encode("cp1258")
        with pytest.raises(FileProblem) as refused:
            read_table("a.csv", data)
        assert refused.value.message == tables.NOT_UTF8
        assert refused.value.params == {"line": 3}  # "ê" in Windows-1258 is not UTF-8

    @pytest.mark.parametrize(
        "data,message",
        [
            ("Email\r\na@x.vn\r\n".encode("utf-16"), tables.UTF16),
            (b"Email\r\na@x.vn\x00\r\n", tables.BINARY),
            (b'Email,Ten\r\na@x.vn,"Lan\r\nb@x.vn,"Hai"x\r\n', tables.BAD_CSV),
        ],
    )
    def test_other_encodings_and_broken_text(self, data: bytes, message: str) -> None:
        with pytest.raises(FileProblem) as refused:
            read_table("a.csv", data)
        assert refused.value.message == message

    def test_the_page_says_what_to_do_in_vietnamese_and_writes_nothing(
        self, client: TestClient, platform: TestPlatform, db: Session
    ) -> None:
        from tests.helpers import sign_in

        me = sign_in(client, platform, [INST_ADMIN, SYS_ADMIN], "admin-1", "Lê Quản Trị")
        data = "Ngay,Loai,Ten\r\n02/01/2027,off,Lê Văn\r\n".encode("cp1258")
        r = client.post(
            "/admin/holidays/import",
            data={"csrf_token": me["csrf_token"]},
            files={"file": ("lich.csv", data, "text/csv")},
        )
        assert r.status_code == 422
        assert "không phải văn bản UTF-8 (dòng 2)" in r.text and "CSV UTF-8" in r.text
        assert count(db, HolidayOverride) == 0


# == names ====================================================================================


class TestFileNames:
    @pytest.mark.parametrize(
        "given,kept",
        [
            ("Kế hoạch.pdf", "Kế hoạch.pdf"),
            ("C:\\Users\\lan\\Desktop\\KHBD.docx", "KHBD.docx"),
            ("../../etc/passwd", "passwd"),
            ("a\"b'c`d<e>f|g?h*i:j.pdf", "abcdefghij.pdf"),
            ("tab\tand\r\nnew line.pdf", "tab and new line.pdf"),
            ("báo cáo\u202efdp.exe", "báo cáofdp.exe"),
            ("zero\u200bwidth.pdf", "zerowidth.pdf"),
            ("...hidden.pdf", "hidden.pdf"),
            ("Ke\u0302\u0301 hoa\u0323ch.pdf", "Kế hoạch.pdf"),  # NFD → NFC
            ("", ""),
        ],
    )
    def test_cleaned_for_showing_and_sending(self, given: str, kept: str) -> None:
        assert safe_file_name(given) == kept

    def test_long_names_keep_their_extension(self) -> None:
        name = safe_file_name("bài làm " * 60 + ".docx")
        assert len(name) == 200 and name.endswith(".docx")

    @pytest.mark.parametrize(
        "name,header",
        [
            ("bao-cao-727_2026.xlsx", 'attachment; filename="bao-cao-727_2026.xlsx"'),
            (
                "Kế hoạch Toán 7.pdf",
                'attachment; filename="Ke hoach Toan 7.pdf"; '
                "filename*=utf-8''K%E1%BA%BF%20ho%E1%BA%A1ch%20To%C3%A1n%207.pdf",
            ),
            (
                'Đề; 50% "xong".pdf',
                'attachment; filename="De 50 xong.pdf"; '
                "filename*=utf-8''%C4%90%E1%BB%81%3B%2050%25%20xong.pdf",
            ),
            ("", 'attachment; filename="download"'),
        ],
    )
    def test_content_disposition_has_an_ascii_name_and_the_exact_one(
        self, name: str, header: str
    ) -> None:
        assert content_disposition(name) == header
        content_disposition(name).encode("ascii")  # a header is ASCII

    def test_inline_for_pdfs_shown_in_the_browser(self) -> None:
        assert content_disposition("B727.pdf", "inline") == 'inline; filename="B727.pdf"'


def test_upload_dir_is_not_under_the_static_folder(world: World) -> None:
    static = Path(__file__).resolve().parent.parent / "app" / "static"
    assert not world.upload_dir.resolve().is_relative_to(static)
