"""Benchmark: upload a large file through a real ``materials serve`` and report memory and speed.

Run: ``.venv/bin/python -m tests.bench.upload_memory [--mib 512]``. Prints the server's peak RSS
(VmHWM) before and after the upload, the upload throughput, and a repeat (duplicate) upload.
Loopback only; the server is started in a temporary directory and stopped at the end.
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.server_process import ServerProcess, environment, materials

CHUNK = 1024 * 1024
BOOTSTRAP = (
    ("admin", "create-org", "--kind", "county", "--name", "基准县"),
    ("admin", "create-org", "--kind", "township", "--name", "基准镇"),
    (
        "admin",
        "create-user",
        "--username",
        "bench",
        "--password",
        "bench-pass-1",
        "--org",
        "基准镇",
        "--role",
        "uploader",
    ),
)


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _body(boundary: str, total: int) -> Iterator[bytes]:
    yield (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
        f'filename="bench.pdf"\r\nContent-Type: application/pdf\r\n\r\n'
    ).encode()
    block = hashlib.sha256(b"seed").digest() * (CHUNK // 32)
    sent = 0
    first = b"%PDF-1.4\n"
    while sent < total:
        piece = (first + block)[: min(CHUNK, total - sent)] if sent == 0 else block[: total - sent]
        sent += len(piece)
        yield piece
    yield f"\r\n--{boundary}--\r\n".encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mib", type=int, default=512, help="file size in MiB")
    args = parser.parse_args()
    size = args.mib * CHUNK
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        env = environment(max_upload_bytes=str(size * 2))
        for command in BOOTSTRAP:
            done = materials(*command, "--data-dir", str(data_dir), env=env)
            assert done.returncode == 0, done.stderr
        server = ServerProcess(data_dir, Path(tmp) / "server.log", env=env)
        try:
            server.wait_until_up()
            base = server.base_url
            token = httpx.post(
                f"{base}/api/v1/auth/token", data={"username": "bench", "password": "bench-pass-1"}
            ).json()["access_token"]
            idle = _peak_rss_mib(server.process.pid)
            boundary = "benchboundary7d3f"
            for label in ("upload", "duplicate"):
                started = time.perf_counter()
                response = httpx.post(
                    f"{base}/api/v1/documents",
                    content=_body(boundary, size),
                    headers={
                        "Authorization": f"Bearer {token}",
                        "Content-Type": f"multipart/form-data; boundary={boundary}",
                    },
                    timeout=600,
                )
                elapsed = time.perf_counter() - started
                assert response.status_code in (200, 201), response.text
                rate = args.mib / elapsed
                peak = _peak_rss_mib(server.process.pid)
                print(
                    f"{label:>9}: {args.mib} MiB in {elapsed:.2f} s = {rate:.0f} MiB/s, "
                    f"HTTP {response.status_code}, server peak RSS {peak:.0f} MiB"
                )
            print(f"server peak RSS before uploads: {idle:.0f} MiB")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
