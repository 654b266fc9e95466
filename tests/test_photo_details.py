"""A photo's time as the document page reads it: the capture time, or, said as such, only the
time its file was written."""

from __future__ import annotations

from api.web.routes.documents import photo_details


def test_the_capture_time_is_the_photos_time() -> None:
    details = photo_details({"captured_at": "2024-03-15T10:20:30+08:00"})
    assert details is not None
    assert details.captured
    assert details.captured_at == "2024-03-15 10:20:30（UTC+08:00）"
    assert details.timezone_known


def test_only_the_file_time_is_shown_as_not_the_capture_time() -> None:
    details = photo_details({"recorded_at": "2024-05-01T08:00:00"})
    assert details is not None
    assert not details.captured
    assert details.captured_at == "2024-05-01 08:00:00"
    assert not details.timezone_known


def test_a_photo_without_time_place_or_camera_has_no_details() -> None:
    assert photo_details({}) is None
    assert photo_details({"recorded_at": "not a time"}) is None
