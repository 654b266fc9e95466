"""Pages of known Chinese text rendered as pictures: scanned PDFs and photos of paper for OCR.

Drawn with Pillow in a Noto CJK font (Debian's ``fonts-noto-cjk``); ``cjk_font()`` is None where it
is missing, and the callers skip.
"""

from __future__ import annotations

import functools
import io
import random
from pathlib import Path

import pillow_heif
from PIL import Image, ImageDraw, ImageFilter, ImageFont

__all__ = ["cjk_font", "page_image", "photo_of_paper", "scanned_pdf"]

_FONT_DIRS = (Path("/usr/share/fonts"), Path("/usr/local/share/fonts"))
_FONT_NAMES = ("NotoSansCJK-Regular.ttc", "NotoSerifCJK-Regular.ttc", "NotoSansCJK-Medium.ttc")
_SIMPLIFIED_CHINESE = 2  # the face index of "Noto Sans CJK SC" in the collection
_A4_INCHES = (8.27, 11.69)


@functools.cache
def cjk_font() -> Path | None:
    """A Noto CJK collection installed on this machine, or None."""
    for name in _FONT_NAMES:
        for directory in _FONT_DIRS:
            found = sorted(directory.rglob(name)) if directory.is_dir() else []
            if found:
                return found[0]
    return None


def page_image(lines: list[str], *, dpi: int = 300, points: float = 14) -> Image.Image:
    """An A4 page, white, with the lines in black at ``points`` size from a one-inch margin."""
    font_path = cjk_font()
    if font_path is None:
        raise RuntimeError("no CJK font: apt-get install fonts-noto-cjk")
    width, height = (round(side * dpi) for side in _A4_INCHES)
    page = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(page)
    size = round(points / 72 * dpi)
    font = ImageFont.truetype(str(font_path), size, index=_SIMPLIFIED_CHINESE)
    y = dpi
    for line in lines:
        draw.text((dpi, y), line, fill=0, font=font)
        y += round(size * 1.8)
    return page


def scanned_pdf(pages: list[list[str]], *, dpi: int = 300) -> bytes:
    """An image-only PDF (no text layer), one rendered page per list of lines."""
    images = [page_image(lines, dpi=dpi).convert("RGB") for lines in pages]
    out = io.BytesIO()
    images[0].save(out, "PDF", resolution=dpi, save_all=True, append_images=images[1:])
    return out.getvalue()


def photo_of_paper(lines: list[str], *, image_format: str = "JPEG", seed: int = 1) -> bytes:
    """A phone photo of a printed page: slightly turned, soft, grainy, on a grey desk."""
    rng = random.Random(seed)
    page = page_image(lines, dpi=200).convert("RGB")
    page = page.rotate(rng.uniform(-2.0, 2.0), expand=True, fillcolor=(96, 96, 104))
    page = page.filter(ImageFilter.GaussianBlur(0.8))
    noise = Image.effect_noise(page.size, 18).convert("RGB")
    page = Image.blend(page, noise, 0.08)
    out = io.BytesIO()
    if image_format == "HEIF":
        pillow_heif.register_heif_opener()
    page.save(out, image_format, quality=85)
    return out.getvalue()
