"""Benchmark: a large upload through the API on S3, beside the same bytes put straight into S3.

Run: ``.venv/bin/python -m tests.bench.upload_vs_direct [--mb 200] [--repeats 3] [--store
minio]``. Starts SeaweedFS (or MinIO) and PostgreSQL with the deploy/ scripts and one ``materials
serve`` (uvicorn, embedded worker off as in production) on 127.0.0.1. Each round uploads a new file
through ``POST /api/v1/documents`` (multipart, streamed from disk) and puts the same file with the
minio SDK (``put_object`` streamed, in the app's part size); the order alternates between rounds.
Prints MB/s, the API/direct ratio, the server's peak RSS during each upload (VmHWM reset before
it), the CPU time each round took from the API, the S3 server and the client, and where the API's
time goes: receiving the body (sha256, the S3 parts sent on as they fill) versus everything after
the last byte (completing the multipart upload, the database). Last, the ``materials upload``
client (a subprocess, signed in by ``--username`` as a person runs it and by ``--token`` as a script
does) sends a new file and then the same file again, and prints the re-upload's time as a fraction
of the first (the client looks the digest up first, so the second sends nothing, and keeps the
digest, so the second reads nothing); ``--repeats 0`` runs only this part.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import resource
import statistics
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
from minio import Minio
from minio.commonconfig import CopySource

from api.upload_digests import QUIET_SECONDS
from services.blobs._s3 import _PART_SIZE
from tests.bench._stack import Stack, load, machine
from tests.server_process import MATERIALS, environment, materials

MB = 1_000_000
MIB = 1024 * 1024
PART_SIZE = _PART_SIZE  # the app's own part size
BUCKET = "materials"
PASSWORD = "bench-pass-1"


@dataclass(frozen=True)
class ApiRound:
    seconds: float
    body_sent: float  # seconds until the client had read the whole file into the socket
    peak_rss_mib: float  # server VmHWM after a reset just before the upload
    sampled_rss_mib: float  # highest VmRSS seen by sampling every 20 ms
    rss_before_mib: float  # VmRSS just before the upload began
    rss_receiving_mib: float  # highest sampled VmRSS until the client had sent the body


def _status_mib(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _reset_peak(pid: int) -> None:
    # "5" resets VmHWM to the current RSS (Linux 4.0+), so the peak seen is this upload's.
    Path(f"/proc/{pid}/clear_refs").write_text("5")


class _RssSampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.samples: list[tuple[float, float]] = []  # (perf_counter, VmRSS MiB)
        self._stop_event = threading.Event()

    @property
    def highest(self) -> float:
        return max((rss for _, rss in self.samples), default=0.0)

    def highest_until(self, moment: float) -> float:
        return max((rss for at, rss in self.samples if at <= moment), default=0.0)

    def run(self) -> None:
        while not self._stop_event.wait(0.02):
            self.samples.append((time.perf_counter(), _status_mib(self.pid, "VmRSS")))

    def stop(self) -> float:
        self._stop_event.set()
        self.join()
        return self.highest


class _TimedReader(io.BufferedReader):
    """The file as httpx streams it, noting when the last byte was handed to the socket."""

    def __init__(self, path: Path, on_end: Callable[[], object]) -> None:
        super().__init__(io.FileIO(path, "r"), buffer_size=MIB)
        self._on_end = on_end

    def read(self, size: int | None = -1) -> bytes:
        chunk = super().read(size)
        if not chunk:
            self._on_end()
        return chunk


def write_file(path: Path, size: int, seed: int) -> str:
    """A PDF-looking file of ``size`` bytes, different for every seed; returns its sha256."""
    digest = hashlib.sha256()
    block = b"".join(hashlib.sha256(b"%d-%d" % (seed, n)).digest() for n in range(MIB // 32))
    with path.open("wb") as out:
        written = 0
        head = b"%PDF-1.4\n"
        while written < size:
            piece = (head + block)[: min(MIB, size - written)] if written == 0 else block
            piece = piece[: size - written]
            out.write(piece)
            digest.update(piece)
            written += len(piece)
    return digest.hexdigest()


def upload_via_api(base: str, token: str, path: Path, sha256: str, pid: int) -> ApiRound:
    marks: dict[str, float] = {}
    sampler = _RssSampler(pid)
    before = _status_mib(pid, "VmRSS")
    _reset_peak(pid)
    sampler.start()
    # A fresh connection per upload, as api/upload_client.py does.
    with httpx.Client(
        base_url=base,
        timeout=httpx.Timeout(600.0),
        limits=httpx.Limits(max_keepalive_connections=0),
        headers={"Authorization": f"Bearer {token}"},
    ) as client:
        began = time.perf_counter()
        with _TimedReader(path, lambda: marks.setdefault("sent", time.perf_counter())) as reader:
            response = client.post(
                "/api/v1/documents",
                # The digest before the file, as `materials upload` sends it (computed earlier
                # for its lookup): the server streams the bytes on into S3 as they arrive.
                data={"sha256": sha256, "title": path.stem, "category": "其他"},
                files={"file": (path.name, reader, "application/pdf")},
            )
        ended = time.perf_counter()
    sampled = sampler.stop()
    while_receiving = sampler.highest_until(marks.get("sent", ended))
    if response.status_code not in (200, 201) or response.json().get("duplicate"):
        raise RuntimeError(f"upload failed: HTTP {response.status_code} {response.text[:300]}")
    return ApiRound(
        seconds=ended - began,
        body_sent=marks.get("sent", ended) - began,
        peak_rss_mib=_status_mib(pid, "VmHWM"),
        sampled_rss_mib=sampled,
        rss_before_mib=before,
        rss_receiving_mib=while_receiving,
    )


def put_direct(client: Minio, path: Path, key: str) -> float:
    began = time.perf_counter()
    with path.open("rb") as data:
        client.put_object(
            BUCKET,
            key,
            data,
            length=-1,
            part_size=PART_SIZE,
            content_type="application/octet-stream",
        )
    return time.perf_counter() - began


STORES = {"seaweedfs": "SeaweedFS", "minio": "MinIO"}
PID_FILES = {"seaweedfs": "weed.pid", "minio": "minio.pid"}  # written by the deploy/ scripts


def cpu_seconds(pid: int) -> float:
    """User and system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _own_cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_SELF)
    return used.ru_utime + used.ru_stime


def _rate(size: int, seconds: float) -> float:
    return size / MB / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", type=int, default=200, help="file size in MB (10^6 bytes)")
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="rounds of API + direct (0: the client's re-upload only)",
    )
    parser.add_argument(
        "--store", choices=("seaweedfs", "minio"), default="seaweedfs", help="the S3 server"
    )
    args = parser.parse_args()
    size = args.mb * MB
    print(machine())
    print(
        f"file {args.mb} MB ({size / MIB:.1f} MiB), {args.repeats} rounds; "
        f"database PostgreSQL, blobs {STORES[args.store]} S3, part size {PART_SIZE // MIB} MiB"
    )

    with Stack() as stack:
        postgres = stack.postgres()
        with postgres.admin() as admin:
            admin.execute("CREATE DATABASE bench")
        s3 = stack.minio() if args.store == "minio" else stack.seaweedfs()
        store_pid = int((s3.directory / PID_FILES[args.store]).read_text())
        settings = {
            "database_url": postgres.url("bench"),
            "s3_endpoint": s3.endpoint,
            "s3_access_key": s3.access_key,
            "s3_secret_key": s3.secret_key,
            "s3_bucket": BUCKET,
            "max_upload_bytes": str(size * 2),
            "embedded_worker": "false",
        }
        data_dir = str(stack.directory / "data")
        env = environment(**settings)
        for command in (
            ("create-org", "--kind", "county", "--name", "基准县"),
            ("create-org", "--kind", "township", "--name", "基准镇"),
            (
                "create-user",
                "--username",
                "bench",
                "--password",
                PASSWORD,
                "--org",
                "基准镇",
                "--role",
                "uploader",
            ),
        ):
            done = materials("admin", *command, "--data-dir", data_dir, env=env)
            if done.returncode != 0:
                raise RuntimeError(done.stderr)
        server = stack.serve(1, **settings)
        pid = server.process.pid
        started_rss = _status_mib(pid, "VmRSS")
        token = httpx.post(
            f"{server.base_url}/api/v1/auth/token",
            data={"username": "bench", "password": PASSWORD},
        ).json()["access_token"]
        print(
            f"server (pid {pid}) RSS after start {started_rss:.0f} MiB; after one login "
            f"{_status_mib(pid, 'VmRSS'):.0f} MiB (peak {_status_mib(pid, 'VmHWM'):.0f} MiB)"
        )
        direct = Minio(
            s3.endpoint, access_key=s3.access_key, secret_key=s3.secret_key, secure=False
        )

        if args.repeats:
            compare_rounds(
                args.repeats, stack.directory, size, server.base_url, token, pid, store_pid, direct
            )
        client_reupload(server.base_url, token, stack.directory, size)
    print(load())


def compare_rounds(
    repeats: int,
    directory: Path,
    size: int,
    base_url: str,
    token: str,
    pid: int,
    store_pid: int,
    direct: Minio,
) -> None:
    """Rounds of an API upload beside a direct put of the same file, and where the time goes."""
    api_rounds: list[ApiRound] = []
    direct_seconds: list[float] = []
    # CPU seconds each round took from the API process, the S3 server and this client.
    used: dict[str, list[tuple[float, float, float]]] = {"api": [], "direct": []}
    for number in range(repeats):
        path = directory / f"bench-{number}.pdf"
        sha256 = write_file(path, size, seed=number)
        order = ("api", "direct") if number % 2 == 0 else ("direct", "api")
        for kind in order:
            before = (cpu_seconds(pid), cpu_seconds(store_pid), _own_cpu())
            if kind == "api":
                result = upload_via_api(base_url, token, path, sha256, pid)
                api_rounds.append(result)
                print(
                    f"round {number + 1} API   : {result.seconds:6.2f} s "
                    f"{_rate(size, result.seconds):6.1f} MB/s  (body sent after "
                    f"{result.body_sent:.2f} s, then {result.seconds - result.body_sent:.2f} s "
                    f"to the answer)  server peak RSS {result.peak_rss_mib:.0f} MiB "
                    f"(sampled: before {result.rss_before_mib:.0f}, while receiving "
                    f"{result.rss_receiving_mib:.0f}, highest {result.sampled_rss_mib:.0f})"
                )
            else:
                seconds = put_direct(direct, path, f"bench-direct/{number}")
                direct_seconds.append(seconds)
                print(
                    f"round {number + 1} direct: {seconds:6.2f} s {_rate(size, seconds):6.1f} MB/s"
                )
            ended = (cpu_seconds(pid), cpu_seconds(store_pid), _own_cpu())
            cpu = tuple(end - start for start, end in zip(before, ended, strict=True))
            used[kind].append(cpu)  # type: ignore[arg-type]
            print(f"  CPU: API {cpu[0]:.2f} s, S3 server {cpu[1]:.2f} s, client {cpu[2]:.2f} s")
        path.unlink()

    api_median = statistics.median(r.seconds for r in api_rounds)
    direct_median = statistics.median(direct_seconds)
    api_rate, direct_rate = _rate(size, api_median), _rate(size, direct_median)
    ratio = api_rate / direct_rate
    peak = max(r.peak_rss_mib for r in api_rounds)
    print()
    print(f"API upload    median {api_median:6.2f} s = {api_rate:6.1f} MB/s")
    print(f"direct put    median {direct_median:6.2f} s = {direct_rate:6.1f} MB/s")
    print(f"ratio API/direct: {ratio:.2f} (target >= 0.9: {'met' if ratio >= 0.9 else 'NOT met'})")
    print(
        f"server peak RSS during uploads: {peak:.0f} MiB "
        f"(target < 100 MB = 95 MiB: {'met' if peak < 95 else 'NOT met'}); "
        f"RSS now {_status_mib(pid, 'VmRSS'):.0f} MiB"
    )

    print()
    print("CPU seconds of a round (medians; both go through the same two cores):")
    for kind, label in (("api", "through the API"), ("direct", "direct put     ")):
        api_cpu, store_cpu, client_cpu = (
            statistics.median(round_[part] for round_ in used[kind]) for part in range(3)
        )
        print(
            f"  {label}: API {api_cpu:.2f}, S3 server {store_cpu:.2f}, client "
            f"{client_cpu:.2f}, together {api_cpu + store_cpu + client_cpu:.2f}"
        )
    # Where the API's time goes: the receive phase against the part after the last byte.
    sent = statistics.median(r.body_sent for r in api_rounds)
    after = statistics.median(r.seconds - r.body_sent for r in api_rounds)
    print()
    print("where the API's time goes (medians):")
    print(f"  receive body, sha256, parts sent on:  {sent:6.2f} s ({_rate(size, sent):.0f} MB/s)")
    print(
        f"  after the last byte (S3 complete, DB): {after:5.2f} s ({_rate(size, after):.0f} MB/s)"
    )
    print(f"  direct put of the same bytes:         {direct_median:6.2f} s")
    profile_pieces(directory, size, direct)


def run_client(base: str, path: Path, credentials: tuple[str, ...]) -> tuple[float, str]:
    """Seconds for one ``materials upload`` of ``path`` signed in by ``credentials``, and its
    status. The client keeps its digests beside the file (not in this user's cache folder)."""
    env = {**os.environ, "MATERIALS_CACHE_DIR": str(path.parent / "digest-cache")}
    began = time.perf_counter()
    done = subprocess.run(
        [
            *(MATERIALS, "upload", "--server", base, *credentials),
            *("--category", "其他", "--json", "--quiet", str(path)),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env=env,
    )
    seconds = time.perf_counter() - began
    if done.returncode != 0:
        raise RuntimeError(f"materials upload failed: {done.stdout} {done.stderr}")
    return seconds, json.loads(done.stdout.splitlines()[-1])["status"]


def client_reupload(base: str, token: str, directory: Path, size: int, rounds: int = 3) -> None:
    """The ``materials upload`` client: a new file, then the identical file again (medians), as a
    person runs it (``--username``: a login, argon2 on the server, each run) and as a script
    does (``--token``)."""
    began = time.perf_counter()
    subprocess.run([MATERIALS, "upload", "--help"], capture_output=True, timeout=60, check=True)
    startup = time.perf_counter() - began
    print()
    print(f"`materials upload` client (subprocess; medians of {rounds} rounds each):")
    print(f"  start-up alone (`materials upload --help`): {startup:6.2f} s")
    ways = {
        "--username (login each run)": ("--username", "bench", "--password", PASSWORD),
        "--token": ("--token", token),
    }
    times: dict[str, tuple[list[float], list[float]]] = {way: ([], []) for way in ways}
    for number in range(rounds):
        # The two ways alternate, so that a change in the machine's load touches both.
        order = list(ways) if number % 2 == 0 else list(reversed(ways))
        for seed, way in enumerate(order):
            path = directory / f"client-{number}-{seed}.pdf"
            write_file(path, size, seed=4242 + 2 * number + seed)
            # Saved a while before it is sent, as a township's files are: a file changed just
            # before it is read has its digest computed again on the next run.
            time.sleep(QUIET_SECONDS)
            first, first_status = run_client(base, path, ways[way])
            again, again_status = run_client(base, path, ways[way])
            path.unlink()
            if (first_status, again_status) != ("stored", "duplicate"):
                raise RuntimeError(
                    f"expected stored then duplicate, got {first_status}, {again_status}"
                )
            times[way][0].append(first)
            times[way][1].append(again)
            print(f"  round {number + 1} {way}: new file {first:.2f} s, same again {again:.2f} s")
    for way, (firsts, agains) in times.items():
        first, again = statistics.median(firsts), statistics.median(agains)
        ratio = again / first
        print(
            f"  {way}: new file {first:.2f} s, same file again {again:.2f} s, "
            f"re-upload / first {ratio:.2f} (target <= 0.2: {'met' if ratio <= 0.2 else 'NOT met'})"
        )


def profile_pieces(directory: Path, size: int, direct: Minio) -> None:
    """Costs of the pieces of the API's path, each alone, to explain the phases above."""
    path = directory / "pieces.bin"
    write_file(path, size, seed=999)
    began = time.perf_counter()
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while chunk := source.read(MIB):
            digest.update(chunk)
    hashed = time.perf_counter() - began
    began = time.perf_counter()
    with path.open("rb") as source, (directory / "copy.bin").open("wb") as out:
        while chunk := source.read(MIB):
            out.write(chunk)
    copied = time.perf_counter() - began
    (directory / "copy.bin").unlink()
    put_direct(direct, path, "bench-direct/pieces")
    began = time.perf_counter()
    direct.copy_object(
        BUCKET, "bench-direct/pieces-copy", CopySource(BUCKET, "bench-direct/pieces")
    )
    server_copy = time.perf_counter() - began
    path.unlink()
    print(
        f"  sha256 of the file alone:             {hashed:6.2f} s ({_rate(size, hashed):.0f} MB/s)"
    )
    print(
        f"  copy file to file (page cache):       {copied:6.2f} s ({_rate(size, copied):.0f} MB/s)"
    )
    print(
        f"  S3 server-side copy of the object:    {server_copy:6.2f} s "
        f"({_rate(size, server_copy):.0f} MB/s)"
    )


if __name__ == "__main__":
    main()
