"""Counter QR posters (A5, PNG + SVG, or PDF) and token rotation.

`render_png(counter)`, `render_svg(counter)` and `render_pdf(counter)` return
the bytes of one print-ready A5 poster: the QR code of the counter's link, the
unit and counter names, the short URL in text and a one-line instruction in
Vietnamese.  The staff pages can serve these directly; the CLI writes them:

    flask --app survey_app qr posters --unit CODE --out DIR [--format png,svg|pdf]
    flask --app survey_app qr rotate --counter CODE
    flask --app survey_app qr link --counter CODE [--dossier REF]
"""
from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional
from xml.sax.saxutils import escape

import qrcode
from PIL import Image, ImageDraw, ImageFont

from ..models import Counter, Unit
from .tokens import counter_url
from .units import counters_under

DPI = 300
A5_MM = (148, 210)
A5_PX = (round(A5_MM[0] / 25.4 * DPI), round(A5_MM[1] / 25.4 * DPI))  # 1748 x 2480
BLUE = "#0b4f8a"
INK = "#1a1a1a"

INSTRUCTION_VI = "Quét mã QR bằng camera điện thoại để đánh giá sự phục vụ: chọn mặt cho 6 dòng, khoảng 20 giây."
HEADER_VI = "ĐÁNH GIÁ SỰ HÀI LÒNG"
# What the form asks (issue 13): no name, phone or ID number; age group and gender only as optional details.
FOOTER = ("Không cần đăng nhập, không hỏi họ tên, số điện thoại · Độ tuổi, giới tính: tùy chọn, không bắt buộc · "
          "Scan to rate our service (English available)")

FONT_DIRS = ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/truetype/noto",
             "/usr/share/fonts/truetype/liberation2", "/usr/share/fonts/truetype/liberation")
FONT_FILES = {False: ("DejaVuSans.ttf", "NotoSans-Regular.ttf", "LiberationSans-Regular.ttf"),
              True: ("DejaVuSans-Bold.ttf", "NotoSans-Bold.ttf", "LiberationSans-Bold.ttf")}


def _font(size: int, bold: bool = False):
    for d in FONT_DIRS:
        for name in FONT_FILES[bold]:
            path = Path(d) / name
            if path.exists():
                return ImageFont.truetype(str(path), size)
    return ImageFont.load_default(size)


def _wrap(text: str, font, width: int) -> list[str]:
    words, lines, line = text.split(), [], ""
    for w in words:
        trial = f"{line} {w}".strip()
        if font.getlength(trial) <= width or not line:
            line = trial
        else:
            lines.append(line)
            line = w
    if line:
        lines.append(line)
    return lines


@dataclass
class PosterText:
    url: str
    unit: str
    counter: str


def poster_text(counter: Counter, kiosk: bool = False) -> PosterText:
    return PosterText(url=counter_url(counter, kiosk=kiosk), unit=counter.unit.name_vi, counter=counter.name_vi)


def qr_matrix(url: str) -> list[list[bool]]:
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=4)
    qr.add_data(url)
    qr.make(fit=True)
    return qr.get_matrix()


@dataclass
class _Line:
    text: str
    y: int          # baseline-ish top in px
    size: int
    bold: bool
    color: str
    mono: bool = False


def _layout(t: PosterText) -> tuple[list[_Line], tuple[int, int, int]]:
    """Text lines (px at 300 dpi) and the QR square (x, y, size)."""
    w, h = A5_PX
    margin = 110
    lines: list[_Line] = []
    y = 70
    lines.append(_Line(HEADER_VI, y, 84, True, "#ffffff"))
    y = 300
    for s in _wrap(t.unit, _font(80, True), w - 2 * margin)[:3]:
        lines.append(_Line(s, y, 80, True, INK))
        y += 100
    for s in _wrap(t.counter, _font(64), w - 2 * margin)[:2]:
        lines.append(_Line(s, y, 64, False, INK))
        y += 84
    qr_size = 1150
    qr_y = y + 30
    y = qr_y + qr_size + 40
    for s in _wrap(INSTRUCTION_VI, _font(58, True), w - 2 * margin)[:3]:
        lines.append(_Line(s, y, 58, True, BLUE))
        y += 76
    url = re.sub(r"^https?://", "", t.url)
    for s in [url[i:i + 44] for i in range(0, len(url), 44)][:3]:
        lines.append(_Line(s, y + 10, 44, False, INK, mono=True))
        y += 58
    for s in _wrap(FOOTER, _font(34), w - 2 * margin)[:3]:
        lines.append(_Line(s, h - 190 + (len(lines) and 0), 34, False, "#333333"))
    # stack the footer lines from the bottom
    footer = [ln for ln in lines if ln.size == 34]
    for i, ln in enumerate(footer):
        ln.y = h - 80 - 46 * (len(footer) - i)
    return lines, ((w - qr_size) // 2, qr_y, qr_size)


def render_png(counter: Counter, kiosk: bool = False) -> bytes:
    return _to_bytes(_image(poster_text(counter, kiosk)), "PNG")


def render_pdf(counter: Counter, kiosk: bool = False) -> bytes:
    return _to_bytes(_image(poster_text(counter, kiosk)), "PDF")


poster_pdf = render_pdf  # the name the staff pages look for


def _to_bytes(img: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    if fmt == "PDF":
        img.save(buf, fmt, resolution=DPI)
    else:
        img.save(buf, fmt, dpi=(DPI, DPI))
    return buf.getvalue()


def _image(t: PosterText) -> Image.Image:
    w, h = A5_PX
    img = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(img)
    d.rectangle([0, 0, w, 230], fill=BLUE)
    lines, (qx, qy, qs) = _layout(t)
    mono = None
    for ln in lines:
        if ln.mono:
            mono = mono or _mono_font(ln.size)
            font = mono
        else:
            font = _font(ln.size, ln.bold)
        x = (w - font.getlength(ln.text)) / 2
        d.text((x, ln.y), ln.text, font=font, fill=ln.color)
    m = qr_matrix(t.url)
    cell = qs / len(m)
    for r, row in enumerate(m):
        for c, on in enumerate(row):
            if on:
                d.rectangle([qx + c * cell, qy + r * cell, qx + (c + 1) * cell - 1, qy + (r + 1) * cell - 1],
                            fill="black")
    d.rectangle([40, 40, w - 41, h - 41], outline=BLUE, width=6)
    return img


def _mono_font(size: int):
    for d in FONT_DIRS:
        for name in ("DejaVuSansMono.ttf", "NotoSansMono-Regular.ttf", "LiberationMono-Regular.ttf"):
            path = Path(d) / name
            if path.exists():
                return ImageFont.truetype(str(path), size)
    return _font(size)


def render_svg(counter: Counter, kiosk: bool = False) -> bytes:
    t = poster_text(counter, kiosk)
    w, h = A5_PX
    lines, (qx, qy, qs) = _layout(t)
    m = qr_matrix(t.url)
    cell = qs / len(m)
    path = "".join(f"M{qx + c * cell:.2f} {qy + r * cell:.2f}h{cell:.2f}v{cell:.2f}h-{cell:.2f}z"
                   for r, row in enumerate(m) for c, on in enumerate(row) if on)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{A5_MM[0]}mm" height="{A5_MM[1]}mm" '
           f'viewBox="0 0 {w} {h}">',
           f"<title>{escape(t.unit)} — {escape(t.counter)}</title>",
           f'<rect width="{w}" height="{h}" fill="#fff"/>',
           f'<rect width="{w}" height="230" fill="{BLUE}"/>',
           f'<rect x="40" y="40" width="{w - 81}" height="{h - 81}" fill="none" stroke="{BLUE}" stroke-width="6"/>']
    for ln in lines:
        family = "DejaVu Sans Mono, monospace" if ln.mono else "DejaVu Sans, Arial, sans-serif"
        out.append(f'<text x="{w / 2:.0f}" y="{ln.y + ln.size * 0.85:.0f}" font-family="{family}" '
                   f'font-size="{ln.size}" font-weight="{"bold" if ln.bold else "normal"}" fill="{ln.color}" '
                   f'text-anchor="middle">{escape(ln.text)}</text>')
    out.append(f'<path d="{path}" fill="#000"/>')
    out.append("</svg>")
    return "\n".join(out).encode("utf-8")


def _safe_name(code: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", code).strip("._") or "counter"


def write_posters(unit: Unit, out_dir: Path, formats: tuple[str, ...] = ("png", "svg"),
                  kiosk: bool = False) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    renderers = {"png": render_png, "svg": render_svg, "pdf": render_pdf}
    for counter in counters_under(unit.id):
        for fmt in formats:
            path = out_dir / f"{_safe_name(counter.code)}{'-kiosk' if kiosk else ''}.{fmt}"
            tmp = path.with_suffix(path.suffix + ".part")
            tmp.write_bytes(renderers[fmt](counter, kiosk))
            tmp.replace(path)
            written.append(path)
    return written


def rotate_token(counter: Counter, *, actor: str, user_id: Optional[int] = None) -> int:
    """Invalidate every printed poster of `counter` (audited; the caller commits)."""
    from .audit import record

    old = counter.token_version
    counter.token_version = old + 1
    record(actor=actor, action="token_rotate", target_type="counter", target_id=counter.code,
           details={"token_version": old + 1, "from_version": old}, user_id=user_id)
    return counter.token_version
