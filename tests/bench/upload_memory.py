"""Benchmark: upload a large file through a real ``materials serve`` and report memory and speed.

Run: ``.venv/bin/python -m tests.bench.upload_memory [--mib 512]``. Prints the server's peak RSS
(VmHWM) before and after the upload, the upload throughput, and a repeat (duplicate) upload.
Loopback only; the server is started in a temporary directory and stopped at the end.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

CHUNK = 1024 * 1024


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


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
    materials = str(Path(sys.executable).with_name("materials"))
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "MATERIALS_DATA_DIR": tmp, "MATERIALS_MAX_UPLOAD_BYTES": str(size * 2)}
        for command in (
            ["admin", "create-org", "--kind", "county", "--name", "基准县"],
            ["admin", "create-org", "--kind", "township", "--name", "基准镇"],
            [
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
            ],
        ):
            subprocess.run([materials, *command], env=env, check=True, capture_output=True)
        port = _free_port()
        server = subprocess.Popen(
            [materials, "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(f"{base}/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    if time.monotonic() > deadline:
                        raise
                time.sleep(0.1)
            token = httpx.post(
                f"{base}/api/v1/auth/token", data={"username": "bench", "password": "bench-pass-1"}
            ).json()["access_token"]
            idle = _peak_rss_mib(server.pid)
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
                peak = _peak_rss_mib(server.pid)
                print(
                    f"{label:>9}: {args.mib} MiB in {elapsed:.2f} s = {rate:.0f} MiB/s, "
                    f"HTTP {response.status_code}, server peak RSS {peak:.0f} MiB"
                )
            print(f"server peak RSS before uploads: {idle:.0f} MiB")
        finally:
            server.terminate()
            server.wait(timeout=15)


if __name__ == "__main__":
    main()
