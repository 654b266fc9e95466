"""JPEG, PNG, HEIC/HEIF: the text of a photographed or scanned page (Tesseract OCR), and when and
where the photo was taken and with what camera.

The picture is turned upright by its EXIF orientation before OCR; a photo without text simply has
none. HEIC opens where the pillow-heif plugin is installed; elsewhere it is noted ``not_extracted``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib
import math
import re
import time
from typing import Any

from PIL import Image, ImageOps, UnidentifiedImageError

from indexer.extractors import Extracted, ExtractionContext, ExtractionFailed
from indexer.extractors._ocr import MAX_SIDE_PIXELS, ocr_unavailable, recognise_pages
from indexer.extractors._time import ask_for_time

__all__ = ["ImageExtractor"]

# EXIF tags (CIPA DC-008).
_MAKE, _MODEL, _DATETIME = 0x010F, 0x0110, 0x0132
_EXIF_IFD, _GPS_IFD = 0x8769, 0x8825
_DATETIME_ORIGINAL, _DATETIME_DIGITIZED = 0x9003, 0x9004
_OFFSET_TIME, _OFFSET_TIME_ORIGINAL, _OFFSET_TIME_DIGITIZED = 0x9010, 0x9011, 0x9012
_LATITUDE_REF, _LATITUDE, _LONGITUDE_REF, _LONGITUDE = 1, 2, 3, 4

_HEIF_TYPES = frozenset({"image/heic", "image/heif"})
_UTC_OFFSET = re.compile(r"^[+-]\d\d:\d\d$")


class ImageExtractor:
    mime_types = frozenset({"image/jpeg", "image/png", *_HEIF_TYPES})

    def extract(self, context: ExtractionContext) -> Extracted:
        deadline = time.monotonic() + context.limits.timeout_seconds
        if context.content_type in _HEIF_TYPES:
            _register_heif_plugin()
        try:
            image = Image.open(context.path)
        except UnidentifiedImageError as exc:
            if context.content_type in _HEIF_TYPES:
                return Extracted(text="", notes=["not_extracted"])
            raise ExtractionFailed("图片已损坏，无法读取", code="corrupt") from exc
        with image:
            exif = image.getexif()  # reads the header only, never the pixels
            metadata = _photo_metadata(exif)
            if context.limits.ocr_max_pages <= 0:
                return Extracted(text="", exif=metadata)
            if ocr_unavailable():
                return Extracted(text="", exif=metadata, notes=["ocr_unavailable"])
            # JPEG decodes straight at a fraction of its size when that is all OCR needs.
            image.draft("L", (MAX_SIDE_PIXELS, MAX_SIDE_PIXELS))
            upright = ImageOps.exif_transpose(image)
            more = ask_for_time(context.limits.ocr_seconds_per_page)
            result = recognise_pages([upright], deadline=deadline + more)
        return Extracted(text=result.text, exif=metadata, notes=result.notes, ocr=bool(result.text))


def _register_heif_plugin() -> None:
    with contextlib.suppress(ImportError):
        importlib.import_module("pillow_heif").register_heif_opener()


def _photo_metadata(exif: Image.Exif) -> dict[str, Any]:
    metadata: dict[str, Any] = {}
    details = exif.get_ifd(_EXIF_IFD)
    # When the picture was taken: the original time, or the time it was digitized, which a
    # camera writes as the same moment.
    captured_at = _iso_time(
        details.get(_DATETIME_ORIGINAL), details.get(_OFFSET_TIME_ORIGINAL)
    ) or _iso_time(details.get(_DATETIME_DIGITIZED), details.get(_OFFSET_TIME_DIGITIZED))
    if captured_at:
        metadata["captured_at"] = captured_at
    else:
        # Only the file's own time (some phones and most editing software write nothing else):
        # when it was last written, which is not necessarily when the picture was taken.
        recorded_at = _iso_time(exif.get(_DATETIME), details.get(_OFFSET_TIME))
        if recorded_at:
            metadata["recorded_at"] = recorded_at
    gps = exif.get_ifd(_GPS_IFD)
    latitude = _signed_degrees(gps.get(_LATITUDE), gps.get(_LATITUDE_REF), "S", limit=90)
    longitude = _signed_degrees(gps.get(_LONGITUDE), gps.get(_LONGITUDE_REF), "W", limit=180)
    if latitude is not None and longitude is not None:
        metadata["gps"] = {"lat": latitude, "lon": longitude}
    make, model = _tag_text(exif.get(_MAKE)), _tag_text(exif.get(_MODEL))
    # Many makers repeat their name in the model ("Canon" + "Canon EOS R6").
    camera = model if make and model.lower().startswith(make.lower()) else f"{make} {model}"
    if camera.strip():
        metadata["camera"] = camera.strip()
    return metadata


def _tag_text(value: object) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return value.replace("\x00", "").strip() if isinstance(value, str) else ""


def _iso_time(value: object, offset: object) -> str | None:
    """'2024:03:15 10:20:30' (+ '+08:00') as ISO 8601; None when absent or not a real time."""
    try:
        moment = dt.datetime.strptime(_tag_text(value), "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    utc_offset = _tag_text(offset)
    return moment.isoformat() + (utc_offset if _UTC_OFFSET.match(utc_offset) else "")


def _signed_degrees(dms: object, ref: object, negative_ref: str, *, limit: int) -> float | None:
    """Degrees, minutes, seconds and a hemisphere letter as signed decimal degrees."""
    if not isinstance(dms, tuple) or len(dms) != 3:
        return None
    try:
        degrees, minutes, seconds = (float(part) for part in dms)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    value = degrees + minutes / 60 + seconds / 3600
    if not math.isfinite(value) or not 0 <= value <= limit:
        return None
    sign = -1 if _tag_text(ref).upper() == negative_ref else 1
    return round(sign * value, 7)
