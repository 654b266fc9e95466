"""The load test's run: the production layout on given backends, Locust against it, then the checks.

``run_load`` seeds a county, starts ``materials serve --workers 2`` and two ``materials worker``
processes, runs ``tests/load/locustfile.py`` headless, waits for indexing and the audit sequencer
to catch up, stops everything, and holds PostgreSQL, the object store, the index, the audit log and
what Locust saw against each other. Used by ``tests/load/run.py`` and ``test_load_short.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from indexer import outbox
from services import orgs
from services.backends import Backends, open_backends
from services.config import Settings
from services.errors import BackendUnavailable
from services.models import AuditEvent, AuditLeaf, Document, OrgKind, Role
from tests.server_process import MATERIALS, REPO_ROOT, ServerProcess, WorkerProcess, environment

LOCUST = str(Path(sys.executable).with_name("locust"))
LOCUSTFILE = Path(__file__).with_name("locustfile.py")
PASSWORD = "load-test-passphrase-7"
COUNTY = "样本县"
TOWNSHIPS = ("城关镇", "河口乡", "东岭镇", "西坪乡", "南湾镇")
DEPARTMENTS = ("扶贫办", "统计局", "民政局", "水利局", "农业农村局")
API_PROCESSES = 2
INDEX_WORKERS = 2


@dataclass(frozen=True)
class Operation:
    """One row of Locust's statistics (response times in milliseconds)."""

    name: str
    requests: int
    failures: int
    per_second: float
    p50: float
    p95: float

    def line(self) -> str:
        return (
            f"{self.name:32} {self.requests:7d} {self.failures:5d} {self.per_second:7.2f} "
            f"{self.p50:8.0f} {self.p95:8.0f}"
        )


@dataclass
class LoadReport:
    users: int
    seconds: int
    operations: list[Operation] = field(default_factory=list)
    total: Operation | None = None
    failures: list[str] = field(default_factory=list)  # Locust's failure lines
    tally: dict[str, int] = field(default_factory=dict)  # what the locustfile counted
    counts: dict[str, int] = field(default_factory=dict)  # what the stores hold
    catch_up_seconds: float = 0.0  # from the end of the load until indexing and sequencing done
    problems: list[str] = field(default_factory=list)  # every disagreement found

    @property
    def ok(self) -> bool:
        return not self.problems

    def lines(self) -> list[str]:
        header = f"{'operation':32} {'requests':>7} {'fails':>5} {'req/s':>7} {'p50 ms':>8} {'p95 ms':>8}"  # noqa: E501
        rows = [op.line() for op in self.operations]
        if self.total is not None:
            rows.append(self.total.line())
            rate = self.total.failures / max(1, self.total.requests)
            rows.append(f"error rate {rate:.4%}")
        return [
            f"{self.users} users for {self.seconds} s, {API_PROCESSES} API processes, "
            f"{INDEX_WORKERS} index workers",
            header,
            *rows,
            *self.failures,
            "locustfile: " + json.dumps(self.tally),
            "stores: " + json.dumps(self.counts),
            f"indexing and audit sequencing caught up {self.catch_up_seconds:.1f} s after the load",
            *(f"PROBLEM: {problem}" for problem in self.problems),
            "all agree" if self.ok else f"{len(self.problems)} problem(s)",
        ]


def seed(settings: Settings, users: int) -> dict[str, dict[str, list[str]]]:
    """The county, its townships and departments, and one account per simulated user."""
    clerks = (users + 1) // 2  # Locust splits the users evenly between the two classes
    plan: dict[str, dict[str, list[str]]] = {
        "townships": {name: [] for name in TOWNSHIPS},
        "departments": {name: [] for name in DEPARTMENTS},
    }
    backends = open_backends(settings)
    try:
        with backends.db.session() as session:
            orgs.create_org(session, name=COUNTY, kind=OrgKind.county)
            for kind, names, role, prefix in (
                (OrgKind.township, TOWNSHIPS, Role.uploader, "town"),
                (OrgKind.department, DEPARTMENTS, Role.reader, "dept"),
            ):
                for name in names:
                    orgs.create_org(session, name=name, kind=kind)
                accounts = plan[f"{kind.value}s"]
                for number in range(clerks):
                    org = names[number % len(names)]
                    username = f"{prefix}{number:02d}"
                    orgs.create_user(
                        session,
                        passwords=backends.passwords,
                        username=username,
                        password=PASSWORD,
                        org=org,
                        role=role,
                    )
                    accounts[org].append(username)
    finally:
        backends.close()
    for accounts in plan.values():
        for org in [org for org, names in accounts.items() if not names]:
            del accounts[org]
    return plan


@contextmanager
def production_layout(values: dict[str, str], directory: Path) -> Iterator[ServerProcess]:
    """``materials serve --workers 2`` and two ``materials worker`` processes, stopped on exit."""
    data_dir = directory / "data"
    # The load plays the county's reverse proxy: each clerk's own address in X-Forwarded-For.
    env = environment(
        **values, data_dir=str(data_dir), embedded_worker="false", trusted_proxies="127.0.0.1"
    )
    with ExitStack() as stack:
        server = ServerProcess(data_dir, directory / "server.log", env=env, workers=API_PROCESSES)
        stack.callback(server.stop)
        server.wait_until_up()
        for number in range(INDEX_WORKERS):
            worker = WorkerProcess(data_dir, directory / f"worker-{number}.log", env)
            stack.callback(worker.stop)
        yield server


def _unsequenced(backends: Backends) -> int:
    with backends.db.session() as session:
        return (
            session.scalar(
                select(func.count())
                .select_from(AuditEvent)
                .outerjoin(AuditLeaf, AuditLeaf.event_id == AuditEvent.id)
                .where(AuditLeaf.seq.is_(None))
            )
            or 0
        )


def _catch_up(backends: Backends, timeout: float) -> float:
    """Wait until the outbox is empty and every audit event sequenced; the seconds it took."""
    began = time.monotonic()
    while outbox.pending_count(backends.db) or _unsequenced(backends):
        if time.monotonic() - began > timeout:
            raise TimeoutError(
                f"not caught up after {timeout:.0f} s: {outbox.pending_count(backends.db)} index "
                f"events and {_unsequenced(backends)} audit events waiting"
            )
        time.sleep(0.5)
    return time.monotonic() - began


def _read_summary(path: Path, report: LoadReport) -> None:
    """What the locustfile wrote when Locust quit: its tally and the final statistics."""
    summary = json.loads(path.read_text(encoding="utf-8"))
    report.tally = summary["tally"]
    report.failures = summary["failures"]
    for row in summary["operations"]:
        operation = Operation(**row)
        if row["name"] == "Aggregated":
            report.total = operation
        else:
            report.operations.append(operation)


def _ready_index(backends: Backends, timeout: float = 60) -> None:
    """Create the search index and wait until it answers, as a deployment does before users
    come (a search while the first worker creates it answers 503 for a moment)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            backends.index.ping()
            backends.index.count()
            return
        except BackendUnavailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _run_locust(
    base_url: str, directory: Path, plan: dict[str, Any], *, users: int, seconds: int
) -> None:
    plan_path = directory / "plan.json"
    plan_path.write_text(json.dumps(plan, ensure_ascii=False), encoding="utf-8")
    prefix = directory / "locust"
    spawn_rate = max(1.0, users / 10)  # every user running within the first 10 s
    command = [
        LOCUST, "-f", str(LOCUSTFILE), "--headless", "--only-summary",
        "--users", str(users), "--spawn-rate", str(spawn_rate), "--run-time", f"{seconds}s",
        "--stop-timeout", "60", "--host", base_url, "--csv", str(prefix),
        "--plan", str(plan_path), "--loglevel", "WARNING",
    ]  # fmt: skip
    with (directory / "locust.log").open("wb") as log:
        # Locust exits 1 when a request failed: the statistics say which, read below.
        subprocess.run(
            command, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT,
            timeout=seconds + 180, check=False,
        )  # fmt: skip
    if not Path(plan["summary"]).exists():
        raise RuntimeError("Locust wrote no summary:\n" + (directory / "locust.log").read_text())


def _agreement(backends: Backends, report: LoadReport) -> None:
    """Rows, blobs, index and audit log against each other and against what Locust saw."""
    with backends.db.session() as session:
        live = dict(
            session.execute(
                select(Document.id, Document.index_version).where(Document.withdrawn_at.is_(None))
            ).all()
        )
        shas = set(session.scalars(select(Document.sha256).distinct()))
        statuses = dict(
            session.execute(
                select(Document.index_status, func.count()).group_by(Document.index_status)
            ).all()
        )
        doubled = session.execute(
            select(Document.township_id, Document.sha256, func.count())
            .where(Document.withdrawn_at.is_(None))
            .group_by(Document.township_id, Document.sha256)
            .having(func.count() > 1)
        ).all()
        audited = dict(
            session.execute(
                select(AuditEvent.action, func.count())
                .where(AuditEvent.outcome == "allowed")
                .group_by(AuditEvent.action)
            ).all()
        )
    blobs = {blob.sha256 for blob in backends.blobs.list()}
    indexed = dict(backends.index.indexed_versions())
    report.counts = {
        "documents": len(live),
        "distinct_sha256": len(shas),
        "blobs": len(blobs),
        "indexed": len(indexed),
        "index_count": backends.index.count(),
        **{f"status_{status}": count for status, count in statuses.items()},
        **{f"audit_{action}": audited.get(action, 0) for action in ("upload", "download", "view")},
    }
    problems = report.problems
    if report.tally.get("created") != len(live):
        problems.append(
            f"Locust created {report.tally.get('created')}, PostgreSQL holds {len(live)}"
        )
    if blobs != shas:
        problems.append(
            f"object store and PostgreSQL differ: {len(shas - blobs)} sha256 without a blob, "
            f"{len(blobs - shas)} blobs without a row"
        )
    if indexed != live:
        problems.append(
            f"index and PostgreSQL differ: {len(live.keys() - indexed.keys())} missing, "
            f"{len(indexed.keys() - live.keys())} extra, "
            f"{sum(indexed[key] != live[key] for key in live.keys() & indexed.keys())} stale"
        )
    if report.counts["index_count"] != len(live):
        problems.append(f"the index counts {report.counts['index_count']}, not {len(live)}")
    if set(statuses) != {"indexed"}:
        problems.append(f"documents not indexed: {statuses}")
    if doubled:
        problems.append(f"identical bytes stored twice for one township: {doubled[:5]}")
    received = report.tally.get("created", 0) + report.tally.get("duplicates", 0)
    if audited.get("upload", 0) != received:
        problems.append(f"{received} uploads answered 2xx, {audited.get('upload', 0)} audited")
    # Every download served is audited; one the client gave up on while Locust stopped may be too.
    downloads = [op for op in report.operations if op.name.endswith("/download")]
    served = sum(op.requests - op.failures for op in downloads)
    attempted = sum(op.requests for op in downloads)
    if not served <= audited.get("download", 0) <= attempted:
        problems.append(f"{served} downloads served, {audited.get('download', 0)} audited")


def _command(args: list[str], env: dict[str, str], report: LoadReport) -> dict[str, Any]:
    done = subprocess.run(
        [MATERIALS, *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
        timeout=900, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        report.problems.append(
            f"materials {' '.join(args)} exited {done.returncode}: "
            f"{done.stdout[-2000:]}{done.stderr[-2000:]}"
        )
    try:
        answer: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    except (json.JSONDecodeError, IndexError):
        return {}
    return answer


def run_load(
    values: dict[str, str],
    directory: Path,
    *,
    users: int,
    seconds: int,
    max_bytes: int,
    catch_up_timeout: float = 600,
) -> LoadReport:
    """Seed, serve, load, catch up, stop, check; every disagreement lands in ``problems``."""
    report = LoadReport(users=users, seconds=seconds)
    data_dir = directory / "data"
    settings = Settings(data_dir=data_dir, **values)  # type: ignore[arg-type]
    plan: dict[str, Any] = {
        **seed(settings, users),
        "password": PASSWORD,
        "max_bytes": max_bytes,
        "summary": str(directory / "summary.json"),
    }
    backends = open_backends(settings)
    try:
        _ready_index(backends)
        with production_layout(values, directory) as server:
            _run_locust(server.base_url, directory, plan, users=users, seconds=seconds)
            report.catch_up_seconds = _catch_up(backends, catch_up_timeout)
        _read_summary(directory / "summary.json", report)
        if report.total is None or report.total.failures:
            report.problems.append("Locust saw failed requests")
        _agreement(backends, report)
    finally:
        backends.close()
    env = environment(**values, data_dir=str(data_dir))
    check = _command(["check", "--json", "--data-dir", str(data_dir)], env, report)
    report.counts["check_ok"] = int(bool(check.get("ok")))
    verify = _command(["audit", "verify", "--data-dir", str(data_dir)], env, report)
    report.counts["audit_events_verified"] = int(verify.get("events", -1))
    if not verify.get("ok"):
        report.problems.append(f"audit verify: {verify}")
    return report
