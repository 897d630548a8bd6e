"""The certificate as a PDF (fpdf2), A4 landscape, in Vietnamese.

A certificate is an official document of a Vietnamese education office, so its wording is
Vietnamese whatever language the reader's pages use: the labels below are the fixed text of
the form (like the national motto), not interface text, and are not translated. Everything
else comes from the certificate's snapshot (``app.certificates.rules.build_snapshot``).

Diacritics: the bundled DejaVu Sans (``fonts/``, Bitstream Vera licence) covers Vietnamese;
fpdf2 embeds the subset of glyphs used, with a ToUnicode map so the text can be searched,
copied and extracted. Text is NFC-normalised (precomposed letters, which the font has).

The QR code is drawn as vector rectangles from segno's matrix (no image library), and is a
link to the verification page too.
"""

from __future__ import annotations

import unicodedata
from datetime import date
from pathlib import Path
from typing import Any

import segno
from fpdf import FPDF

from app.certificates.rules import module_label

FONT_DIR = Path(__file__).resolve().parent / "fonts"
FONT = "DejaVuSans"

# The form's fixed wording (Vietnamese on purpose, see the module docstring).
NATION = "CỘNG HOÀ XÃ HỘI CHỦ NGHĨA VIỆT NAM"
MOTTO = "Độc lập - Tự do - Hạnh phúc"
TITLE = "GIẤY CHỨNG NHẬN"
SUBTITLE = "HOÀN THÀNH BỒI DƯỠNG THƯỜNG XUYÊN"
CERTIFIES = "Chứng nhận Ông/Bà:"
SCHOOL = "Đơn vị công tác: "
COMPLETED = "Đã hoàn thành chương trình bồi dưỡng thường xuyên"
CLASS = "Lớp: "
DATES = "Thời gian: từ ngày %s đến ngày %s"
PERIODS = " (%s tiết)"
RESULT = "Kết quả: "
SCORE = " — điểm tổng kết %s/10"
PLACE_DATE = "%s, ngày %02d tháng %02d năm %d"
CODE = "Mã chứng nhận: "
CHECK_AT = "Kiểm tra tại:"

PAGE_W, PAGE_H = 297.0, 210.0
RED = (165, 22, 22)
INK = (20, 20, 20)
FRAME = (150, 110, 40)


def _t(value: Any) -> str:
    return unicodedata.normalize("NFC", str(value)) if value is not None else ""


def vn_date(value: str | date) -> str:
    day = date.fromisoformat(value) if isinstance(value, str) else value
    return day.strftime("%d/%m/%Y")


def vn_score(value: str | None) -> str:
    return "" if value is None else value.replace(".", ",")


class _Certificate(FPDF):
    def __init__(self) -> None:
        super().__init__(orientation="L", unit="mm", format="A4")
        self.add_font(FONT, "", str(FONT_DIR / "DejaVuSans.ttf"))
        self.add_font(FONT, "B", str(FONT_DIR / "DejaVuSans-Bold.ttf"))
        self.set_auto_page_break(False)
        self.set_margins(14, 14, 14)
        self.set_text_color(*INK)

    def centred(
        self,
        x: float,
        w: float,
        text: str,
        size: float,
        *,
        bold: bool = False,
        h: float | None = None,
    ) -> None:
        self.set_font(FONT, "B" if bold else "", size)
        self.set_x(x)
        self.multi_cell(w, h or size * 0.5, _t(text), align="C", new_x="LMARGIN", new_y="NEXT")

    def rule(self, x_mid: float, width: float, gap: float = 1.2) -> None:
        y = self.get_y() + gap
        self.set_line_width(0.3)
        self.line(x_mid - width / 2, y, x_mid + width / 2, y)
        self.set_y(y + gap)


def _qr(pdf: FPDF, url: str, x: float, y: float, size: float) -> None:
    """The QR code of ``url`` as filled rectangles (one per run of dark modules in a row)."""
    qr = segno.make(url, error="m", micro=False)
    matrix = qr.matrix
    n = len(matrix)
    cell = size / n
    pdf.set_fill_color(0, 0, 0)
    for row, modules in enumerate(matrix):
        col = 0
        while col < n:
            if not modules[col]:
                col += 1
                continue
            start = col
            while col < n and modules[col]:
                col += 1
            pdf.rect(x + start * cell, y + row * cell, (col - start) * cell, cell, style="F")
    pdf.link(x, y, size, size, url)


def render_certificate(snapshot: dict[str, Any], code: str, url: str) -> bytes:
    """The PDF of one certificate."""
    issuer = snapshot.get("issuer") or {}
    pdf = _Certificate()
    pdf.set_title(f"{TITLE} {code}")
    pdf.set_subject(url)
    pdf.set_keywords(f"{code} {url}")
    pdf.set_author(_t(issuer.get("unit_name")))
    pdf.set_creator("blend727")
    pdf.set_lang("vi-VN")
    pdf.add_page()

    # A double frame.
    pdf.set_draw_color(*FRAME)
    pdf.set_line_width(1.2)
    pdf.rect(7, 7, PAGE_W - 14, PAGE_H - 14)
    pdf.set_line_width(0.4)
    pdf.rect(10, 10, PAGE_W - 20, PAGE_H - 20)
    pdf.set_draw_color(*INK)

    # Header: the issuing unit (left), the national motto (right).
    left_x, left_w = 14.0, 118.0
    right_x, right_w = 140.0, 143.0
    pdf.set_y(17)
    if issuer.get("parent_unit"):
        pdf.centred(left_x, left_w, _t(issuer["parent_unit"]).upper(), 10.5, h=5.5)
    pdf.centred(left_x, left_w, _t(issuer.get("unit_name")).upper(), 10.5, bold=True, h=5.5)
    pdf.rule(left_x + left_w / 2, 34)
    left_bottom = pdf.get_y()
    pdf.set_y(17)
    pdf.centred(right_x, right_w, NATION, 11.5, bold=True, h=6)
    pdf.centred(right_x, right_w, MOTTO, 11.5, bold=True, h=6)
    pdf.rule(right_x + right_w / 2, 58)

    # Title.
    pdf.set_y(max(left_bottom, pdf.get_y()) + 9)
    pdf.set_text_color(*RED)
    pdf.centred(14, PAGE_W - 28, TITLE, 28, bold=True, h=13)
    pdf.centred(14, PAGE_W - 28, SUBTITLE, 14, bold=True, h=8)
    pdf.set_text_color(*INK)

    # Who, what, when, how.
    body_x, body_w = 30.0, PAGE_W - 60
    pdf.ln(5)
    pdf.centred(body_x, body_w, CERTIFIES, 12.5, h=7.5)
    pdf.set_text_color(*RED)
    pdf.centred(body_x, body_w, _t(snapshot.get("name")), 20, bold=True, h=10)
    pdf.set_text_color(*INK)
    if snapshot.get("school"):
        pdf.centred(body_x, body_w, SCHOOL + _t(snapshot["school"]), 12.5, h=7.5)
    pdf.centred(body_x, body_w, COMPLETED, 12.5, h=7.5)
    pdf.centred(body_x, body_w, module_label(snapshot), 13, bold=True, h=6.5)
    pdf.centred(
        body_x,
        body_w,
        CLASS + f"{_t(snapshot.get('class_code'))} — {_t(snapshot.get('class_name'))}",
        12,
        h=7.5,
    )
    dates = DATES % (vn_date(snapshot["start"]), vn_date(snapshot["end"]))
    if snapshot.get("periods"):
        dates += PERIODS % snapshot["periods"]
    pdf.centred(body_x, body_w, dates, 12, h=7.5)
    result = RESULT + _t(snapshot.get("classification_vi"))
    if snapshot.get("score") is not None:
        result += SCORE % vn_score(snapshot["score"])
    pdf.centred(body_x, body_w, result, 12.5, bold=True, h=7.5)

    # Bottom left: QR code, code, where to check.
    qr_size, qr_x, qr_y = 34.0, 18.0, PAGE_H - 14 - 34.0 - 3
    _qr(pdf, url, qr_x, qr_y, qr_size)
    text_x, text_w = qr_x + qr_size + 4, 92.0
    pdf.set_xy(text_x, qr_y + 6)
    pdf.set_font(FONT, "", 9.5)
    pdf.cell(text_w, 5, CODE, new_x="LEFT", new_y="NEXT")
    pdf.set_font(FONT, "B", 11)
    pdf.cell(text_w, 6, code, new_x="LEFT", new_y="NEXT")
    pdf.set_font(FONT, "", 9.5)
    pdf.cell(text_w, 5, CHECK_AT, new_x="LEFT", new_y="NEXT")
    pdf.set_font(FONT, "", 8)
    pdf.multi_cell(text_w, 4, url, new_x="LEFT", new_y="NEXT", link=url)

    # Bottom right: place and date, signer.
    sign_x, sign_w = 165.0, 118.0
    issued = date.fromisoformat(snapshot["issued_on"])
    place = _t(issuer.get("place")) or "……"
    pdf.set_y(PAGE_H - 62)
    pdf.centred(
        sign_x, sign_w, PLACE_DATE % (place, issued.day, issued.month, issued.year), 11.5, h=6.5
    )
    if issuer.get("signer_title"):
        pdf.centred(sign_x, sign_w, _t(issuer["signer_title"]).upper(), 11.5, bold=True, h=6.5)
    if issuer.get("signer_name"):
        pdf.set_y(PAGE_H - 28)
        pdf.centred(sign_x, sign_w, _t(issuer["signer_name"]), 12.5, bold=True, h=7)
    return bytes(pdf.output())
