"""Benchmark: searches through the API on Elasticsearch beside the same requests sent directly.

Run: ``.venv/bin/python -m tests.bench.search_vs_direct [--docs 100000] [--clients 20]``. Starts
PostgreSQL and Elasticsearch with the deploy/ scripts, loads the synthetic corpus of
``tests.bench.search_latency`` (document rows in bulk with SQLAlchemy core, the index with
``ElasticsearchIndex.upsert`` in batches from several processes), then starts one
``materials serve`` (uvicorn) and sends a fixed mix of 1–3 word queries, some filtered, as a
department reader: through ``GET /api/v1/search`` and, with the same clients, straight to
Elasticsearch with the very request body the backend builds (captured from
``ElasticsearchIndex.search``). Prints the API process's CPU time a search, median and p95 of each
side and the difference, then a CPU profile of whole requests through the app in this process.
Everything listens on 127.0.0.1 and is stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import dataclasses
import hashlib
import io
import json
import multiprocessing
import os
import pstats
import random
import statistics
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import anyio.to_thread
import httpx
from elasticsearch import Elasticsearch
from sqlalchemy import insert

from api.app import create_app
from services import access, searching
from services.access import Principal
from services.administration import add_org, add_user
from services.audit import Actor
from services.backends import Backends, open_backends
from services.config import Settings
from services.metadata import period_bounds
from services.models import Document, DocumentDepartment, IndexStatus, OrgKind, Role, ScanStatus
from services.search import FACETS, IndexedDocument, SearchQuery, TextAnalyzer
from services.search._elasticsearch import ElasticsearchIndex
from tests.bench._stack import Stack, load, machine, percentile, summary
from tests.bench.search_latency import (
    CATEGORIES,
    CN_QUARTERS,
    DEPARTMENTS,
    OBJECTS,
    SUBJECTS,
    TOWNSHIPS,
    corpus,
)

PASSWORD = "bench-pass-1"
ROOT = Path(__file__).resolve().parents[2]
ALIAS = "materials"
DB_CHUNK = 5_000
# Words county staff type, as in the search-quality queries: topics, programmes, record kinds.
WORDS = [
    "扶贫", "脱贫攻坚", "低保户", "入户走访", "台账", "督查", "光伏", "危房改造", "防汛",
    "秸秆禁烧", "党建", "疫情防控", "小额信贷", "易地搬迁", "网格员", "整改", "培训", "验收",
]  # fmt: skip


@dataclass(frozen=True)
class Search:
    """One query of the mix, as a reader would send it to the API."""

    q: str
    category: str | None = None
    township: str | None = None
    period_from: str | None = None
    period_to: str | None = None

    def params(self) -> dict[str, str]:
        fields = dataclasses.asdict(self)
        return {key: value for key, value in fields.items() if value is not None}


def query_mix(count: int, seed: int = 11) -> list[Search]:
    """1–3 word queries; about a third carry a category, township or period filter."""
    rng = random.Random(seed)
    makers: list[Callable[[], str]] = [
        lambda: rng.choice(WORDS),
        lambda: rng.choice(OBJECTS),
        lambda: f"{rng.choice(TOWNSHIPS)} {rng.choice(WORDS)}",
        lambda: f"{rng.choice(SUBJECTS)} {rng.choice(OBJECTS)}",
        lambda: f"{rng.randint(2019, 2023)}年 {rng.choice(WORDS)}",
        lambda: f"{rng.choice(TOWNSHIPS)} {rng.choice(OBJECTS)} {rng.choice(CATEGORIES)}",
        lambda: f"{rng.randint(2019, 2023)}年第{rng.choice(CN_QUARTERS)}季度 {rng.choice(WORDS)}",
    ]
    searches = []
    for number in range(count):
        q = makers[number % len(makers)]()
        roll = rng.random()
        if roll < 0.12:
            searches.append(Search(q, category=rng.choice(CATEGORIES)))
        elif roll < 0.24:
            searches.append(Search(q, township=rng.choice(TOWNSHIPS)))
        elif roll < 0.36:
            year = rng.randint(2019, 2023)
            searches.append(Search(q, period_from=f"{year}-Q1", period_to=f"{year}-Q2"))
        else:
            searches.append(Search(q))
    return searches


# -- loading ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Orgs:
    townships: dict[int, int]  # corpus township id → org id
    departments: dict[int, int]  # corpus department id → org id
    township_names: dict[str, int]
    uploader_id: int
    reader: Principal


def create_orgs(backends: Backends) -> Orgs:
    actor = Actor(username="bench", role="system")
    add_org(backends, actor=actor, name="基准县", kind=OrgKind.county.value, parent=None)
    townships, names = {}, {}
    for number, name in enumerate(TOWNSHIPS, start=1):
        org, _ = add_org(backends, actor=actor, name=name, kind=OrgKind.township.value, parent=None)
        townships[number] = org.id
        names[name] = org.id
    departments = {}
    for corpus_id, name in zip(DEPARTMENTS, SUBJECTS, strict=False):
        org, _ = add_org(backends, actor=actor, name=name, kind="department", parent=None)
        departments[corpus_id] = org.id
    uploader, _ = add_user(
        backends, actor=actor, username="uploader", password=PASSWORD, org=TOWNSHIPS[0],
        role=Role.uploader.value,
    )  # fmt: skip
    reader, _ = add_user(
        backends, actor=actor, username="reader", password=PASSWORD, org=SUBJECTS[0],
        role=Role.reader.value,
    )  # fmt: skip
    return Orgs(townships, departments, names, uploader.id, Principal.of(reader))


def documents_of(orgs: Orgs, count: int, chars: int) -> list[IndexedDocument]:
    """The search_latency corpus, pointed at the organisations just created."""
    return [
        dataclasses.replace(
            document,
            township_id=orgs.townships[document.township_id],
            department_ids=tuple(orgs.departments[d] for d in document.department_ids),
        )
        for document in corpus(count, chars)
    ]


def insert_rows(backends: Backends, documents: Sequence[IndexedDocument], uploader: int) -> None:
    """The documents' rows, in bulk: what the API loads after the index answers."""
    now = datetime.now(UTC)
    with backends.db.engine.begin() as connection:
        for offset in range(0, len(documents), DB_CHUNK):
            chunk = documents[offset : offset + DB_CHUNK]
            connection.execute(
                insert(Document),
                [
                    {
                        "id": document.id,
                        "title": document.title,
                        "filename": document.filename,
                        "content_type": document.content_type,
                        "size": len(document.body.encode()),
                        "sha256": hashlib.sha256(document.id.encode()).hexdigest(),
                        "category": document.category,
                        "period": document.period,
                        "tags": list(document.tags),
                        "description": document.description,
                        "visibility": document.visibility,
                        "township_id": document.township_id,
                        "uploaded_by_id": uploader,
                        "created_at": document.created_at,
                        "index_status": IndexStatus.indexed.value,
                        "indexed_at": now,
                        # Stored and indexed with no virus scanner configured.
                        "scan_status": ScanStatus.unscanned.value,
                    }
                    for document in chunk
                ],
            )
            departments = [
                {"document_id": document.id, "org_id": org_id}
                for document in chunk
                for org_id in document.department_ids
            ]
            if departments:
                connection.execute(insert(DocumentDepartment), departments)


_worker_index: ElasticsearchIndex | None = None


def _start_loader(url: str) -> None:
    global _worker_index
    analyzer = TextAnalyzer()
    _worker_index = ElasticsearchIndex(url, analyzer=analyzer, alias=ALIAS, timeout_seconds=120)


def _upsert(batch: Sequence[IndexedDocument]) -> int:
    assert _worker_index is not None
    _worker_index.upsert(batch)
    return len(batch)


def index_documents(
    settings: Settings, documents: Sequence[IndexedDocument], *, batch: int, workers: int
) -> None:
    """``ElasticsearchIndex.upsert`` in batches, segmentation (jieba) spread over processes."""
    assert settings.elasticsearch_url is not None
    batches = [documents[offset : offset + batch] for offset in range(0, len(documents), batch)]
    context = multiprocessing.get_context("fork")
    with context.Pool(
        workers,
        initializer=_start_loader,
        initargs=(settings.elasticsearch_url,),
    ) as pool:
        done = 0
        for count in pool.imap_unordered(_upsert, batches):
            done += count
            if done % 20_000 < batch:
                print(f"  indexed {done}/{len(documents)}", flush=True)


# -- the two ways of searching ----------------------------------------------------------------


class _Recorder:
    """Stands in for the Elasticsearch client: keeps the request the backend built."""

    def __init__(self) -> None:
        self.index = ""
        self.source_includes: list[str] = []
        self.request: dict[str, Any] = {}

    def search(
        self, *, index: str, source_includes: list[str] | None = None, **request: Any
    ) -> Any:
        # The first search only: no hits here, so the backend goes on to a suggestion lookup
        # (no _source) and perhaps a relaxed search, which the real index would not have needed.
        if source_includes is not None and not self.request:
            self.index, self.source_includes, self.request = index, source_includes, request
        empty = {"hits": {"hits": [], "total": {"value": 0}}}
        names = [*FACETS, *request.get("aggs", {})]
        aggregations: dict[str, Any] = {name: {"buckets": []} for name in names}
        return type("Response", (), {"body": {**empty, "aggregations": aggregations}})()


@dataclass(frozen=True)
class DirectRequest:
    path: str
    params: dict[str, str]
    body: bytes


def direct_requests(searches: Sequence[Search], orgs: Orgs) -> list[DirectRequest]:
    """What ``ElasticsearchIndex.search`` sends for each search, as the API would call it."""
    recorder = _Recorder()
    backend = ElasticsearchIndex(
        "http://unused",
        analyzer=TextAnalyzer(),
        alias=ALIAS,
        target=ALIAS,
        client=cast(Elasticsearch, recorder),
    )
    scope = access.read_scope(orgs.reader)
    built = []
    for search in searches:
        recorder.request = {}
        township_id = None
        if search.township is not None:
            township_id = orgs.township_names.get(search.township, -1)
        backend.search(
            SearchQuery(
                text=search.q.strip(),
                scope=scope,
                category=search.category,
                township_id=township_id,
                period_from=period_bounds(search.period_from)[0] if search.period_from else None,
                period_to=period_bounds(search.period_to)[1] if search.period_to else None,
            )
        )
        built.append(
            DirectRequest(
                path=f"/{recorder.index}/_search",
                params={"_source_includes": ",".join(recorder.source_includes)},
                body=json.dumps(recorder.request, ensure_ascii=False).encode(),
            )
        )
    return built


Send = Callable[[httpx.Client, int], int]  # sends request number n, returns its total hits


def api_sender(base: str, token: str, searches: Sequence[Search]) -> Send:
    headers = {"Authorization": f"Bearer {token}"}

    def send(client: httpx.Client, number: int) -> int:
        search = searches[number % len(searches)]
        response = client.get(f"{base}/api/v1/search", params=search.params(), headers=headers)
        if response.status_code != 200:
            raise RuntimeError(f"API search {search}: {response.status_code} {response.text}")
        return int(response.json()["total"])

    return send


def direct_sender(es_url: str, requests: Sequence[DirectRequest]) -> Send:
    headers = {"Content-Type": "application/json"}

    def send(client: httpx.Client, number: int) -> int:
        request = requests[number % len(requests)]
        response = client.post(
            f"{es_url}{request.path}", params=request.params, content=request.body, headers=headers
        )
        if response.status_code != 200:
            raise RuntimeError(f"Elasticsearch: {response.status_code} {response.text[:300]}")
        return int(response.json()["hits"]["total"]["value"])

    return send


@dataclass(frozen=True)
class Run:
    latencies_ms: list[float]
    seconds: float

    @property
    def rate(self) -> float:
        return len(self.latencies_ms) / self.seconds


def run(send: Send, *, clients: int, count: int) -> Run:
    """``count`` requests from ``clients`` threads, each on its own keep-alive connection."""
    numbers: Iterator[int] = iter(range(count))
    lock = threading.Lock()
    latencies: list[float] = []
    failures: list[BaseException] = []

    def client_loop() -> None:
        with httpx.Client(timeout=60) as client:
            while True:
                with lock:
                    number = next(numbers, None)
                if number is None or failures:
                    return
                began = time.perf_counter()
                try:
                    send(client, number)
                except BaseException as exc:
                    failures.append(exc)
                    return
                elapsed = (time.perf_counter() - began) * 1000
                with lock:
                    latencies.append(elapsed)

    threads = [threading.Thread(target=client_loop) for _ in range(clients)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - began
    if failures:
        raise failures[0]
    return Run(latencies, seconds)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its children (uvicorn's workers), from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # After the command: state, ppid, …; utime and stime are fields 14 and 15 of stat.
        if entry.name == str(pid) or fields[1] == str(pid):
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def compare(label: str, api: Run, direct: Run) -> None:
    api_median, direct_median = (
        statistics.median(api.latencies_ms),
        statistics.median(direct.latencies_ms),
    )
    api_p95, direct_p95 = percentile(api.latencies_ms, 0.95), percentile(direct.latencies_ms, 0.95)
    print(f"{label}:")
    print(f"  API     {summary(api.latencies_ms)}  {api.rate:6.1f} searches/s")
    print(f"  direct  {summary(direct.latencies_ms)}  {direct.rate:6.1f} searches/s")
    print(
        f"  API adds: median {api_median - direct_median:+.1f} ms, "
        f"p95 {api_p95 - direct_p95:+.1f} ms"
    )


def _search_all(backends: Backends, orgs: Orgs, searches: Sequence[Search]) -> None:
    for search in searches:
        searching.search(
            backends,
            principal=orgs.reader,
            text=search.q,
            category=search.category,
            township=search.township,
            period_from=search.period_from,
            period_to=search.period_to,
            page=1,
            size=20,
            ip="127.0.0.1",
        )


def profile_app(backends: Backends, orgs: Orgs, searches: Sequence[Search]) -> None:
    """The app's search function in this process, one search at a time, timed."""
    began = time.perf_counter()
    _search_all(backends, orgs, searches)
    each = (time.perf_counter() - began) * 1000 / len(searches)
    print(
        f"services.searching.search in this process, one at a time: {each:.1f} ms a search "
        "(no HTTP, no login check, no response schema)"
    )


def profile_requests(settings: Settings, searches: Sequence[Search], top: int) -> None:
    """Whole requests through the ASGI app (middleware, login check, search, response), their
    CPU time profiled: the thread-pool hops run inline, so one profiler sees all of it."""
    original = anyio.to_thread.run_sync

    async def inline(function: Callable[..., Any], *args: Any, **_options: Any) -> Any:
        return function(*args)

    async def send_all(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
        for search in searches:
            response = await client.get("/api/v1/search", params=search.params(), headers=headers)
            response.raise_for_status()

    async def profile() -> cProfile.Profile:
        transport = httpx.ASGITransport(app=create_app(settings))
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            login = {"username": "reader", "password": PASSWORD}
            token = (await client.post("/api/v1/auth/token", data=login)).json()["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
            await send_all(client, headers)  # warm: connection pools, caches
            began = time.process_time()
            await send_all(client, headers)
            each = (time.process_time() - began) * 1000 / len(searches)
            print(f"whole requests through the ASGI app in this process: {each:.1f} ms CPU each")
            profiler = cProfile.Profile(time.process_time)
            profiler.enable()
            await send_all(client, headers)
            profiler.disable()
            return profiler

    anyio.to_thread.run_sync = inline  # type: ignore[assignment]
    try:
        profiler = asyncio.run(profile())
    finally:
        anyio.to_thread.run_sync = original
    for title, order, restriction in (
        ("project functions by cumulative CPU time", "cumulative", f"{ROOT}/(services|api)/"),
        ("all functions by own CPU time", "tottime", ""),
    ):
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out).sort_stats(order)
        if restriction:
            stats.print_stats(restriction, top)
        else:
            stats.print_stats(top)
        lines = out.getvalue().splitlines()
        first = next(i for i, line in enumerate(lines) if "ncalls" in line)
        print(f"profile of {len(searches)} requests, {title}:")
        print("\n".join(line.replace(str(ROOT) + "/", "") for line in lines[first:] if line))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=int, default=100_000, help="documents to load")
    parser.add_argument("--chars", type=int, default=700, help="body length of each document")
    parser.add_argument("--batch", type=int, default=500, help="documents per upsert")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="loader processes")
    parser.add_argument("--queries", type=int, default=200, help="distinct queries in the mix")
    parser.add_argument("--clients", type=int, default=20, help="concurrent clients")
    parser.add_argument("--requests", type=int, default=2_000, help="searches per side, measured")
    parser.add_argument("--sequential", type=int, default=200, help="searches per side, 1 client")
    parser.add_argument(
        "--cpu-searches", type=int, default=1_000, help="searches timed for the API's CPU"
    )
    parser.add_argument("--es-heap", default="1g", help="Elasticsearch heap (-Xms/-Xmx)")
    parser.add_argument("--api-workers", type=int, default=1, help="uvicorn processes of the API")
    parser.add_argument("--profile-top", type=int, default=25, help="profile lines to print")
    args = parser.parse_args()
    print(machine())
    began_all = time.perf_counter()

    with Stack() as stack:
        postgres = stack.postgres()
        with postgres.admin() as admin:
            admin.execute("CREATE DATABASE bench")
        elasticsearch = stack.elasticsearch(heap=args.es_heap)
        server_settings = {
            "database_url": postgres.url("bench"),
            "elasticsearch_url": elasticsearch.url,
            "elasticsearch_index": ALIAS,
            "embedded_worker": "false",
        }
        settings = Settings(
            data_dir=stack.directory / "data",
            database_url=server_settings["database_url"],
            elasticsearch_url=elasticsearch.url,
            elasticsearch_index=ALIAS,
            embedded_worker=False,
        )
        backends = open_backends(settings)
        try:
            orgs = create_orgs(backends)
            began = time.perf_counter()
            documents = documents_of(orgs, args.docs, args.chars)
            characters = sum(len(document.body) for document in documents)
            print(
                f"generated {len(documents)} documents ({characters / 1e6:.1f} M characters) "
                f"in {time.perf_counter() - began:.1f} s"
            )
            began = time.perf_counter()
            insert_rows(backends, documents, orgs.uploader_id)
            print(f"database rows (PostgreSQL, bulk insert): {time.perf_counter() - began:.1f} s")
            backends.index.count()  # creates the index and its alias once, before the loaders
            began = time.perf_counter()
            index_documents(settings, documents, batch=args.batch, workers=args.workers)
            seconds = time.perf_counter() - began
            print(
                f"Elasticsearch: {backends.index.count()} documents indexed in {seconds:.1f} s "
                f"({len(documents) / seconds:.0f} documents/s, {args.workers} processes, "
                f"batches of {args.batch})"
            )
            del documents

            searches = query_mix(args.queries)
            direct = direct_requests(searches, orgs)
            server = stack.serve(workers=args.api_workers, **server_settings)
            token = httpx.post(
                f"{server.base_url}/api/v1/auth/token",
                data={"username": "reader", "password": PASSWORD},
            ).json()["access_token"]
            api_send = api_sender(server.base_url, token, searches)
            direct_send = direct_sender(elasticsearch.url, direct)
            print(
                f"{len(searches)} distinct queries, "
                f"{sum(1 for s in searches if len(s.params()) > 1)} with a filter; reader of "
                f"{orgs.reader.org_name}; {args.api_workers} uvicorn process(es); "
                "embedded worker off"
            )

            # The same totals both ways: the direct requests are the API's own.
            agree = 0
            with httpx.Client(timeout=60) as client:
                for number in range(len(searches)):
                    agree += api_send(client, number) == direct_send(client, number)
            print(f"totals agree on {agree}/{len(searches)} queries")

            for send in (api_send, direct_send):  # warm both: caches, JIT, connection pools
                run(send, clients=args.clients, count=len(searches))
            pid = server.process.pid
            before = cpu_seconds(pid)
            timed = run(api_send, clients=1, count=args.cpu_searches)
            used = cpu_seconds(pid) - before
            per_search = used * 1000 / len(timed.latencies_ms)
            print(
                f"API process CPU: {used:.2f} s over {len(timed.latencies_ms)} searches, "
                f"{per_search:.2f} ms a search (target <= 5 ms: "
                f"{'met' if per_search <= 5 else 'NOT met'})"
            )
            api = run(api_send, clients=args.clients, count=args.requests)
            straight = run(direct_send, clients=args.clients, count=args.requests)
            print()
            compare(
                f"{args.requests} searches each, {args.clients} concurrent clients", api, straight
            )
            ratio = api.rate / straight.rate
            verdict = "met" if ratio >= 0.8 else "NOT met"
            print(
                f"  API delivers {ratio:.2f}x the searches/s of Elasticsearch direct "
                f"(target >= 0.8x: {verdict})"
            )
            if args.sequential:
                api = run(api_send, clients=1, count=args.sequential)
                straight = run(direct_send, clients=1, count=args.sequential)
                compare(f"{args.sequential} searches each, one client", api, straight)
            print()
            profile_app(backends, orgs, searches)
            profile_requests(settings, searches, args.profile_top)
        finally:
            backends.close()
    print(f"total run time {time.perf_counter() - began_all:.0f} s; {load()}")


if __name__ == "__main__":
    main()
