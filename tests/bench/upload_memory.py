"""Benchmark: upload large files through a real ``materials serve`` and report memory and speed.

Run: ``.venv/bin/python -m tests.bench.upload_memory [--mib 64 --mib 512]``. For each size, uploads
a new file without a digest (spooled, then stored), a new file with its ``sha256`` field first
(streamed on into the store, no spool) and the latter again (a duplicate), and prints the
throughput and the server's peak RSS during each upload (VmHWM reset just before it, so the
login's argon2 memory is not counted; the idle RSS is printed too). Embedded backends (SQLite, a
local blob directory), the embedded worker off; loopback only; the server runs in a temporary
directory, stopped at the end.
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


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _reset_peak(pid: int) -> None:
    # "5" resets VmHWM to the current RSS (Linux 4.0+), so the peak seen is this upload's.
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def _pieces(total: int, seed: bytes) -> Iterator[bytes]:
    block = b"".join(hashlib.sha256(seed + b"%d" % n).digest() for n in range(CHUNK // 32))
    sent = 0
    first = b"%PDF-1.4\n"
    while sent < total:
        piece = (first + block)[: min(CHUNK, total - sent)] if sent == 0 else block[: total - sent]
        sent += len(piece)
        yield piece


def _digest(total: int, seed: bytes) -> str:
    digest = hashlib.sha256()
    for piece in _pieces(total, seed):
        digest.update(piece)
    return digest.hexdigest()


def _body(boundary: str, total: int, seed: bytes, sha256: str | None) -> Iterator[bytes]:
    if sha256 is not None:  # before the file, as `materials upload` sends it
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="sha256"\r\n\r\n{sha256}\r\n'
        ).encode()
    yield (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
        f'filename="bench.pdf"\r\nContent-Type: application/pdf\r\n\r\n'
    ).encode()
    yield from _pieces(total, seed)
    yield f"\r\n--{boundary}--\r\n".encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--mib", type=int, action="append", help="file size in MiB (repeatable; 64 and 512)"
    )
    args = parser.parse_args()
    sizes = args.mib or [64, 512]
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        # The embedded worker off, as in production: it would extract the uploads in-process.
        env = environment(max_upload_bytes=str(max(sizes) * CHUNK * 2), embedded_worker="false")
        for command in BOOTSTRAP:
            done = materials(*command, "--data-dir", str(data_dir), env=env)
            assert done.returncode == 0, done.stderr
        server = ServerProcess(data_dir, Path(tmp) / "server.log", env=env)
        try:
            server.wait_until_up()
            base, pid = server.base_url, server.process.pid
            started = _rss_mib(pid)
            token = httpx.post(
                f"{base}/api/v1/auth/token", data={"username": "bench", "password": "bench-pass-1"}
            ).json()["access_token"]
            print(
                f"server RSS after start {started:.0f} MiB, after one login {_rss_mib(pid):.0f} "
                f"MiB (peak so far {_peak_rss_mib(pid):.0f} MiB: the login's argon2)"
            )
            boundary = "benchboundary7d3f"
            for mib in sizes:
                size = mib * CHUNK
                streamed = _digest(size, b"streamed-%d" % mib)
                for label, seed, sha256 in (
                    ("new, no digest", b"spooled-%d" % mib, None),
                    ("new, sha256 first", b"streamed-%d" % mib, streamed),
                    ("same again", b"streamed-%d" % mib, streamed),
                ):
                    before = _rss_mib(pid)
                    _reset_peak(pid)
                    began = time.perf_counter()
                    response = httpx.post(
                        f"{base}/api/v1/documents",
                        content=_body(boundary, size, seed, sha256),
                        headers={
                            "Authorization": f"Bearer {token}",
                            "Content-Type": f"multipart/form-data; boundary={boundary}",
                        },
                        timeout=600,
                    )
                    elapsed = time.perf_counter() - began
                    assert response.status_code in (200, 201), response.text
                    print(
                        f"{mib:4d} MiB {label:<18}: {elapsed:6.2f} s = {mib / elapsed:5.0f} MiB/s, "
                        f"HTTP {response.status_code}, server RSS before {before:.0f} MiB, "
                        f"peak during {_peak_rss_mib(pid):.0f} MiB"
                    )
            print(f"server RSS at the end {_rss_mib(pid):.0f} MiB")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
