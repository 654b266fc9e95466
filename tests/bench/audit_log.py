"""Benchmark: appending audit events from several processes, and the sequencer keeping up.

Run: ``.venv/bin/python -m tests.bench.audit_log [--events 20000] [--writers 4]``. Starts
PostgreSQL with the deploy/ script, then:

1. ``--writers`` processes append ``--events`` events in all, each in a transaction of its own as
   a request does, while one sequencer runs in another process: prints the append rate and
   latency, and how far the sequencer was behind when the appends ended and how long it took to
   catch up;
2. a backlog of ``--backlog`` events inserted at once is sequenced from scratch: events/s.

Everything listens on 127.0.0.1 and is stopped at the end.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, insert, select

from services.audit import Actor, AuditAction, AuditLog, Outcome
from services.audit_keys import load_verifier
from services.audit_sequencer import AuditSequencer
from services.audit_verify import verify_log
from services.blobs._local import LocalBlobStore
from services.config import Settings
from services.db import Database
from services.models import AuditEvent, AuditLeaf
from tests.bench._stack import Stack, load, machine, percentile


def settings_of(url: str, data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, database_url=url)


def append(url: str, worker: int, count: int, results: multiprocessing.Queue[list[float]]) -> None:
    database = Database(url)
    log = AuditLog(database)
    latencies = []
    for number in range(count):
        began = time.perf_counter()
        log.record(
            actor=Actor(f"bench{worker}", org="城关镇", role="reader", ip="127.0.0.1"),
            action=AuditAction.search,
            outcome=Outcome.allowed,
            details={"q": "扶贫 资金", "n": number, "total": 17},
        )
        latencies.append((time.perf_counter() - began) * 1000)
    database.dispose()
    results.put(latencies)


def sequence(url: str, data_dir: str, stop_file: str) -> None:
    settings = settings_of(url, Path(data_dir))
    database = Database(url)
    sequencer = AuditSequencer(database, settings, LocalBlobStore(settings.blob_dir))
    stop = threading.Event()

    def watch() -> None:
        while not Path(stop_file).exists():
            time.sleep(0.05)
        stop.set()

    threading.Thread(target=watch, daemon=True).start()
    sequencer.run(stop)


def counts(database: Database) -> tuple[int, int]:
    with database.session() as session:
        events = session.scalar(select(func.count()).select_from(AuditEvent)) or 0
        leaves = session.scalar(select(func.count()).select_from(AuditLeaf)) or 0
    return events, leaves


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=20_000, help="events appended in all")
    parser.add_argument("--writers", type=int, default=4, help="appending processes")
    parser.add_argument("--backlog", type=int, default=50_000, help="events sequenced at once")
    args = parser.parse_args()
    print(machine())
    with Stack() as stack:
        postgres = stack.postgres()
        with postgres.admin() as admin:
            admin.execute("CREATE DATABASE bench")
            admin.execute("CREATE DATABASE backlog")
        url = postgres.url("bench")
        database = Database(url)
        database.migrate()
        data_dir = stack.directory / "data"
        settings = settings_of(url, data_dir)
        AuditSequencer(database, settings, LocalBlobStore(settings.blob_dir)).signer  # noqa: B018

        spawn = multiprocessing.get_context("spawn")
        results: multiprocessing.Queue[list[float]] = spawn.Queue()
        stop_file = stack.directory / "stop-sequencer"
        sequencer = spawn.Process(target=sequence, args=(url, str(data_dir), str(stop_file)))
        sequencer.start()
        per_writer = args.events // args.writers
        writers = [
            spawn.Process(target=append, args=(url, worker, per_writer, results))
            for worker in range(args.writers)
        ]
        began = time.perf_counter()
        for writer in writers:
            writer.start()
        latencies = [value for _ in writers for value in results.get(timeout=600)]
        for writer in writers:
            writer.join()
        appended_in = time.perf_counter() - began
        events, leaves = counts(database)
        behind = events - leaves
        while leaves < events:
            time.sleep(0.05)
            events, leaves = counts(database)
        caught_up = time.perf_counter() - began - appended_in
        stop_file.touch()
        sequencer.join(30)
        print(
            f"{len(latencies)} events appended by {args.writers} processes in {appended_in:.1f} s "
            f"({len(latencies) / appended_in:.0f} events/s); append latency median "
            f"{statistics.median(latencies):.2f} ms, p95 {percentile(latencies, 0.95):.2f} ms, "
            f"p99 {percentile(latencies, 0.99):.2f} ms"
        )
        print(
            f"sequencer running meanwhile: {behind} events behind when the appends ended, "
            f"caught up {caught_up:.2f} s later"
        )
        report = verify_log(database, LocalBlobStore(settings.blob_dir), load_verifier(settings))
        print(f"verify: ok={report.ok} events={report.events} checkpoints={report.checkpoints}")
        database.dispose()

        backlog_url = postgres.url("backlog")
        backlog = Database(backlog_url)
        backlog.migrate()
        with backlog.session() as session:
            now = datetime.now(UTC)
            for start in range(0, args.backlog, 10_000):
                session.execute(
                    insert(AuditEvent),
                    [
                        {
                            "at": now,
                            "actor": f"u{number}",
                            "action": "view",
                            "outcome": "allowed",
                            "details": {"n": number},
                        }
                        for number in range(start, min(start + 10_000, args.backlog))
                    ],
                )
        backlog_settings = settings_of(backlog_url, data_dir)
        sequencer_once = AuditSequencer(
            backlog, backlog_settings, LocalBlobStore(backlog_settings.blob_dir)
        )
        began = time.perf_counter()
        done = sequencer_once.drain()
        seconds = time.perf_counter() - began
        print(
            f"backlog: {done} events sequenced in {seconds:.1f} s ({done / seconds:.0f} events/s, "
            f"batches of {backlog_settings.audit_sequencer_batch}; target >= 2,000 events/s)"
        )
        backlog.dispose()
    print(load())


if __name__ == "__main__":
    main()
