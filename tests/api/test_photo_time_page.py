"""A photo that names no capture time shows the time its file was written, said as such."""

from __future__ import annotations

import io

from fastapi.testclient import TestClient
from PIL import Image

from indexer.worker import IndexWorker
from services.backends import Backends
from tests.conftest import Api, signed_in_browser


def _jpeg(*, capture_time: str | None, file_time: str | None) -> bytes:
    exif = Image.Exif()
    if file_time is not None:
        exif[0x0132] = file_time  # IFD0 DateTime
    if capture_time is not None:
        exif.get_ifd(0x8769)[0x9003] = capture_time  # DateTimeOriginal
    out = io.BytesIO()
    Image.new("RGB", (32, 32), "green").save(out, "JPEG", exif=exif)
    return out.getvalue()


def test_the_page_says_which_time_a_photo_records(
    api: Api, backends: Backends, client: TestClient
) -> None:
    only_file = api.upload(
        "east",
        "入户走访.jpg",
        _jpeg(capture_time=None, file_time="2024:05:01 08:00:00"),
        "image/jpeg",
        title="入户走访照片（修图后）",
    )
    taken = api.upload(
        "east",
        "现场.jpg",
        _jpeg(capture_time="2024:03:15 10:20:30", file_time="2024:05:01 08:00:00"),
        "image/jpeg",
        title="入户走访现场照片",
    )
    assert only_file.status_code == 201, only_file.text
    assert taken.status_code == 201, taken.text
    IndexWorker(backends, backends.index).drain()

    with signed_in_browser(client, "east") as browser:
        page = browser.get(f"/documents/{only_file.json()['id']}").text
        assert "<dt>照片文件时间</dt>" in page
        assert "2024-05-01 08:00:00" in page
        assert "不一定是拍摄时间" in page
        assert "拍摄时间</dt>" not in page

        page = browser.get(f"/documents/{taken.json()['id']}").text
        assert "<dt>拍摄时间</dt>" in page
        assert "2024-03-15 10:20:30" in page
        assert "不一定是拍摄时间" not in page
