"""Benchmark: extraction + indexing throughput, and time from upload response to searchable.

Run: ``.venv/bin/python -m tests.bench.indexing [--docs 1000] [--latency-samples 40]``.
Part 1 uploads mixed documents (DOCX, PDF, TXT in UTF-8 and GB18030, MD, CSV, PNG) through the
domain layer and times one worker draining the outbox. Part 2 runs a real ``materials serve``
(embedded worker) and measures, per upload, the time until a search finds the document.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from indexer.worker import IndexWorker
from services import documents, orgs
from services.access import Principal
from services.backends import open_backends
from services.config import Settings
from services.documents import IncomingFile
from services.models import OrgKind, Role, User
from tests.bench.upload_memory import BOOTSTRAP
from tests.samples import docx_bytes, pdf_bytes, png_bytes
from tests.server_process import ServerProcess, materials

WORDS = (
    "脱贫攻坚", "乡村振兴", "入户走访", "低保复核", "防汛抗旱", "产业帮扶", "就业帮扶",
    "危房改造", "医疗保障", "义务教育", "饮水安全", "党建引领", "基层治理", "秸秆禁烧",
    "人居环境", "合作社", "光伏", "茶叶", "养殖", "务工",
)  # fmt: skip


def _text(rng: random.Random, number: int) -> str:
    sentences = [
        f"{rng.choice(WORDS)}工作第{number}次推进会，"
        f"{rng.choice(WORDS)}落实到户{rng.randint(5, 300)}户。"
        for _ in range(rng.randint(8, 30))
    ]
    return "".join(sentences)


def _file(rng: random.Random, number: int) -> tuple[str, bytes]:
    text = _text(rng, number)
    kind = number % 7
    if kind == 0:
        return f"报告{number}.docx", docx_bytes(text)
    if kind == 1:
        return f"report{number}.pdf", pdf_bytes(f"Report {number} rural revitalisation")
    if kind == 2:
        return f"纪要{number}.txt", text.encode("gb18030")
    if kind == 3:
        return f"说明{number}.md", f"# 说明{number}\n\n{text}".encode()
    if kind == 4:
        rows = "\n".join(f"村{i},{rng.randint(10, 500)},{rng.choice(WORDS)}" for i in range(20))
        return f"统计{number}.csv", f"村,户数,事项\n{rows}".encode()
    if kind == 5:
        return f"照片{number}.png", png_bytes(4, 4, colour=number.to_bytes(3, "big"))
    return f"记录{number}.txt", text.encode()


def _throughput(count: int) -> None:
    rng = random.Random(20261126)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            data_dir=Path(tmp),
            embedded_worker=False,
            password_time_cost=1,
            password_memory_kib=1024,
        )
        backends = open_backends(settings)
        with backends.db.session() as session:
            orgs.create_org(session, name="基准县", kind=OrgKind.county)
            orgs.create_org(session, name="基准镇", kind=OrgKind.township)
            user, _ = orgs.create_user(
                session,
                passwords=backends.passwords,
                username="bench",
                password="bench-pass-1",
                org="基准镇",
                role=Role.uploader,
            )
            principal = Principal.of(session.get_one(User, user.id))
        spool = Path(tmp) / "incoming"
        spool.mkdir()
        for number in range(count):
            name, content = _file(rng, number)
            path = spool / f"{number}"
            path.write_bytes(content)
            documents.upload(
                backends,
                principal=principal,
                incoming=IncomingFile(
                    path, len(content), hashlib.sha256(content).hexdigest(), name, None
                ),
                fields={"period": f"20{20 + number % 7}-Q{1 + number % 4}"},
                ip=None,
            )
        started = time.perf_counter()
        handled = IndexWorker(backends, backends.index, batch_size=32).drain()
        elapsed = time.perf_counter() - started
        backends.close()
    print(
        f"indexing: {handled} mixed documents in {elapsed:.1f} s = {handled / elapsed:.1f} docs/s"
    )


def _latency(samples: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        for command in BOOTSTRAP:
            done = materials(*command, "--data-dir", str(data_dir))
            assert done.returncode == 0, done.stderr
        server = ServerProcess(data_dir, Path(tmp) / "server.log")
        try:
            server.wait_until_up()
            base = server.base_url
            with httpx.Client(base_url=base, timeout=30) as client:
                token = client.post(
                    "/api/v1/auth/token", data={"username": "bench", "password": "bench-pass-1"}
                ).json()["access_token"]
                headers = {"Authorization": f"Bearer {token}"}
                delays = []
                for number in range(samples):
                    marker = f"标记词{number:04d}号"
                    content = f"{marker} 入户走访记录，落实帮扶措施。".encode()
                    response = client.post(
                        "/api/v1/documents",
                        headers=headers,
                        files={"file": (f"记录{number}.txt", content)},
                    )
                    assert response.status_code == 201, response.text
                    sent = time.perf_counter()
                    while True:
                        found = client.get(
                            "/api/v1/search", params={"q": marker}, headers=headers
                        ).json()
                        if found["total"]:
                            delays.append(time.perf_counter() - sent)
                            break
                        if time.perf_counter() - sent > 30:
                            raise TimeoutError(marker)
                        time.sleep(0.02)
        finally:
            server.stop()
    delays.sort()
    p95 = delays[max(0, round(0.95 * len(delays)) - 1)]
    print(
        f"upload → searchable: median {statistics.median(delays) * 1000:.0f} ms, "
        f"p95 {p95 * 1000:.0f} ms over {len(delays)} uploads"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=int, default=1000)
    parser.add_argument("--latency-samples", type=int, default=40)
    args = parser.parse_args()
    _throughput(args.docs)
    _latency(args.latency_samples)


if __name__ == "__main__":
    main()
