"""Benchmark: what the libraries the API is built on cost before any of its own code runs.

Run: ``.venv/bin/python -m tests.bench.stack_floor [--requests 2000]``. Prints two floors that
the API's own figures are measured against:

- **Memory:** the resident size of a fresh Python process after importing each layer of the
  server's libraries (the web framework, the object store and search clients, the database layer,
  then the app itself), each in its own process.
- **CPU per request:** the server process's CPU time a request to a bare FastAPI app on uvicorn
  (one async route; one sync route behind an async dependency, as every signed-in endpoint is),
  measured from ``/proc`` over many requests on one keep-alive connection; then, in this process,
  one official Elasticsearch client search returning 20 hits, and one database transaction of the
  shape every search ends with (read 20 rows, insert one event, commit) through SQLAlchemy on
  PostgreSQL. PostgreSQL and Elasticsearch are started with the deploy/ scripts.

Everything listens on 127.0.0.1 and is stopped at the end.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from elasticsearch import Elasticsearch
from sqlalchemy import create_engine, text

from tests.bench._stack import Stack, machine

# Each layer adds its imports to the ones above it.
LAYERS: tuple[tuple[str, str], ...] = (
    ("Python alone", ""),
    ("+ FastAPI, python-multipart, uvicorn", "fastapi, python_multipart, uvicorn"),
    ("+ minio, elasticsearch (clients)", "minio, elasticsearch"),
    ("+ psycopg, SQLAlchemy (database)", "psycopg, sqlalchemy.orm, sqlalchemy.dialects.postgresql"),
    ("+ the app's modules (api.app)", "api.app"),
)

BARE_APP = textwrap.dedent(
    """
    from typing import Annotated
    from fastapi import Depends, FastAPI, Request

    app = FastAPI()

    async def caller(request: Request) -> str:
        return request.headers.get("authorization", "")

    @app.get("/async")
    async def plain() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/sync")
    def behind_dependency(who: Annotated[str, Depends(caller)]) -> dict[str, bool]:
        return {"ok": bool(who)}
    """
)


def rss_after_import(modules: str) -> float:
    """MiB resident in a fresh interpreter after importing ``modules`` (comma-separated)."""
    script = (
        (f"import {modules}\n" if modules else "")
        + "print(next(int(l.split()[1]) for l in open('/proc/self/status')"
        + " if l.startswith('VmRSS')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        check=True,
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    return int(out.stdout.strip()) / 1024


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def bare_fastapi_cpu(requests: int) -> dict[str, float]:
    """Server CPU ms a request to the bare app, per route."""
    with tempfile.TemporaryDirectory() as directory:
        Path(directory, "bare_app.py").write_text(BARE_APP)
        port = _free_port()
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "bare_app:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-access-log",
                "--log-level",
                "warning",
            ],
            cwd=directory,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 30
            while True:
                try:
                    httpx.get(f"{base}/async").raise_for_status()
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
            figures = {}
            with httpx.Client(base_url=base, headers={"Authorization": "Bearer x"}) as client:
                for route in ("/async", "/sync"):
                    for _ in range(200):
                        client.get(route)
                    before = cpu_seconds(server.pid)
                    for _ in range(requests):
                        client.get(route).raise_for_status()
                    figures[route] = (cpu_seconds(server.pid) - before) * 1000 / requests
            return figures
        finally:
            server.terminate()
            server.wait(timeout=30)


def cpu_ms(call: Callable[[], object], count: int) -> float:
    for _ in range(50):
        call()
    started = time.process_time()
    for _ in range(count):
        call()
    return (time.process_time() - started) * 1000 / count


def client_floors(requests: int) -> dict[str, float]:
    """CPU ms in this process for one search call and one database transaction."""
    with Stack() as stack:
        postgres = stack.postgres()
        elasticsearch = stack.elasticsearch(heap="512m")
        es = Elasticsearch(elasticsearch.url)
        body = "县扶贫办 2024 年第三季度工作总结，" * 20
        for number in range(40):
            es.index(
                index="floor",
                id=str(number),
                document={"id": str(number), "title": f"材料 {number}", "body": body},
            )
        es.indices.refresh(index="floor")

        def search() -> object:
            return es.search(
                index="floor", size=20, query={"match_all": {}}, source_includes=["id", "body"]
            ).body

        engine = create_engine(postgres.url("postgres"))
        with engine.begin() as connection:
            connection.execute(
                text("CREATE TABLE rows_read (id serial PRIMARY KEY, title text, made timestamptz)")
            )
            connection.execute(
                text("CREATE TABLE events (id bigserial PRIMARY KEY, details jsonb NOT NULL)")
            )
            connection.execute(
                text(
                    "INSERT INTO rows_read (title, made) SELECT 'x' || n, now() "
                    "FROM generate_series(1, 40) AS n"
                )
            )
        rows = text("SELECT id, title, made FROM rows_read WHERE id <= 20")
        event = text("INSERT INTO events (details) VALUES (CAST(:details AS jsonb)) RETURNING id")

        def transaction() -> object:
            with engine.begin() as connection:
                found = connection.execute(rows).all()
                connection.execute(event, {"details": '{"q": "扶贫"}'}).scalar_one()
                return found

        try:
            return {
                "search": cpu_ms(search, requests),
                "transaction": cpu_ms(transaction, requests),
            }
        finally:
            es.close()
            engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests a measurement")
    args = parser.parse_args()
    print(machine())
    print("\nresident memory after import (fresh process each):")
    imported: list[str] = []
    for label, modules in LAYERS:
        imported += filter(None, [modules])
        print(f"  {label:42s} {rss_after_import(', '.join(imported)):6.1f} MiB")
    print("\nCPU a request on a bare FastAPI app (uvicorn, server process):")
    for route, ms in bare_fastapi_cpu(args.requests).items():
        label = "async route" if route == "/async" else "sync route behind an async dependency"
        print(f"  {label:42s} {ms:6.2f} ms")
    print("\nCPU a call in this process (PostgreSQL and Elasticsearch on loopback):")
    floors = client_floors(args.requests)
    print(f"  {'Elasticsearch client, search of 20 hits':42s} {floors['search']:6.2f} ms")
    print(f"  {'SQLAlchemy: read 20 rows, insert, commit':42s} {floors['transaction']:6.2f} ms")


if __name__ == "__main__":
    main()
