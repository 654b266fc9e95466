"""Benchmark: a full ``materials reindex`` of documents whose text an earlier indexing kept.

Run: ``.venv/bin/python -m tests.bench.reindex [--docs 10000] [--chars 1800] [--rounds 2]
[--profile] [--extract] [--skip-embedded]``. Starts PostgreSQL and Elasticsearch with the deploy/
scripts and bulk-inserts the synthetic county corpus of ``tests.bench.search_latency`` (text
files) as an earlier indexing leaves it: document rows marked indexed, each with its kept
``DocumentText``. Then times ``indexer.reindex.reindex`` into a new Elasticsearch index behind the
alias, ``--rounds`` times (the first on a freshly started server; the blob store is never read),
with ``--extract`` also with every file fetched and extracted again, and the same kept-text
rebuild on the embedded stack (SQLite, FTS5). Prints documents/s and the CPU time per document of
the reindexing process and of Elasticsearch; with ``--profile`` where the last Elasticsearch
rebuild spent its time. Everything listens on 127.0.0.1 and is stopped at the end.
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import hashlib
import io
import os
import pstats
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

from sqlalchemy import bindparam, insert, update

from indexer import reindex as rebuilding
from indexer.reindex import reindex
from services.backends import Backends, open_backends
from services.config import Settings
from services.models import Document, DocumentText
from services.personal_data import mask_personal_data
from services.search import ReadScope, SearchQuery
from tests.bench._stack import Stack, load, machine
from tests.bench.search_vs_direct import DB_CHUNK, create_orgs, documents_of, insert_rows

ALIAS = "materials"
ROOT = Path(__file__).resolve().parents[2]
# Nearly every body holds these words, and no title, tag or file name: when more than half of
# the documents are found by them, bodies were indexed.
BODY_WORDS = "走访群众"


def _settings(data_dir: Path, **values: Any) -> Settings:
    return Settings(
        data_dir=data_dir,
        embedded_worker=False,
        password_time_cost=1,
        password_memory_kib=1024,
        elasticsearch_index=ALIAS,
        **values,
    )


def load_corpus(backends: Backends, *, count: int, chars: int, files: bool) -> int:
    """The corpus as an earlier indexing left it: text files (in the blob store when ``files``),
    their rows with departments, and their kept (masked) texts; how many characters they hold."""
    orgs = create_orgs(backends)
    documents = [
        dataclasses.replace(document, filename=f"{document.title}.txt", content_type="text/plain")
        for document in documents_of(orgs, count, chars)
    ]
    insert_rows(backends, documents, orgs.uploader_id)
    digests = {
        document.id: hashlib.sha256(document.body.encode()).hexdigest() for document in documents
    }
    with backends.db.engine.begin() as connection:
        for offset in range(0, len(documents), DB_CHUNK):
            chunk = documents[offset : offset + DB_CHUNK]
            connection.execute(
                update(Document)
                .where(Document.id == bindparam("document_id"))
                .values(sha256=bindparam("digest")),
                [
                    {"document_id": document.id, "digest": digests[document.id]}
                    for document in chunk
                ],
            )
            connection.execute(
                insert(DocumentText),
                [
                    {
                        "document_id": document.id,
                        "sha256": digests[document.id],
                        "body": mask_personal_data(document.body)[0],
                    }
                    for document in chunk
                ],
            )
    if files:
        for document in documents:
            writer = backends.blobs.open_writer(digests[document.id])
            writer.write(document.body.encode())
            writer.commit()
    return sum(len(document.body) for document in documents)


def cpu_seconds(pid: int) -> float:
    """User and system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def time_reindex(
    backends: Backends,
    *,
    label: str,
    count: int,
    profile: bool = False,
    extract: bool = False,
    server_pid: int | None = None,
) -> float:
    """Run one full reindex, check it, print and answer documents/s, with the CPU time this
    process and the search server used per document."""
    server_began = cpu_seconds(server_pid) if server_pid else 0.0
    cpu_began = time.process_time()
    began = time.perf_counter()
    with profiled(profile) as profiles:
        report = reindex(backends, backends.index, restart=True, extract=extract)
    seconds = time.perf_counter() - began
    python_ms = (time.process_time() - cpu_began) * 1000 / count
    server_ms = (cpu_seconds(server_pid) - server_began) * 1000 / count if server_pid else 0.0
    found = backends.index.search(SearchQuery(text=BODY_WORDS, scope=ReadScope(everything=True)))
    if report.indexed != count or backends.index.count() != count or found.total <= count // 2:
        raise RuntimeError(
            f"{label}: indexed {report.indexed}, index holds {backends.index.count()}, "
            f"{found.total} found by words of the bodies; expected {count}"
        )
    rate = count / seconds
    print(f"{label}: reindexed {count} documents in {seconds:.1f} s: {rate:.0f} documents/s")
    print(f"  CPU per document: reindex (Python) {python_ms:.2f} ms", end="")
    print(f", Elasticsearch {server_ms:.2f} ms" if server_pid else "")
    print(f"  ({load()}; {BODY_WORDS} found in {found.total} documents)")
    if profiles:
        out = io.StringIO()
        stats = pstats.Stats(profiles[0], stream=out)
        stats.add(*profiles[1:])
        stats.sort_stats("cumulative").print_stats(35)
        stats.sort_stats("tottime").print_stats(25)
        print("profile of the rebuild (one writer thread), with the writer thread's calls:")
        print(out.getvalue().replace(f"{ROOT}/", ""))
    return rate


@contextmanager
def profiled(enabled: bool) -> Iterator[list[cProfile.Profile]]:
    """Profiles of this thread and of every batch a writer thread of the rebuild wrote.

    With one writer thread: with two, a call's time would include waiting for the other's GIL.
    """
    if not enabled:
        yield []
        return
    profiles = [cProfile.Profile()]
    write_kept = rebuilding._Writer._write_kept

    def write_profiled(writer: Any, batch: Any) -> Any:
        profile = cProfile.Profile()
        profiles.append(profile)
        return profile.runcall(write_kept, writer, batch)

    with (
        mock.patch.object(rebuilding._Writer, "_write_kept", write_profiled),
        mock.patch.object(rebuilding, "WRITERS", 1),
    ):
        profiles[0].enable()
        try:
            yield profiles
        finally:
            profiles[0].disable()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=int, default=10_000, help="documents to reindex")
    parser.add_argument("--chars", type=int, default=1_800, help="body length of each document")
    parser.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="rebuilds on Elasticsearch, one after the other (the first on a cold server)",
    )
    parser.add_argument(
        "--profile", action="store_true", help="cProfile the last Elasticsearch rebuild"
    )
    parser.add_argument("--skip-embedded", action="store_true", help="Elasticsearch only")
    parser.add_argument(
        "--extract",
        action="store_true",
        help="also time `reindex --extract` on Elasticsearch (every file extracted again)",
    )
    args = parser.parse_args()
    print(machine())

    with Stack() as stack:
        postgres = stack.postgres()
        with postgres.admin() as admin:
            admin.execute("CREATE DATABASE bench")
        elasticsearch = stack.elasticsearch(heap="1g")
        settings = _settings(
            stack.directory / "data",
            database_url=postgres.url("bench"),
            elasticsearch_url=elasticsearch.url,
        )
        backends = open_backends(settings)
        server_pid = int((elasticsearch.directory / "elasticsearch.pid").read_text())
        try:
            began = time.perf_counter()
            chars = load_corpus(backends, count=args.docs, chars=args.chars, files=args.extract)
            print(
                f"loaded {args.docs} documents with kept texts ({chars / 1e6:.1f} M characters) "
                f"into PostgreSQL in {time.perf_counter() - began:.1f} s"
            )
            for round_ in range(1, args.rounds + 1):
                time_reindex(
                    backends,
                    label=f"Elasticsearch (PostgreSQL), run {round_}",
                    count=args.docs,
                    profile=args.profile and round_ == args.rounds,
                    server_pid=server_pid,
                )
            if args.extract:
                time_reindex(
                    backends,
                    label="Elasticsearch (PostgreSQL), --extract",
                    count=args.docs,
                    extract=True,
                    server_pid=server_pid,
                )
        finally:
            backends.close()

    if args.skip_embedded:
        return
    with tempfile.TemporaryDirectory(dir=Path.cwd(), prefix=".bench-reindex-") as directory:
        backends = open_backends(_settings(Path(directory)))
        try:
            load_corpus(backends, count=args.docs, chars=args.chars, files=False)
            time_reindex(backends, label="embedded (SQLite, FTS5)", count=args.docs)
        finally:
            backends.close()


if __name__ == "__main__":
    main()
